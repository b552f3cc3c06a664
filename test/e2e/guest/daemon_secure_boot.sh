#!/bin/bash
# End-to-end, inside the test VM: BCM2712 secure-boot provisioning through rpibootd on the
# real kernel USB stack. A station profile (a copy of secure-boot-recovery with
# program_pubkey on, its key made here with openssl) is selected by serial rules:
#   5ec00001  unlocked board: recovery programs the key into its OTP -> done
#   5ec00002  board already locked to that key: counter-signed recovery.bin, the key is
#             reported already programmed -> done
#   5ec00003  board locked to another key: its ROM refuses the counter-signed loader ->
#             failed, with the reason in LastError on D-Bus
# The key hash the boards must end up with is computed from openssl's modulus in Python.
#   daemon_secure_boot.sh BUILD_DIR RESULTS_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
make_firmware
install_udev_rules

fw=$work/fw/secure
mkdir -p "$fw/2712" "$work/profiles"
"$build/test/unit/tools/rpiboot-test-eeprom" 2712 "$fw/2712/pieeprom.original.bin"
cp "$fixtures/recovery/boot.conf" "$fw/boot.conf"
printf 'uart_2ndstage=1\n' >"$fw/config.txt"
# Raspberry Pi's signed 2712 loader stands in for recovery.bin.
cp "$work/bootfiles/2712/bootcode5.bin" "$fw/2712/bootcode5.bin"
openssl genrsa -out "$work/key.pem" 2048 2>/dev/null
key_hash=$(openssl rsa -in "$work/key.pem" -noout -modulus 2>/dev/null | python3 -c '
import hashlib, sys
n = int(sys.stdin.read().strip().split("=")[1], 16)
print(hashlib.sha256(n.to_bytes(256, "little") + (65537).to_bytes(8, "little")).hexdigest())')
say "customer key hash $key_hash"

profile() {  # NAME COUNTER_SIGN_RECOVERY
    cat >"$work/profiles/$1.json" <<JSON
{"name": "$1", "firmware": {"root": "secure", "fallback": ["."]},
 "eeprom": {"image": "pieeprom.original.bin", "config": "boot.conf",
            "signing_key": "$work/key.pem", "counter_sign": true,
            "counter_sign_recovery": $2, "program_pubkey": true},
 "timeouts": {"request_ms": 30000}}
JSON
}
profile station false
profile station-locked true
cat >"$work/rpibootd.json" <<JSON
{"profiles_dir": "$work/profiles", "firmware_dir": "$work/fw",
 "rules": [{"serial": "5ec00001", "profile": "station"},
           {"serial": "5ec0000[23]", "profile": "station-locked"}]}
JSON

scenario() {  # FILE SERIAL OTP_HASH
    local secure=
    [[ -n $3 ]] && secure=", \"secureBoot\": {\"otpKeyHash\": \"$3\"}"
    cat >"$1" <<JSON
{"name": "secure-2712-$2", "chip": "2712"$secure,
 "steps": [{"kind": "file", "name": "config.txt", "optional": true}, "pieeprom.sig",
           "pieeprom.bin",
           {"kind": "metadata", "key": "EEPROM_UPDATE", "value": "{eeprom_update}"},
           {"kind": "metadata", "key": "EEPROM_HASH", "value": "{sha256:pieeprom.bin}"},
           {"kind": "metadata", "key": "SECURE_BOOT_PROVISION", "value": "{provision}"},
           {"kind": "metadata", "key": "CUSTOMER_KEY_HASH", "value": "{customer_key_hash}"},
           {"kind": "metadata", "key": "JTAG_LOCKED", "value": "{jtag_locked}"},
           {"kind": "empty-name"}]}
JSON
}
scenario "$work/unlocked.json" 5ec00001 ""
scenario "$work/locked.json" 5ec00002 "$key_hash"
scenario "$work/other.json" 5ec00003 "$(printf 'a%.0s' {1..64})"

start_daemon -c "$work/rpibootd.json"
dbus-monitor --system "type='signal',sender='io.rpibootd1'" >"$results/signals.txt" 2>&1 &
e2e_pids+=($!)

# Not start_boards: the generated files have no fixture hashes to require. Serials are given
# in board order from --serial-base. The board that is refused keeps its ROM waiting until
# the power-off timeout.
boards_dir=$results/secure
mkdir -p "$boards_dir"
"$boards_bin" -v -r "$boards_dir" --hold -t 60 --serial-base 5ec00001 "$work/unlocked.json" "$work/locked.json" \
    "$work/other.json,expect=failed" >"$boards_dir/stdout.txt" 2>"$boards_dir/log.txt" &
boards_pid=$!
e2e_pids+=("$boards_pid")
wait_for "boards.tsv" 30 test -f "$boards_dir/boards.tsv"

ports=($(board_ports))
expect_stage "${ports[0]}" done 90
expect_stage "${ports[1]}" done 90
expect_stage "${ports[2]}" failed 90
last_error=$(device_property "${ports[2]}" LastError)
if [[ $last_error == *"rejected the loader"* ]]; then
    say "ok   board ${ports[2]} locked to another key: LastError '$last_error'"
else
    fail "board ${ports[2]}: LastError '$last_error' does not say the ROM rejected the loader"
fi
# The refused board is powered off by -t, which ends the run ("finished") rather than holding.
ended() { grep -qE '"state": "(holding|finished)"' "$boards_dir/summary.json" 2>/dev/null; }
wait_for "every virtual board to end" 90 ended

# What the boards' OTP holds afterwards, from their records.
otp_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["record"]["secureBoot"]["otpKeyHash"])' "$1" 2>/dev/null \
    || python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secureBoot"]["otpKeyHash"])' "$1"; }
for i in 0 1; do
    record=$(ls "$boards_dir"/board-"$i"*.json 2>/dev/null | head -n1)
    otp=$(otp_of "$record")
    if [[ $otp == "$key_hash" ]]; then
        say "ok   board $i: OTP holds the customer key hash"
    else
        fail "board $i: OTP holds '$otp', expected $key_hash (record $record)"
    fi
done
grep -q "programmed key $key_hash into OTP" "$boards_dir"/board-0*.json \
    && say "ok   board 0: recovery programmed the key" || fail "board 0: no programming in its log"
grep -q "already programmed" "$boards_dir"/board-1*.json \
    && say "ok   board 1: key reported already programmed" || fail "board 1: not reported as already programmed"
grep -q "counter-signed with key" "$boards_dir"/board-2*.json \
    && say "ok   board 2: its ROM names the wrong key" || fail "board 2: no ROM refusal in its record"

finish_boards
stop_daemon
exit "$e2e_fail"
