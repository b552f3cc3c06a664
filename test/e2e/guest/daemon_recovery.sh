#!/bin/bash
# End-to-end, inside the test VM: EEPROM recovery of BCM2711 boards through rpibootd on the
# real kernel USB stack, with the shipped `recovery` profile (built in; an `eeprom` section,
# so after_success defaults to "once"). Four boards on four ports:
#   A  reports EEPROM_HASH of another image  -> failed, LastError names EEPROM_HASH
#   B  reports EEPROM_UPDATE=failed          -> failed, LastError names EEPROM_UPDATE
#   C  flashes, reports the served image's hash -> done; then resets into its boot ROM on the
#      same port with the same serial (recovery_reboot=1; the simulator's returns=1). It must
#      be left alone: its ROM gets no second loader (boots 1), Stage stays done, BootCount 1,
#      one BootFinished, and the log says why.
#   D  the same as C under a copy of the profile with after_success "boot-again": the
#      control. It is booted and flashed again (boots 2), so the check on C can fail.
#   daemon_recovery.sh BUILD_DIR RESULTS_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
# Every USB device the kernel adds, as udev announces it; started first so that it listens
# well before the first board.
udevadm monitor --udev --subsystem-match=usb/usb_device >"$results/udev.txt" 2>&1 &
e2e_pids+=($!)
make_firmware
install_udev_rules

# The recovery set as firmware/README.md lays it out; the fixture loader stands in for
# recovery.bin, and the daemon builds pieeprom.bin from the base image and boot.conf.
rec=$work/fw/recovery
mkdir -p "$rec/2711" "$work/profiles"
cp "$fixtures/2711/bootcode4.bin" "$rec/2711/bootcode4.bin"
cp "$fixtures/recovery/boot.conf" "$rec/boot.conf"
"$build/test/unit/tools/rpiboot-test-eeprom" 2711 "$rec/2711/pieeprom.original.bin" ||
    { echo "e2e: rpiboot-test-eeprom is not built" >&2; exit 77; }
{
    echo "$(fixture_sha 2711/bootcode4.bin)  bootcode4.bin"
    echo "$(fixture_sha recovery/config.txt)  config.txt"
} >"$work/sums.recovery"

# The control profile: the shipped one with after_success "boot-again".
python3 - "$src/config/profiles/recovery.json" "$work/profiles/recovery-again.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["name"] = "recovery-again"
p["after_success"] = "boot-again"
json.dump(p, open(sys.argv[2], "w"), indent=1)
PY
cat >"$work/rpibootd.json" <<JSON
{"profiles_dir": "$work/profiles", "firmware_dir": "$work/fw",
 "rules": [{"serial": "7ec00004", "profile": "recovery-again"},
           {"chip": "2711", "profile": "recovery"}]}
JSON

# A recovery.bin run (the built-in 2711 recovery scenario) reporting UPDATE and HASH.
scenario() { # FILE EEPROM_UPDATE EEPROM_HASH
    cat >"$1" <<JSON
{"name": "recovery-2711-$(basename "$1" .json)", "chip": "2711",
 "steps": [{"kind": "file", "name": "config.txt", "optional": true}, "pieeprom.sig",
           "pieeprom.bin",
           {"kind": "metadata", "key": "USER_SERIAL_NUM", "value": "{serial}"},
           {"kind": "metadata", "key": "MAC_ADDR", "value": "d8:3a:dd:05:ee:78"},
           {"kind": "metadata", "key": "EEPROM_UPDATE", "value": "$2"},
           {"kind": "metadata", "key": "EEPROM_HASH", "value": "$3"},
           {"kind": "metadata", "key": "SECURE_BOOT_PROVISION", "value": "{provision}"},
           {"kind": "metadata", "key": "CUSTOMER_KEY_HASH", "value": "{customer_key_hash}"},
           {"kind": "empty-name"}]}
JSON
}
scenario "$work/wrong-hash.json" "{eeprom_update}" "$(printf '0%.0s' {1..64})"
scenario "$work/failed-update.json" failed "{sha256:pieeprom.bin}"

start_daemon -c "$work/rpibootd.json"
dbus-monitor --system "type='signal',sender='io.rpibootd1'" >"$results/signals.txt" 2>&1 &
e2e_pids+=($!)

# Not start_boards: pieeprom.bin and pieeprom.sig are made by the daemon, so there are no
# fixture hashes to require. Serials count up from --serial-base in board order.
boards_dir=$results/recovery
mkdir -p "$boards_dir"
t0=$SECONDS
"$boards_bin" -v -r "$boards_dir" --hold -t 200 --serial-base 7ec00001 \
    "$work/wrong-hash.json,sums=$work/sums.recovery" \
    "$work/failed-update.json,sums=$work/sums.recovery" \
    "2711:recovery,returns=1,sums=$work/sums.recovery" \
    "2711:recovery,returns=1,sums=$work/sums.recovery" \
    >"$boards_dir/stdout.txt" 2>"$boards_dir/log.txt" &
