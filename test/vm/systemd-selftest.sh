#!/bin/bash
# Host-side test of run-in-vm --systemd-root: boots the root file system named by
# RPIBOOTD_VM_SYSTEMD_ROOT (e.g. debootstrap --variant=minbase
# --include=systemd-sysv,dbus,udev,kmod bookworm DIR) with systemd as PID 1 and checks that
# the command runs under it, sees vhci-hcd and the system bus, and returns its exit code.
# Skips (77) when the variable is unset. It must never modify that root (the VM's writes
# go to a tmpfs overlay).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${RPIBOOTD_VM_SYSTEMD_ROOT:-}
if [ -z "$root" ]; then
    echo "systemd-selftest: RPIBOOTD_VM_SYSTEMD_ROOT is not set; skipping" >&2
    exit 77
fi

cd / || exit 1
# shellcheck disable=SC2016 # Expands in the guest.
"$here/run-in-vm" --timeout 600 --systemd-root "$root" -- bash -c '
    set -u
    test "$(cat /proc/1/comm)" = systemd || { echo "PID 1 is not systemd" >&2; exit 1; }
    test -e /sys/devices/platform/vhci_hcd.0/attach || { echo "no vhci-hcd" >&2; exit 1; }
    busctl --system --no-pager list | grep -q "^org.freedesktop.systemd1 " ||
        { echo "systemd1 is not on the system bus" >&2; exit 1; }
    echo "systemd-selftest: checks passed in the guest"
    exit 42'
rc=$?
if [ "$rc" -eq 77 ]; then
    exit 77
elif [ "$rc" -ne 42 ]; then
    echo "systemd-selftest: FAIL: expected the command's exit code 42, got $rc" >&2
    exit 1
fi
echo "systemd-selftest: all checks passed"
