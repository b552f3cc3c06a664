# Shared helpers of the end-to-end tests, sourced by the scripts in this folder. They run
# inside the test VM (test/vm/run-in-vm) as root: vhci-hcd is loaded, udevd and a system
# dbus-daemon run, the root file system is a throw-away overlay of the host's. Nothing here
# may run on the host itself: e2e_init refuses to.
# shellcheck shell=bash

e2e_fail=0
e2e_pids=()

say() { echo "e2e: $*"; }
fail() {
    echo "e2e: FAIL $*" >&2
    e2e_fail=1
}

# e2e_init BUILD_DIR RESULTS_DIR: paths, a work folder, the firmware fixtures.
e2e_init() {
    if [[ ! -f /run/rpibootd-vm/config ]]; then
        echo "e2e: not inside a run-in-vm guest; refusing to attach USB devices here" >&2
        exit 2
    fi
    build=$1
    results=$2
    src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
    fixtures=${RPIBOOT_FIXTURES_DIR:-$src/test/fixtures/firmware}
    boards_bin=$build/sim/usbip/rpiboot-usbip-boards
    rpiboot_bin=$build/cli/rpiboot
    rpibootd_bin=$build/daemon/rpibootd
    work=$(mktemp -d /tmp/e2e.XXXXXX)
    mkdir -p "$results"
    [[ -x $boards_bin ]] || { echo "e2e: $boards_bin is not built" >&2; exit 77; }
    [[ -f $fixtures/SHA256SUMS ]] || { echo "e2e: no firmware fixtures in $fixtures" >&2; exit 77; }
    [[ -w /sys/devices/platform/vhci_hcd.0/attach ]] || { echo "e2e: no vhci-hcd" >&2; exit 77; }
    local up
    up=$(awk '$1 == "command" { print $2 }' /run/rpibootd-vm/timing 2>/dev/null)
    say "kernel $(uname -r); the VM reached the test ${up:-?} s after the kernel started"
    trap e2e_cleanup EXIT
}

e2e_cleanup() {
    local pid
    for pid in "${e2e_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${e2e_pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    # What the kernel saw, for a failure's post-mortem.
    dmesg >"$results/dmesg.txt" 2>/dev/null
}

# install_udev_rules: the project's udev rules and its group, as the package installs them:
# boot-mode device nodes 0660 root:rpiboot, usb-storage kept off the BCM2837's
# mass-storage interface.
install_udev_rules() {
    getent group rpiboot >/dev/null || groupadd --system rpiboot
    cp "$src/udev-rules/60-rpibootd.rules" /etc/udev/rules.d/
    udevadm control --reload
}

# The fixture hash of a file, by its path in SHA256SUMS ("msd/start.elf").
fixture_sha() {
    awk -v want="./$1" '$2 == want { print $1 }' "$fixtures/SHA256SUMS"
}

# make_firmware: $work/fw, a firmware base laid out as firmware/README.md shows (for the
# daemon; msd/bootcode4.bin and msd/start4.elf are symbolic links as upstream ships them),
# $work/msd-flat, a flat msd set without links (for the CLI), and per-chip hash lists
# $work/sums.<chip> naming each file as the board asks for it.
make_firmware() {
    local fw=$work/fw
    mkdir -p "$fw/2711" "$fw/msd" "$fw/mass-storage-gadget64" "$fw/recovery"
    cp "$fixtures/bootfiles.bin" "$fw/"
    cp "$fixtures/2711/bootcode4.bin" "$fw/2711/"
    cp "$fixtures/msd/bootcode.bin" "$fixtures/msd/start.elf" "$fw/msd/"
    ln -s ../2711/bootcode4.bin "$fw/msd/bootcode4.bin"
    ln -s start.elf "$fw/msd/start4.elf"
    cp "$fixtures/mass-storage-gadget64/config.txt" "$fw/mass-storage-gadget64/"
    cp "$fixtures/mass-storage-gadget64/boot-secure-msd.img" "$fw/mass-storage-gadget64/boot.img"
    cp "$fixtures/recovery/config.txt" "$fw/recovery/"
    mkdir -p "$work/msd-flat"
    cp "$fixtures/2711/bootcode4.bin" "$work/msd-flat/bootcode4.bin"
    cp "$fixtures/msd/start.elf" "$work/msd-flat/start4.elf"
    cp "$fixtures/msd/bootcode.bin" "$fixtures/msd/start.elf" "$work/msd-flat/"
    {
        echo "$(fixture_sha 2711/bootcode4.bin)  bootcode4.bin"
        echo "$(fixture_sha msd/start.elf)  start4.elf"
    } >"$work/sums.2711"
    {
        echo "$(fixture_sha msd/bootcode.bin)  bootcode.bin"
        echo "$(fixture_sha msd/start.elf)  start.elf"
    } >"$work/sums.2837"
    # BCM2712 files come out of bootfiles.bin; their hashes from an independent unpacking.
    mkdir -p "$work/bootfiles"
    tar -xf "$fixtures/bootfiles.bin" -C "$work/bootfiles"
    {
        (cd "$work/bootfiles/2712" && sha256sum -- *)
        echo "$(fixture_sha mass-storage-gadget64/config.txt)  config.txt"
        echo "$(fixture_sha mass-storage-gadget64/boot-secure-msd.img)  boot.img"
    } >"$work/sums.2712"
}

