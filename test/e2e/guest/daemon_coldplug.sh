#!/bin/bash
# End-to-end, inside the test VM: a board already on the bus (enumerated, udev done) before
# rpibootd starts is found at start-up (coldplug) and booted.
#   daemon_coldplug.sh BUILD_DIR RESULTS_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
make_firmware
install_udev_rules

start_boards coldplug --hold --serial-base 4d000001 "2711:msd,sums=$work/sums.2711"
port=$(board_ports)
wait_for "the kernel to enumerate the board at $port" 30 test -f "/sys/bus/usb/devices/$port/idProduct"
udevadm settle --timeout=30
say "board enumerated at $port as $(cat "/sys/bus/usb/devices/$port/idVendor"):$(cat "/sys/bus/usb/devices/$port/idProduct") before rpibootd starts"

start_daemon
wait_boards_ended 60
expect_stage "$port" done 20
finish_boards
stop_daemon
exit "$e2e_fail"
