#!/bin/bash
# End-to-end, inside the test VM: rpibootd boots four BCM2712 boards with a profile that has a
# storage step, follows each into the mass-storage gadget it becomes (a 64 MiB virtual disk,
# "mmcblk0"), writes a 64 MiB .img.zst to it and verifies it. Each backing file must equal the
# image byte for byte; a fifth board unplugged in the middle of the write must end `failed`
# while the others end `done`; a decoy USB disk on another port must never be written.
# First one board alone, timed, then `dd bs=4M oflag=direct` on the same disk for comparison.
#   daemon_storage.sh BUILD_DIR RESULTS_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
make_firmware
install_udev_rules
modprobe usb-storage 2>/dev/null
modprobe sd_mod 2>/dev/null
command -v zstd >/dev/null || { echo "e2e: zstd is not installed" >&2; exit 77; }

# The image: 64 MiB, random at both ends and zeros between (compresses to ~24 MiB).
image=$work/image.img
{
    head -c $((8 << 20)) /dev/urandom
    head -c $((40 << 20)) /dev/zero
    head -c $((16 << 20)) /dev/urandom
} >"$image"
zstd -q -3 -o "$image.zst" "$image"
image_sha=$(sha256sum <"$image" | cut -d' ' -f1)
say "image $((64)) MiB, sha256 $image_sha, $(stat -c %s "$image.zst") bytes as .img.zst"
zero32=$(head -c $((32 << 20)) /dev/zero | sha256sum | cut -d' ' -f1)

mkdir -p "$work/profiles"
python3 - "$src/config/profiles/mass-storage-gadget.json" "$work/profiles/flash.json" \
    "$image.zst" "$work/metadata" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["name"] = "flash"
p["storage"] = {"image": sys.argv[3], "disk": "mmcblk0", "verify": True}
p["metadata"] = {"dir": sys.argv[4]}
p.setdefault("timeouts", {})["after_boot_ms"] = 60000
json.dump(p, open(sys.argv[2], "w"), indent=1)
PY
cat >"$work/rpibootd.json" <<JSON
{"profiles_dir": "$work/profiles", "firmware_dir": "$work/fw",
 "rules": [{"chip": "2712", "profile": "flash"}]}
JSON
start_daemon -c "$work/rpibootd.json"

disk_field() { # INDEX FIELD
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["disks"][0]; print(d[sys.argv[2]])' \
        "$boards_dir/board-$1.json" "$2"
}
# stamp PORT TEXT: the log time (seconds of the day) of the first line of PORT with TEXT.
stamp() {
    grep -F " $1 " "$results/rpibootd.log" | grep -F "$2" | head -n 1 |
        awk '{ split($1, t, ":"); print t[1] * 3600 + t[2] * 60 + t[3] }'
}
rate() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f s, %.1f MiB/s", b - a, 64 / (b - a) }'; }
# disk_of PORT: the whole disk under the USB device at PORT.
disk_of() {
    local d
    for d in /sys/block/sd*; do
        [[ $(readlink -f "$d") == */$1/$1:1.0/* ]] && echo "/dev/${d##*/}"
    done
}

say "one board alone: rpibootd's write and verify, then dd on the same disk"
start_boards alone --hold --serial-base 5c000001 "2712:mass-storage-gadget,sums=$work/sums.2712,disk=64M"
port=$(board_ports)
expect_stage "$port" done 300
w0=$(stamp "$port" "storage step: writing")
v0=$(stamp "$port" "storage step: verifying")
d0=$(stamp "$port" "verified, sha256")
if [[ -n $w0 && -n $v0 && -n $d0 ]]; then
    say "rpibootd: wrote 64 MiB in $(rate "$w0" "$v0"), verified in $(rate "$v0" "$d0")"
fi
dev=$(disk_of "$port")
if [[ -n $dev ]]; then
    t1=$(date +%s.%N)
    dd if="$image" of="$dev" bs=4M oflag=direct status=none || fail "dd to $dev failed"
    t2=$(date +%s.%N)
    dd if="$dev" of=/dev/null bs=4M iflag=direct status=none || fail "dd from $dev failed"
    t3=$(date +%s.%N)
    say "dd bs=4M oflag=direct: wrote 64 MiB in $(rate "$t1" "$t2"); iflag=direct read in $(rate "$t2" "$t3")"
fi
finish_boards
[[ $(disk_field 0 sha256) == "$image_sha" ]] && say "ok   the backing file equals the image" ||
    fail "the backing file hashes $(disk_field 0 sha256), not $image_sha"

say "four boards at once, one unplugged mid-write, a decoy disk"
t0=$(date +%s.%N)
start_boards storage --hold --serial-base 5d000001 "decoy-disk:32M" \
    "2712:mass-storage-gadget*4,sums=$work/sums.2712,disk=64M" \
    "2712:mass-storage-gadget,sums=$work/sums.2712,disk=64M,unplug=disk@20000000"
read -r -d "" -a ports <<<"$(board_ports)"
for i in 1 2 3 4; do
    expect_stage "${ports[$i]}" done 400
done
expect_stage "${ports[5]}" failed 60
all_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
say "four boards booted, written and verified within $all_s s of power-on"
for i in 1 2 3 4; do
    p=${ports[$i]}
    say "board $p: wrote in $(rate "$(stamp "$p" "storage step: writing")" "$(stamp "$p" "storage step: verifying")"), verified in $(rate "$(stamp "$p" "storage step: verifying")" "$(stamp "$p" "verified, sha256")")"
done
say "board ${ports[5]} (unplugged): LastError '$(device_property "${ports[5]}" LastError)'"

stop_daemon
finish_boards

for i in 1 2 3 4; do
    if [[ $(disk_field "$i" sha256) == "$image_sha" ]]; then
        say "ok   board ${ports[$i]}: the backing file equals the image"
    else
        fail "board ${ports[$i]}: the backing file hashes $(disk_field "$i" sha256), not $image_sha"
    fi
done
say "the unplugged board: $(disk_field 5 bytesWritten) bytes written, unplugged $(disk_field 5 unplugged)"
if [[ $(disk_field 0 sha256) == "$zero32" && $(disk_field 0 bytesWritten) == 0 ]]; then
    say "ok   the decoy disk was never written"
else
    fail "the decoy disk changed: $(disk_field 0 bytesWritten) bytes written"
fi
exit "$e2e_fail"