# start_boards NAME ARGS...: runs rpiboot-usbip-boards in the background with results in
# $results/NAME; sets boards_pid and boards_dir.
start_boards() {
    local name=$1
    shift
    boards_dir=$results/$name
    rm -rf "$boards_dir"
    mkdir -p "$boards_dir"
    "$boards_bin" -v -r "$boards_dir" --require-hashes "$@" >"$boards_dir/stdout.txt" \
        2>"$boards_dir/log.txt" &
    boards_pid=$!
    e2e_pids+=("$boards_pid")
    wait_for "boards.tsv of $name" 30 test -f "$boards_dir/boards.tsv"
}

# finish_boards: SIGTERM (for --hold) and the program's verdict; prints its summary.
finish_boards() {
    kill -TERM "$boards_pid" 2>/dev/null
    local rc=0
    wait "$boards_pid" || rc=$?
    sed 's/^/  /' "$boards_dir/stdout.txt"
    if ((rc != 0)); then
        fail "rpiboot-usbip-boards says not every board ended as meant (exit $rc); see $boards_dir"
        tail -n 30 "$boards_dir/log.txt" | sed 's/^/  | /' >&2
    fi
    return "$rc"
}

# Port paths of the current boards, one per line, in board order.
board_ports() { awk -F'\t' 'NR > 1 { print $2 }' "$boards_dir/boards.tsv"; }
board_expect() { awk -F'\t' -v p="$1" 'NR > 1 && $2 == p { print $6 }' "$boards_dir/boards.tsv"; }
board_name() { awk -F'\t' -v p="$1" 'NR > 1 && $2 == p { print $5 }' "$boards_dir/boards.tsv"; }

# wait_for WHAT SECONDS COMMAND...: retries COMMAND every 0.1 s until it succeeds.
wait_for() {
    local what=$1 seconds=$2
    shift 2
    local end=$((SECONDS + seconds))
    until "$@" 2>/dev/null; do
        if ((SECONDS >= end)); then
            fail "timed out after ${seconds} s waiting for $what"
            return 1
        fi
        sleep 0.1
    done
}

holding() { grep -q '"holding"' "$boards_dir/summary.json" 2>/dev/null; }
# wait_boards_ended SECONDS: every board has ended (the program runs with --hold).
wait_boards_ended() { wait_for "every virtual board to end" "$1" holding; }

# ---- the daemon

# start_daemon ARGS...: installs the D-Bus policy, starts rpibootd on the system bus and
# waits until it owns io.rpibootd1.
start_daemon() {
    [[ -x $rpibootd_bin ]] || { echo "e2e: $rpibootd_bin is not built" >&2; exit 77; }
    mkdir -p /etc/dbus-1/system.d
    cp "$src/dbus/io.rpibootd1.conf" /etc/dbus-1/system.d/
    dbus-send --system --print-reply --dest=org.freedesktop.DBus / \
        org.freedesktop.DBus.ReloadConfig >/dev/null
    "$rpibootd_bin" --bus system --firmware-dir "$work/fw" -v "$@" \
        >"$results/rpibootd.log" 2>&1 &
    daemon_pid=$!
    e2e_pids+=("$daemon_pid")
    wait_for "rpibootd to own io.rpibootd1" 30 name_has_owner io.rpibootd1
}

name_has_owner() {
    [[ $(busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        NameHasOwner s "$1") == "b true" ]]
}

stop_daemon() {
    kill -TERM "$daemon_pid" 2>/dev/null
    local rc=0
    wait "$daemon_pid" || rc=$?
    ((rc == 0)) || fail "rpibootd exited with status $rc on SIGTERM"
}

# The object of the board at a port (sd_bus_path_encode: every byte outside [A-Za-z0-9],
# and a leading digit, becomes _ and two hex digits).
device_path() {
    local port=$1 out= i c
    for ((i = 0; i < ${#port}; i++)); do
        c=${port:i:1}
        if [[ $c =~ [A-Za-z0-9] ]] && ! ((i == 0)) || [[ $c =~ [A-Za-z] ]]; then
            out+=$c
        else
            out+=$(printf '_%02x' "'$c")
        fi
    done
    echo "/io/rpibootd1/device/$out"
}

# A Device property as plain text (busctl prints 's "done"').
device_property() {
    local v
    v=$(busctl --system get-property io.rpibootd1 "$(device_path "$1")" io.rpibootd1.Device \
        "$2" 2>/dev/null) || return 1
    v=${v#* }
    v=${v#\"}
    echo "${v%\"}"
}

stage_is() { [[ $(device_property "$1" Stage) == "$2" ]]; }

# expect_stage PORT STAGE SECONDS
expect_stage() {
    if wait_for "board $1 to reach $2" "$3" stage_is "$1" "$2"; then
        say "ok   board $1 ($(board_name "$1")): Stage $2"
    else
        fail "board $1 ($(board_name "$1")): Stage '$(device_property "$1" Stage)'," \
            "LastError '$(device_property "$1" LastError)'"
    fi
}
