#!/bin/bash
# End-to-end, inside the test VM: the virtual boards' mass-storage function on the real
# kernel. A decoy USB disk (1209:0001) and a BCM2712 already running the mass-storage gadget
# (0a5c:0104, disk "mmcblk0", 64 MiB sparse backing file) are plugged in; usb-storage and sd
# must make /dev/sdX of the right size, with the gadget's identification and a
# /dev/disk/by-path link, and the project's udev rules must leave the gadget's interface
# authorised. 8 MiB of random data written with dd oflag=direct must read back the same and
# land in the backing file at that offset; the whole disk read through USB must hash like the
# backing file. A third board leaves the bus after 4 MiB written: dd fails, the disk goes away,
# its backing file holds exactly those 4 MiB. Then a BCM2712 is booted by rpiboot (mass-storage-gadget files) and its disk
# must appear the same way. The decoy's backing file must never change.
#   usb_disk.sh BUILD_DIR RESULTS_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
make_firmware
install_udev_rules
modprobe usb-storage 2>/dev/null
modprobe sd_mod 2>/dev/null

# disk_at PORT: the whole-disk block device whose USB ancestry is the device at PORT.
disk_at() {
    local d p
    for d in /sys/block/sd*; do
        [[ -e $d ]] || continue
        p=$(readlink -f "$d")
        if [[ $p == */$1/$1:1.0/* ]]; then
            echo "/dev/${d##*/}"
            return 0
        fi
    done
    return 1
}
have_disk_at() { disk_at "$1" >/dev/null; }

# board_json I: the record of board I (written at the end).
board_disk_field() { # INDEX FIELD
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["disks"][0]; print(d[sys.argv[2]])' \
        "$boards_dir/board-$1.json" "$2"
}

# check_disk PORT SIZE IDENT: /dev/sdX under PORT, its size and identification, by-path link.
check_disk() {
    local port=$1 size=$2 ident=$3 dev name got
    if ! wait_for "a disk under $port" 60 have_disk_at "$port"; then
        return 1
    fi
    udevadm settle --timeout=30
    dev=$(disk_at "$port")
    name=${dev#/dev/}
    got=$(($(cat "/sys/block/$name/size") * 512))
    if ((got == size)); then
        say "ok   $port: $dev, $got bytes"
    else
        fail "$port: $dev is $got bytes, expected $size"
    fi
    got=$(cat "/sys/block/$name/device/vendor" "/sys/block/$name/device/model" | tr -s ' \n' ' ')
    if [[ ${got% } == "$ident" ]]; then
        say "ok   $port: SCSI vendor+model '${got% }'"
    else
        fail "$port: SCSI vendor+model '${got% }', expected '$ident'"
    fi
    local link=
    for l in /dev/disk/by-path/*; do
        [[ $l == *-usb-*:${port#*-}:1.0-scsi-0:0:0:0 && $(readlink -f "$l") == "$dev" ]] && link=$l
    done
    if [[ -n $link ]]; then
        say "ok   $port: by-path link ${link##*/}"
    else
        fail "$port: no /dev/disk/by-path link to $dev ($(ls /dev/disk/by-path 2>/dev/null | tr '\n' ' '))"
    fi
    checked_dev=$dev
}

seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n / 1048576 / (s > 0 ? s : 1e-9) }'; }

zero32=$(head -c $((32 << 20)) /dev/zero | sha256sum | cut -d' ' -f1)

say "a decoy disk and a gadget that is already running"
start_boards direct --hold "decoy-disk:32M" "2712:mass-storage-gadget,start=final,disk=64M" \
    "2712:mass-storage-gadget,start=final,disk=16M,unplug=disk@4194304"
read -r -d "" -a ports <<<"$(board_ports)"
decoy_port=${ports[0]}
gadget_port=${ports[1]}
unplug_port=${ports[2]}
wait_boards_ended 30

check_disk "$decoy_port" $((32 << 20)) "Virtual Decoy USB Disk"
decoy_dev=$checked_dev
check_disk "$gadget_port" $((64 << 20)) "mmcblk0"
dev=$checked_dev
iface=/sys/bus/usb/devices/$gadget_port:1.0
if [[ $(cat "$iface/authorized" 2>/dev/null) == 1 ]]; then
    say "ok   the gadget's mass-storage interface stays authorised under 60-rpibootd.rules"
else
    fail "the gadget's mass-storage interface was de-authorised"
fi

head -c $((8 << 20)) /dev/urandom >"$work/random.bin"
want=$(sha256sum <"$work/random.bin" | cut -d' ' -f1)
t0=$(date +%s.%N)
dd if="$work/random.bin" of="$dev" bs=1M seek=16 oflag=direct conv=fsync status=none ||
    fail "dd to $dev failed"
