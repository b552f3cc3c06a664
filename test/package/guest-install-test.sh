#!/bin/bash
# The package install test, inside the VM: a Debian 12 root booted with systemd as PID 1
# (test/vm/run-in-vm --systemd-root). Installs the built packages with apt, fills the firmware
# directory with rpibootd-fetch-firmware from a file:// mirror, stops the service and plugs in
# virtual boards through the USB/IP front-end so that the udev rule starts it again, checks
# every board reaches `done` on the system bus, that the unit is healthy, prints
# `systemd-analyze security`, then purges and checks nothing of ours is left but captured data.
#   guest-install-test.sh SHARE      (SHARE: debs/, mirror/, rpiboot-usbip-boards; results/ out)
set -uo pipefail

share=${1:?usage: guest-install-test.sh SHARE}
results=$share/results
mkdir -p "$results"
failures=0
say() { echo "package-test: $*"; }
ok() { say "ok   $*"; }
fail() {
    echo "package-test: FAIL $*" >&2
    failures=$((failures + 1))
}
# check WHAT COMMAND...: one assertion.
check() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi
}
# wait_for WHAT SECONDS COMMAND...
wait_for() {
    local what=$1 end=$((SECONDS + $2))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= end)); then
            fail "timed out after $2 s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
    ok "$what"
}
active() { [ "$(systemctl is-active rpibootd.service)" = active ]; }
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 SYSTEMD_PAGER='' SYSTEMD_COLORS=0

[ "$(cat /proc/1/comm)" = systemd ] || { echo "package-test: PID 1 is not systemd" >&2; exit 2; }
say "guest up $(cut -d' ' -f1 /proc/uptime) s; system state: $(systemctl is-system-running)"

# ---- install
start=$SECONDS
cd "$share/debs" || exit 2
if apt-get install -y ./rpibootd_*.deb ./rpibootd-cli_*.deb >"$results/apt-install.txt" 2>&1; then
    ok "apt-get install ./rpibootd_*.deb ./rpibootd-cli_*.deb ($((SECONDS - start)) s)"
else
    fail "apt-get install; its output:"
    sed 's/^/  | /' "$results/apt-install.txt" >&2
    exit 1
fi
cd / || exit 2
check "rpibootd.service is enabled" test "$(systemctl is-enabled rpibootd.service)" = enabled
wait_for "rpibootd.service is active after installation" 30 active
check "group rpiboot exists" getent group rpiboot
for f in /usr/sbin/rpibootd /usr/bin/rpiboot /usr/bin/rpiboot-digest /usr/sbin/rpibootd-fetch-firmware \
    /etc/rpibootd/rpibootd.json /etc/rpibootd/profiles/msd.json \
    /lib/udev/rules.d/60-rpibootd.rules /usr/share/dbus-1/system.d/io.rpibootd1.conf \
    /usr/share/dbus-1/system-services/io.rpibootd1.service /usr/lib/sysusers.d/rpibootd.conf; do
    check "installed $f" test -e "$f"
done
check "man pages rpibootd(8) and rpiboot(1) are installed" \
    bash -c 'dpkg -L rpibootd | grep -q "man8/rpibootd.8" && dpkg -L rpibootd-cli | grep -q "man1/rpiboot.1"'
for f in /usr/bin/rpibootctl /usr/share/bash-completion/completions/rpibootctl \
    /usr/lib/systemd/catalog/rpibootd.catalog; do
    check "installed $f" test -e "$f"
done
check "man page rpibootctl(1) is installed" bash -c 'dpkg -L rpibootd | grep -q "man1/rpibootctl.1"'
check "journalctl knows rpibootd's catalog" \
    bash -c 'journalctl --update-catalog && journalctl --list-catalog | grep -q "^8a00d4ce41064535b7083ce804913060 "'
check "firmware layout directories" test -d /usr/share/rpibootd/firmware/msd
check "rpibootd owns io.rpibootd1 on the system bus" busctl --system status io.rpibootd1

# ---- firmware
fw=/usr/share/rpibootd/firmware
if rpibootd-fetch-firmware --pins "$share/pins.txt" --mirror "file://$share/mirror-tampered" >"$results/fetch-tampered.txt" 2>&1; then
    fail "rpibootd-fetch-firmware accepted a mirror with a changed start.elf"
