#!/bin/bash
# Stage 2 of the rpibootd test VM: copied by run-in-vm into the control directory and run
# as PID 1 (host-root mode) or by a oneshot unit (systemd mode). It loads the USB/IP host
# controller, starts udevd and the system bus (host-root mode only), runs the command with
# its output in the control directory, writes the exit status there and powers off. It must
# never write to the host outside the control and shared directories.

ctl=/run/rpibootd-vm
systemd_mode=0
[ "${1:-}" = --systemd ] && systemd_mode=1

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8
log() { echo "rpibootd-vm: $*" >/dev/console; }
stamp() { read -r up _ </proc/uptime && echo "$1 $up" >>"$ctl/timing"; }
power_off() {
    sync
    if ((systemd_mode)); then
        exit 0 # The unit's SuccessAction powers the machine off cleanly.
    fi
    echo o >/proc/sysrq-trigger
    sleep 10 2>/dev/null
}

stamp stage2
# shellcheck source=/dev/null
. "$ctl/config"

modprobe vhci-hcd || log "cannot load vhci-hcd"
stamp modules

if ((!systemd_mode)); then
    hostname rpibootd-vm
    # Loopback for USB/IP servers inside the guest; there is no other network device.
    ip link set lo up 2>/dev/null || busybox ip link set lo up || log "cannot bring lo up"
    # A fresh machine id in the overlay, as dbus-daemon and udev expect one.
    dbus-uuidgen >/etc/machine-id 2>/dev/null || log "cannot write /etc/machine-id"
    mkdir -p /var/lib/dbus && ln -sf /etc/machine-id /var/lib/dbus/machine-id

    mkdir -p /run/udev
    /lib/systemd/systemd-udevd --daemon || log "cannot start systemd-udevd"
    stamp udevd
    # Coldplug only what the tests use: replaying every device's event costs ~20 s under TCG.
    # RPVM_COLDPLUG=all replays them all.
    if [ "${RPVM_COLDPLUG:-usb}" = all ]; then
        udevadm trigger --type=subsystems --action=add
        udevadm trigger --type=devices --action=add
    else
        udevadm trigger --type=devices --action=add --subsystem-match=usb
    fi
    stamp trigger
    udevadm settle --timeout=60 || log "udevadm settle timed out"
    stamp settle

    mkdir -p /run/dbus
    dbus-daemon --system --fork --nopidfile || log "cannot start dbus-daemon --system"
fi
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
stamp command

rc=0
if [ "${RPVM_MERGE_OUTPUT:-0}" = 1 ]; then
    /bin/sh "$ctl/cmd.sh" </dev/null >>"$ctl/stdout" 2>&1 || rc=$?
else
    /bin/sh "$ctl/cmd.sh" </dev/null >>"$ctl/stdout" 2>>"$ctl/stderr" || rc=$?
fi
stamp finished

# Only a complete status file counts: write it under another name, then rename. The host
# may stop the VM as soon as it sees it, so every write to the shares is flushed first.
sync
echo "$rc" >"$ctl/status.tmp" && mv "$ctl/status.tmp" "$ctl/status"
power_off