write_s=$(seconds_since "$t0")
t0=$(date +%s.%N)
got=$(dd if="$dev" bs=1M skip=16 count=8 iflag=direct status=none | sha256sum | cut -d' ' -f1)
read_s=$(seconds_since "$t0")
if [[ $got == "$want" ]]; then
    say "ok   8 MiB written with oflag=direct in $write_s s ($(mbps $((8 << 20)) "$write_s") MiB/s), read back identical in $read_s s ($(mbps $((8 << 20)) "$read_s") MiB/s)"
else
    fail "8 MiB read back from $dev differ from what was written"
fi
backing=$boards_dir/board-1-disk.img
got=$(dd if="$backing" bs=1M skip=16 count=8 status=none | sha256sum | cut -d' ' -f1)
[[ $got == "$want" ]] && say "ok   the backing file holds the 8 MiB at offset 16 MiB" ||
    fail "the backing file does not hold what dd wrote"
t0=$(date +%s.%N)
whole=$(dd if="$dev" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
whole_s=$(seconds_since "$t0")
[[ $whole == "$(sha256sum <"$backing" | cut -d' ' -f1)" ]] &&
    say "ok   the whole 64 MiB disk read through USB ($whole_s s, $(mbps $((64 << 20)) "$whole_s") MiB/s) hashes like its backing file" ||
    fail "the whole disk read through USB differs from its backing file"
# The third board leaves the bus once 4 MiB are written: dd fails, the kernel drops the disk.
check_disk "$unplug_port" $((16 << 20)) "mmcblk0"
rc=0
timeout 120 dd if="$work/random.bin" of="$checked_dev" bs=1M oflag=direct status=none 2>"$work/dd-unplug.txt" || rc=$?
if ((rc != 0 && rc != 124)); then
    say "ok   dd to the board unplugged mid-write failed: $(tr '\n' ' ' <"$work/dd-unplug.txt")"
else
    fail "dd to the board unplugged mid-write: exit $rc"
fi
wait_for "$checked_dev to go away" 30 test ! -e "/sys/block/${checked_dev#/dev/}"
finish_boards
if [[ $(board_disk_field 2 unplugged) == True && $(board_disk_field 2 bytesWritten) == 4194304 ]] &&
    cmp -s -n 4194304 "$work/random.bin" "$boards_dir/board-2-disk.img"; then
    say "ok   the unplugged board's backing file holds exactly the first 4 MiB"
else
    fail "unplugged board: unplugged=$(board_disk_field 2 unplugged)," \
        "$(board_disk_field 2 bytesWritten) bytes written"
fi
[[ $(board_disk_field 1 sha256) == "$whole" ]] && say "ok   board-1.json reports the disk's SHA-256" ||
    fail "board-1.json reports sha256 $(board_disk_field 1 sha256), the disk hashes $whole"
decoy_sha=$(board_disk_field 0 sha256)
if [[ $decoy_sha == "$zero32" && $(board_disk_field 0 bytesWritten) == 0 ]]; then
    say "ok   the decoy disk ($decoy_dev) was never written: sha256 $decoy_sha"
else
    fail "the decoy disk changed: sha256 $decoy_sha, $(board_disk_field 0 bytesWritten) bytes written"
fi

if [[ -x $rpiboot_bin ]]; then
    say "a BCM2712 booted by rpiboot becomes the gadget disk"
    mkdir -p "$work/msg"
    cp "$fixtures/bootfiles.bin" "$work/fw/mass-storage-gadget64/config.txt" \
        "$work/fw/mass-storage-gadget64/boot.img" "$work/msg/"
    start_boards booted --hold "decoy-disk:32M" \
        "2712:mass-storage-gadget,sums=$work/sums.2712,disk=64M"
    read -r -d "" -a ports <<<"$(board_ports)"
    port=${ports[1]}
    wait_for "the kernel to enumerate the board at $port" 30 test -f "/sys/bus/usb/devices/$port/idProduct"
    udevadm settle --timeout=30
    t0=$(date +%s.%N)
    rc=0
    timeout 120 "$rpiboot_bin" -v -d "$work/msg" -p "$port" >"$results/rpiboot.txt" 2>&1 || rc=$?
    ((rc == 0)) && say "ok   rpiboot booted the board in $(seconds_since "$t0") s" ||
        fail "rpiboot exited with status $rc"
    check_disk "$port" $((64 << 20)) "mmcblk0"
    dd if="$work/random.bin" of="$checked_dev" bs=1M oflag=direct conv=fsync status=none ||
        fail "dd to $checked_dev failed"
    finish_boards
    [[ $(dd if="$boards_dir/board-1-disk.img" bs=1M count=8 status=none | sha256sum | cut -d' ' -f1) == "$want" ]] &&
        say "ok   the booted board's backing file holds the 8 MiB" ||
        fail "the booted board's backing file does not hold what dd wrote"
    [[ $(board_disk_field 0 sha256) == "$zero32" ]] && say "ok   the second decoy disk unchanged" ||
        fail "the second decoy disk changed"
fi
exit "$e2e_fail"
