#!/bin/bash
# Smoke test of the test VM, run inside it by run-in-vm: checks that the USB/IP virtual host
# controller is loaded, that udevd handles coldplugged and hotplugged USB devices, that the
# system bus answers and that the host root is visible read-only with writable overlays.
# It must never run on the host itself (it loads kernel modules): it refuses to.
set -uo pipefail
# shellcheck disable=SC2016 # The bash -c scripts expand in the guest, not here.

failures=0
check() { # description, command...
    local what=$1
    shift
    if "$@" >/tmp/smoke-check.log 2>&1; then
        echo "ok   $what"
    else
        echo "FAIL $what" >&2
        sed 's/^/     | /' /tmp/smoke-check.log >&2
        failures=$((failures + 1))
    fi
}

if [ ! -f /run/rpibootd-vm/config ]; then
    echo "smoke.sh: not inside a run-in-vm guest; refusing to load modules here" >&2
    exit 2
fi

echo "kernel $(uname -r), cwd $PWD"
echo "USB drivers: $(ls /sys/bus/usb/drivers | tr '\n' ' ')"

check "vhci_hcd.0 has an attach file" test -w /sys/devices/platform/vhci_hcd.0/attach
check "8 vhci controllers" test "$(ls -d /sys/devices/platform/vhci_hcd.* | wc -l)" -eq 8
check "usbip-core is loaded" test -d /sys/module/usbip_core
check "vhci root hubs have 15 ports" \
    test "$(cat /sys/bus/usb/devices/usb1/maxchild)" -eq 15
check "the usb driver list has hub and usb" \
    test -d /sys/bus/usb/drivers/hub -a -d /sys/bus/usb/drivers/usb

check "udevadm info describes the first root hub" \
    bash -c 'udevadm info --query=property --path=/sys/bus/usb/devices/usb1 |
             grep -qx DEVTYPE=usb_device'
check "udevd processed the coldplugged root hub" \
    bash -c 'test -f "/run/udev/data/c$(cat /sys/bus/usb/devices/usb1/dev)"'
check "udevd processes a hotplugged bus (dummy_hcd)" \
    bash -c 'modprobe dummy_hcd && udevadm settle --timeout=60 &&
             bus=$(ls -d /sys/devices/platform/dummy_hcd.0/usb[0-9]*) &&
             test -f "/run/udev/data/c$(cat "$bus/dev")" &&
             udevadm info --query=property --path="$bus" | grep -q ^USEC_INITIALIZED='

check "the system bus lists org.freedesktop.DBus" \
    bash -c 'busctl --system list --no-pager | grep -q "^org.freedesktop.DBus "'
check "DBUS_SYSTEM_BUS_ADDRESS is exported" test -n "${DBUS_SYSTEM_BUS_ADDRESS:-}"

check "loopback is up (for USB/IP servers in the guest)" \
    bash -c 'test "$(($(cat /sys/class/net/lo/flags) & 1))" -eq 1'
check "the root is the host's, read-only underneath" \
    bash -c 'grep -q " / overlay " /proc/mounts && test -x /usr/bin/busctl'
check "/tmp is writable" bash -c 'echo x >/tmp/smoke-write && test "$(cat /tmp/smoke-write)" = x'
check "/run is a fresh tmpfs" bash -c 'grep -q " /run tmpfs " /proc/mounts'
check "the guest kernel's modules are at /lib/modules" test -d "/lib/modules/$(uname -r)/kernel"

if ((failures)); then
    echo "smoke: $failures check(s) failed" >&2
    exit 1
fi
echo "smoke: all checks passed"
