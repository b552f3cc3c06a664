#!/bin/bash
# Makes (once) the minimal Debian 12 root file system that the package install test boots
# with systemd as PID 1, and prints its path. Cached outside the repository, under
# ${RPIBOOTD_VM_CACHE:-/var/cache/rpibootd-vm}/roots/<hash>, keyed on the package list; a
# flock lets parallel runs share it. The Debian mirror is read at run time from this machine's
# apt sources (the first "deb.../debian" URI), never written into the repository.
# Exit codes: 0 and the path on stdout; 77 when debootstrap or a mirror is unavailable.
set -euo pipefail

cache=${RPIBOOTD_VM_CACHE:-/var/cache/rpibootd-vm}
suite=bookworm
# systemd, udev and dbus to boot; the package's run-time dependencies preinstalled because the
# guest has no network: `apt install ./rpibootd_*.deb` must find every dependency already there.
include=systemd-sysv,dbus,udev,kmod,libusb-1.0-0,libssl3,libudev1,libsystemd0,curl,ca-certificates,tar,procps

command -v debootstrap >/dev/null || { echo "make-root: debootstrap is not installed" >&2; exit 77; }

mirror_from_apt_sources() {
    local f
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
        [ -r "$f" ] || continue
        # deb822: "URIs: http://host/debian"; one-line: "deb [opts] http://host/debian suite ..."
        sed -n -E -e 's,^URIs:[[:space:]]+([^[:space:]]*/debian)/?$,\1,p' \
            -e 's,^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]*/debian)/?[[:space:]].*,\2,p' "$f"
    done | head -n1
}

key=$(printf '%s\n' "$suite" "$include" minbase | sha256sum | cut -c1-12)
root=$cache/roots/$suite-$key
mkdir -p "$cache/roots"
exec 9>"$cache/roots/lock"
flock 9
if [ ! -e "$root/.complete" ]; then
    mirror=$(mirror_from_apt_sources)
    [ -n "$mirror" ] || { echo "make-root: no Debian mirror in the apt sources" >&2; exit 77; }
    rm -rf "$root.tmp"
    echo "make-root: debootstrap $suite into $root (takes a few minutes)" >&2
    if ! debootstrap --variant=minbase --include="$include" "$suite" "$root.tmp" "$mirror" >&2; then
        echo "make-root: debootstrap failed; see $root.tmp/debootstrap/debootstrap.log" >&2
        exit 77
    fi
    # A quiet, fast boot: no getty on the (absent) consoles, empty apt lists are fine offline.
    chroot "$root.tmp" apt-get clean
    rm -f "$root.tmp/etc/machine-id"
    touch "$root.tmp/.complete"
    rm -rf "$root"
    mv "$root.tmp" "$root"
fi
echo "$root"