else
    ok "rpibootd-fetch-firmware refuses a tampered mirror: $(tail -n1 "$results/fetch-tampered.txt")"
fi
check "a refused download installs nothing" test -z "$(find "$fw" -type f -o -type l)"
if rpibootd-fetch-firmware --pins "$share/pins.txt" --mirror "file://$share/mirror" >"$results/fetch.txt" 2>&1; then
    ok "rpibootd-fetch-firmware installed the pinned files from the file:// mirror"
else
    fail "rpibootd-fetch-firmware: $(cat "$results/fetch.txt")"
fi
if rpibootd-fetch-firmware --pins "$share/pins.txt" --mirror "file://$share/mirror" 2>&1 | grep -q "up to date"; then
    ok "rpibootd-fetch-firmware run again: up to date"
else
    fail "rpibootd-fetch-firmware run again did not say up to date"
fi
check "rpibootd --check-config accepts the installed configuration" rpibootd --check-config
rpibootd --check-config >"$results/check-config.txt" 2>&1 || true
for p in msd mass-storage-gadget recovery; do
    check "rpibootd --check-config: the $p set is complete" \
        bash -c "grep -A1 '^  $p ' '$results/check-config.txt' | grep -q 'firmware: complete'"
done
check "systemctl reload rpibootd" systemctl reload rpibootd.service
check "still active after reload" active

# ---- boards plugged in start the service
systemctl stop rpibootd.service
check "rpibootd.service stopped for the hotplug check" bash -c '! systemctl is-active -q rpibootd.service'
boards=$share/rpiboot-usbip-boards
if [ -x "$boards" ] && [ -w /sys/devices/platform/vhci_hcd.0/attach ]; then
    mkdir -p "$results/boards"
    # shellcheck disable=SC2046 # one option and its value per line
    "$boards" -v -r "$results/boards" --hold --timeout 240 $(cat "$share/board-hashes") \
        "2711:msd*2" "2837:msd" "2712:mass-storage-gadget" \
        >"$results/boards/stdout.txt" 2>"$results/boards/log.txt" &
    boards_pid=$!
    wait_for "the udev rule started rpibootd.service when the boards appeared" 60 active
    wait_for "every virtual board ended" 300 grep -q '"holding"' "$results/boards/summary.json"
    busctl --system --no-pager tree io.rpibootd1 | tee "$results/busctl-tree.txt"
    devices=$(busctl --system --no-pager call io.rpibootd1 /io/rpibootd1 io.rpibootd1.Manager ListDevices)
    echo "$devices" | tee "$results/list-devices.txt"
    n_done=$(grep -o '"done"' <<<"$devices" | wc -l)
    if [ "$n_done" -eq 4 ]; then ok "busctl: all 4 boards are done"; else fail "busctl: $n_done of 4 boards done"; fi
    # journald: every board's entries carry its PORT, CHIP, ... fields, so
    # `journalctl PORT=...` tells one board's story.
    port=$(grep -oE '"[0-9]+-[0-9.]+"' <<<"$devices" | head -n 1 | tr -d '"')
    journalctl --no-pager -o verbose PORT="$port" >"$results/journal-port.txt" 2>&1 || true
    check "journald: entries with PORT=$port carry the CHIP field" grep -q '^ *CHIP=BCM' "$results/journal-port.txt"
    check "journald: journalctl PORT=$port shows that board's boot" grep -q '^ *MESSAGE=booted: ' "$results/journal-port.txt"
    check "journald: journalctl MESSAGE_ID= finds the boots that finished" \
        bash -c 'journalctl --no-pager -o cat MESSAGE_ID=8180813a1bcc4345860c058350c1cf22 | grep -q "^booted: "'

    # rpibootctl: reading is for everyone, control for root and group rpiboot.
    # User nobody, without and then with group rpiboot (setpriv: no account to create).
    gid=$(getent group rpiboot | cut -d: -f3)
    as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
    as_member() { setpriv --reuid=nobody --regid=nogroup --groups="$gid" -- "$@"; }
    as_nobody rpibootctl status >"$results/rpibootctl-status.txt" 2>&1
    check "rpibootctl status works for an unprivileged user" grep -q "^$port .* done " "$results/rpibootctl-status.txt"
    as_nobody rpibootctl status --json >"$results/rpibootctl-status.json" 2>&1
    check "rpibootctl status --json as that user" grep -q '"schema": 1' "$results/rpibootctl-status.json"
    refused=$(as_nobody rpibootctl retry "$port" 2>&1); rc=$?
    if [ "$rc" -eq 1 ] && grep -q "permission denied: only root and members of group rpiboot" <<<"$refused"; then
        ok "rpibootctl retry as an unprivileged user is refused: $refused"
    else
        fail "rpibootctl retry as an unprivileged user: exit $rc: $refused"
    fi
    check "rpibootctl retry as a member of rpiboot works" as_member rpibootctl retry "$port"
    check "rpibootctl hold as a member of rpiboot" as_member rpibootctl hold '9-*'
    check "the held port is kept in /var/lib/rpibootd/held-ports" grep -qx '9-\*' /var/lib/rpibootd/held-ports
    check "rpibootctl release as a member of rpiboot" as_member rpibootctl release '9-*'
    kill -TERM "$boards_pid" 2>/dev/null
    if wait "$boards_pid"; then ok "rpiboot-usbip-boards: every board ended as meant"; else
        fail "rpiboot-usbip-boards: not every board ended as meant"
        tail -n 20 "$results/boards/log.txt" >&2
    fi
    sed 's/^/  /' "$results/boards/stdout.txt"
