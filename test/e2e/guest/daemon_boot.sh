#!/bin/bash
# End-to-end, inside the test VM: rpibootd (real libusb, real udev events) boots one virtual
# board, then eight at once of mixed chips: BCM2711 msd, BCM2712 mass-storage-gadget (files
# from bootfiles.bin, then the Linux gadget identity) and two-interface BCM2837 msd. busctl
# must show each board `done`, and every board must have received exactly the fixture bytes.
#   daemon_boot.sh BUILD_DIR RESULTS_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
make_firmware
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
    "2711:msd*3,sums=$work/sums.2711" \
    "2712:mass-storage-gadget*3,sums=$work/sums.2712" \
    "2837:msd*2,sums=$work/sums.2837"
wait_boards_ended 240
say "eight boards ended $(grep -o '"allEndedSeconds":[0-9.]*' "$boards_dir/summary.json" |
    cut -d: -f2) s after power-on"
for port in $(board_ports); do
    expect_stage "$port" done 20
done
finish_boards
stop_daemon
exit "$e2e_fail"
