#!/bin/bash
# End-to-end, inside the test VM: the rpiboot command-line tool boots one virtual BCM2711
# (msd profile) attached through USB/IP, with real libusb and udev, run as an unprivileged
# member of group rpiboot with the project's udev rules installed (a user outside the group
# is refused with a message saying why). The board checks every byte it receives against
# the fixtures' SHA-256 sums.
#   cli_boot.sh BUILD_DIR RESULTS_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
[[ -x $rpiboot_bin ]] || { echo "e2e: $rpiboot_bin is not built" >&2; exit 77; }
make_firmware
install_udev_rules
chmod 0755 "$work"  # the firmware must be readable by the unprivileged user

finished() { grep -q '"finished"' "$boards_dir/summary.json" 2>/dev/null; }

start_boards cli "2711:msd,sums=$work/sums.2711"
port=$(board_ports)
# rpiboot starts once udev has announced the boot ROM: a ROM whose udev "add" event is still
# in flight when rpiboot registers its hotplug callback with LIBUSB_HOTPLUG_ENUMERATE is
# reported twice (enumeration, then the event), and rpiboot then fails opening the second
# report after the ROM has left the bus. The second stage arrives by hotplug as usual.
wait_for "the kernel to enumerate the board at $port" 30 test -f "/sys/bus/usb/devices/$port/idProduct"
udevadm settle --timeout=30

node=/dev/bus/usb/$(printf %03d "$(cat "/sys/bus/usb/devices/$port/busnum")")/$(printf %03d \
    "$(cat "/sys/bus/usb/devices/$port/devnum")")
say "device node $node: $(stat -c '%A %U:%G' "$node")"
[[ $(stat -c '%a %G' "$node") == "660 rpiboot" ]] || fail "$node is not 0660 root:rpiboot"

outsider=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
member=(setpriv --reuid=nobody --regid=nogroup --groups=rpiboot)
rc=0
timeout 60 "${outsider[@]}" "$rpiboot_bin" -d "$work/msd-flat" -p "$port" \
    >"$results/rpiboot-outsider.txt" 2>&1 || rc=$?
if ((rc != 0)) && grep -q "Permission to access USB device denied" "$results/rpiboot-outsider.txt"; then
    say "ok   rpiboot as a user outside group rpiboot is refused: permission denied"
else
    fail "rpiboot as a user outside group rpiboot: exit $rc, expected a permission error"
    sed 's/^/  | /' "$results/rpiboot-outsider.txt" >&2
fi

t0=$(date +%s.%N)
rc=0
timeout 120 "${member[@]}" "$rpiboot_bin" -v -d "$work/msd-flat" -p "$port" \
    >"$results/rpiboot.txt" 2>&1 || rc=$?
t1=$(date +%s.%N)
sed 's/^/  rpiboot | /' "$results/rpiboot.txt"
if ((rc == 0)); then
    say "ok   rpiboot -p $port as a member of group rpiboot booted the board in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
else
    fail "rpiboot exited with status $rc"
fi
# The board ends by itself once its second stage is done; the program then exits.
wait_for "the virtual board to end" 30 finished
finish_boards && say "ok   the board received every byte it expected"
exit "$e2e_fail"
