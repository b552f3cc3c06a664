#!/bin/bash
# End-to-end, inside the test VM: rpibootd (real libusb, real udev events) boots one virtual
# board, then eight at once of mixed chips: BCM2711 msd, BCM2712 mass-storage-gadget (files
# from bootfiles.bin, then the Linux gadget identity) and two-interface BCM2837 msd; one 2711
# ROM has the 55/32 configuration descriptor quirk. busctl must show each board `done`, and
# every board must have received exactly the fixture bytes.
#   daemon_boot.sh BUILD_DIR RESULTS_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
make_firmware
install_udev_rules
start_daemon

say "one board"
start_boards one --hold --serial-base 1a000001 "2711:msd,sums=$work/sums.2711"
wait_boards_ended 60
for port in $(board_ports); do
    expect_stage "$port" done 20
done
finish_boards

say "eight boards at once"
start_boards eight --hold --serial-base 2b000001 \
    "2711:msd*2,sums=$work/sums.2711" \
    "2711:msd,sums=$work/sums.2711,quirk=config" \
    "2712:mass-storage-gadget*3,sums=$work/sums.2712" \
    "2837:msd*2,sums=$work/sums.2837"
wait_boards_ended 240
say "eight boards ended $(grep -o '"allEndedSeconds":[0-9.]*' "$boards_dir/summary.json" |
    cut -d: -f2) s after power-on"
for port in $(board_ports); do
    expect_stage "$port" done 20
done
finish_boards
# 60-rpibootd.rules de-authorises the BCM2837's mass-storage interface, but only once udev
# handles the interface: when usb-storage is already loaded the kernel binds it first. Not a
# failure of the boot (rpibootd uses the other interface), so only noted.
for port in $(awk -F'\t' 'NR > 1 && $4 == "BCM2837" { print $2 }' "$boards_dir/boards.tsv"); do
    if dmesg | grep -q "usb-storage $port:1.0"; then
        say "note usb-storage probed the BCM2837 at $port before udev de-authorised it"
    fi
done
stop_daemon
exit "$e2e_fail"
