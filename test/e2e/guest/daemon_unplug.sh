#!/bin/bash
# End-to-end, inside the test VM: one of four boards leaves the bus in the middle of a file
# (200000 bytes into start4.elf). rpibootd must report that board failed (BootFinished with
# success false; Stage failed, or disconnected once it has been forgotten as gone, with a
# LastError) while the other three finish `done` with every byte verified.
#   daemon_unplug.sh BUILD_DIR RESULTS_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
make_firmware
install_udev_rules
start_daemon

dbus-monitor --system "type='signal',sender='io.rpibootd1'" >"$results/signals.txt" 2>&1 &
e2e_pids+=($!)

start_boards unplug --hold --serial-base 3c000001 \
    "2711:msd,sums=$work/sums.2711,unplug=start4.elf@200000,expect=failed" \
    "2711:msd,sums=$work/sums.2711" \
    "2712:mass-storage-gadget,sums=$work/sums.2712" \
    "2837:msd,sums=$work/sums.2837"
wait_boards_ended 180

# Stage "failed" announced for PATH in a PropertiesChanged signal, and BootFinished false.
reported_failed() {
    awk -v path="$1" '
        /^signal / { header = $0; match_bf = 0; next }
        header ~ /member=BootFinished/ && index($0, "object path \"" path "\"") { match_bf = 1; next }
        match_bf && /boolean false/ { seen_finished = 1 }
        index(header, "path=" path ";") && header ~ /member=PropertiesChanged/ &&
            /string "Stage"/ { stage = 1; next }
        stage && /string "failed"/ { seen_stage = 1 }
        { stage = 0 }
        END { exit !(seen_stage && seen_finished) }' "$results/signals.txt"
}

for port in $(board_ports); do
    if [[ $(board_expect "$port") == failed ]]; then
        path=$(device_path "$port")
        if wait_for "rpibootd to report board $port failed" 20 reported_failed "$path"; then
            say "ok   board $port ($(board_name "$port")) unplugged mid-file: reported failed" \
                "($(device_property "$port" LastError))"
        else
            fail "board $port unplugged mid-file: Stage '$(device_property "$port" Stage)'," \
                "LastError '$(device_property "$port" LastError)'; signals in $results/signals.txt"
        fi
    else
        expect_stage "$port" done 20
    fi
done
finish_boards
stop_daemon
exit "$e2e_fail"
