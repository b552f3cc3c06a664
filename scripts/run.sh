#!/usr/bin/env bash
# The main job: install what is needed, build, and run rpibootd.
#
# With a Raspberry Pi in USB boot mode attached, rpibootd runs in the
# foreground on the system bus and boots it (and every board plugged in
# after it) until Ctrl-C. With none attached it boots virtual boards on a
# private D-Bus, shows them with busctl, and exits. The virtual boards need no
# firmware on the machine: BCM2711/2837/2835 boards boot from the mass-storage
# set compiled into rpibootd. RPIBOOT_FIRMWARE_DIR=DIR serves a firmware base
# instead (e.g. one laid out by scripts/demo-firmware.sh DIR or installed by
# rpibootd-fetch-firmware), which also boots BCM2712 boards (mass-storage
# gadget); RPIBOOT_VIRTUAL=SPEC picks the boards (rpibootd --virtual).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -eq 0 ]]; then
  bash scripts/install-deps.sh
fi
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
daemon=$PWD/build/release/daemon/rpibootd

board_present() {
  local dev
  for dev in /sys/bus/usb/devices/*; do
    [[ -f $dev/idVendor && $(cat "$dev/idVendor") == 0a5c ]] || continue
    case $(cat "$dev/idProduct") in 2763|2764|2711|2712) return 0 ;; esac
  done
  return 1
}

if board_present && [[ -z ${RPIBOOT_DEMO:-} ]]; then
  echo "A board in USB boot mode is attached: running rpibootd (Ctrl-C to stop)."
  bus=system
  busctl --system status >/dev/null 2>&1 || bus=none
  exec "$daemon" --bus "$bus" -v ${RPIBOOT_FIRMWARE_DIR:+--firmware-dir "$RPIBOOT_FIRMWARE_DIR"}
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -n ${RPIBOOT_FIRMWARE_DIR:-} ]]; then
  firmware=$RPIBOOT_FIRMWARE_DIR
  boards=${RPIBOOT_VIRTUAL:-2711:4,2712:2,2837:2}
  source="firmware from $firmware"
else
  # An empty firmware base: every file comes from the embedded set.
  firmware=$work/no-firmware-installed
  mkdir -p "$firmware"
  boards=${RPIBOOT_VIRTUAL:-2711:4,2837:2,2835:2}
  source="the firmware embedded in rpibootd (no firmware installed)"
fi
echo "No board in USB boot mode is attached: booting virtual boards $boards from $source."
export daemon firmware boards
exec dbus-run-session -- bash scripts/watch-virtual.sh