boards_pid=$!
e2e_pids+=("$boards_pid")
wait_for "boards.tsv" 30 test -f "$boards_dir/boards.tsv"
read -r -d "" -a ports <<<"$(board_ports)"
a=${ports[0]} b=${ports[1]} c=${ports[2]} d=${ports[3]}

# The iSerialNumber index of the device on a port, from its descriptors in sysfs: 3 is the
# BCM2711 ROM, 4 its second stage (docs/protocol.md §2.2).
serial_index() { od -An -tu1 -j16 -N1 "/sys/bus/usb/devices/$1/descriptors" 2>/dev/null | tr -d ' '; }
# How many USB devices udev has announced on a port.
adds_on() { grep -cE " add +/devices/.*/$1 \(usb\)" "$results/udev.txt"; }
# Back in its ROM: the board's own record says so (written when it came back) and udev has
# announced a third device on its port (ROM, second stage, ROM).
back_in_rom() { grep -q '"returnsToRom": 1' "$boards_dir/board-$2.json" && (($(adds_on "$1") >= 3)); }

expect_stage "$c" done 120
wait_for "board $c to come back as its ROM" 60 back_in_rom "$c" 2
back_at=$SECONDS
if [[ $(serial_index "$c") == 3 ]]; then
    say "ok   board $c: back on its port as its boot ROM (udev add #$(adds_on "$c"), iSerialNumber index 3 in sysfs) $((back_at - t0)) s after power-on"
else
    fail "board $c: $(adds_on "$c") devices added on its port, which shows iSerialNumber index '$(serial_index "$c")', not its ROM's 3"
fi

expect_stage "$a" failed 60
last_error=$(device_property "$a" LastError)
if [[ $last_error == *EEPROM_HASH* ]]; then
    say "ok   board $a (wrong hash): LastError '$last_error'"
else
    fail "board $a: LastError '$last_error' does not name EEPROM_HASH"
fi
expect_stage "$b" failed 60
last_error=$(device_property "$b" LastError)
if [[ $last_error == *EEPROM_UPDATE=failed* ]]; then
    say "ok   board $b (failed update): LastError '$last_error'"
else
    fail "board $b: LastError '$last_error' does not name EEPROM_UPDATE"
fi

# The control: booted again when it comes back.
boot_count_is() { [[ $(device_property "$1" BootCount) == "$2" ]] && stage_is "$1" done; }
if wait_for "board $d to be booted a second time" 120 boot_count_is "$d" 2; then
    say "ok   board $d (boot-again): booted again when it came back, Stage done, BootCount 2"
else
    fail "board $d: Stage '$(device_property "$d" Stage)', BootCount '$(device_property "$d" BootCount)'," \
        "LastError '$(device_property "$d" LastError)'"
fi

# Give the daemon ample time to (not) boot C again.
while ((SECONDS < back_at + 10)); do sleep 0.5; done
say "board $c has been back in its ROM for $((SECONDS - back_at)) s"
if [[ $(serial_index "$c") == 3 ]] && (($(adds_on "$c") == 3)); then
    say "ok   board $c: still the same ROM enumeration on its port"
else
    fail "board $c: the port shows index '$(serial_index "$c")' after $(adds_on "$c") devices added"
fi
if [[ $(device_property "$c" Stage) == done && $(device_property "$c" BootCount) == 1 ]]; then
    say "ok   board $c: Stage done, BootCount 1 on D-Bus"
else
    fail "board $c: Stage '$(device_property "$c" Stage)', BootCount '$(device_property "$c" BootCount)'"
fi
finished=$(grep -A1 'member=BootFinished' "$results/signals.txt" | grep -c "\"$(device_path "$c")\"")
if ((finished == 1)); then
    say "ok   board $c: one BootFinished"
else
    fail "board $c: $finished BootFinished signals"
fi
if grep -F " $c " "$results/rpibootd.log" | grep -q "not booting the board again"; then
    say "ok   board $c: rpibootd saw it and left it alone: $(grep -F " $c " "$results/rpibootd.log" |
        grep -m1 "not booting the board again" | cut -d' ' -f4-)"
else
    fail "board $c: no 'not booting the board again' for it in rpibootd.log"
fi

stop_daemon
finish_boards

# What the boards themselves counted (summary.json at exit).
count() { # PORT FIELD
    python3 -c 'import json,sys
for b in json.load(open(sys.argv[1]))["boards"]:
    if b["portPath"] == sys.argv[2]: print(b[sys.argv[3]])' "$boards_dir/summary.json" "$1" "$2"
}
if [[ $(count "$c" boots) == 1 && $(count "$c" returnsToRom) == 1 ]]; then
    say "ok   board $c: its ROM started one loader (boots 1, returnsToRom 1): not flashed again"
else
    fail "board $c: boots $(count "$c" boots), returnsToRom $(count "$c" returnsToRom)"
fi
if [[ $(count "$d" boots) == 2 && $(count "$d" runs) == 2 ]]; then
    say "ok   board $d: boots 2, runs 2: flashed again, as boot-again says"
else
    fail "board $d: boots $(count "$d" boots), runs $(count "$d" runs)"
fi
say "the test took $((SECONDS - t0)) s from power-on"
exit "$e2e_fail"