else
    fail "no rpiboot-usbip-boards or vhci-hcd: the boards part was not run"
    systemctl start rpibootd.service
fi

# ---- health and exposure
systemctl status --no-pager --lines=15 rpibootd.service | tee "$results/status.txt"
prop() { systemctl show -p "$1" --value rpibootd.service; }
state="$(prop ActiveState) $(prop SubState) $(prop Result) $(prop NRestarts)"
check "systemctl: active running success, no restarts ($state)" test "$state" = "active running success 0"
systemd-analyze security --no-pager rpibootd.service >"$results/security.txt" 2>&1
exposure=$(sed -n 's/.*Overall exposure level for rpibootd.service: *\([0-9.]*\).*/\1/p' "$results/security.txt")
say "systemd-analyze security rpibootd.service: overall exposure $exposure"
grep -E '^ *✗' "$results/security.txt" | sed 's/^/  /' | head -n 40
echo "$exposure" >"$results/exposure.txt"
check "exposure figure printed" test -n "$exposure"

# ---- purge (the VM runner's own rpibootd-vm-command.service is not ours to purge)
mkdir -p /var/lib/rpibootd/metadata
echo '{"serial":"7e570001","note":"captured by the package test"}' >/var/lib/rpibootd/metadata/7e570001.json
start=$SECONDS
if apt-get purge -y rpibootd rpibootd-cli >"$results/apt-purge.txt" 2>&1; then
    ok "apt-get purge rpibootd rpibootd-cli ($((SECONDS - start)) s)"
else
    fail "apt-get purge; its output:"
    sed 's/^/  | /' "$results/apt-purge.txt" >&2
fi
# shellcheck disable=SC2016 # expands in the inner shell
check "dpkg knows neither package any more" \
    bash -c '! dpkg-query -W -f="\${db:Status-Abbrev}" rpibootd rpibootd-cli 2>/dev/null | grep -q .'
check "rpibootd.service is gone" bash -c '! systemctl cat rpibootd.service'
check "group rpiboot is gone" bash -c '! getent group rpiboot'
check "captured metadata is kept" test -f /var/lib/rpibootd/metadata/7e570001.json
left=$(find /etc /usr /lib /var /opt -xdev \( -name '*rpibootd*' -o -name '*rpiboot*' -o -name 'io.rpibootd1*' \) \
    -not -path '/var/lib/rpibootd' -not -path '/var/lib/rpibootd/metadata' \
    -not -path '/var/lib/rpibootd/metadata/*' -not -name 'rpibootd-vm-*' 2>/dev/null)
if [ -z "$left" ]; then ok "nothing of ours is left but captured data"; else
    fail "left behind after purge:"
    while IFS= read -r f; do echo "  | $f"; done <<<"$left" >&2
fi

say "$failures failure(s)"
[ "$failures" -eq 0 ]
