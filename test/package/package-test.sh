#!/bin/bash
# The Debian package install test (ctest label "package"), on the host: builds the packages
# (packaging/build-deb.sh) unless RPIBOOTD_DEB_DIR names a folder holding them, makes or reuses
# the cached Debian 12 root (make-root.sh), lays out a share with the .debs, a file:// firmware
# mirror made from the fixtures and the USB/IP board program, and boots the root with systemd
# as PID 1 to run guest-install-test.sh there. The cached root is never modified (the VM
# writes to a tmpfs overlay).
#   package-test.sh WORK_DIR [RPIBOOT_USBIP_BOARDS]
# Exit: 0 pass, 1 fail, 77 skipped (not root, no QEMU, no debootstrap or mirror, no kernel).
set -uo pipefail

work=${1:?usage: package-test.sh WORK_DIR [RPIBOOT_USBIP_BOARDS]}
boards_bin=${2:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
fixtures=${RPIBOOT_FIXTURES_DIR:-$src/test/fixtures/firmware}
runner=$src/test/vm/run-in-vm
skip() { echo "package-test: skipped: $*" >&2; exit 77; }
die() { echo "package-test: $*" >&2; exit 1; }

((EUID == 0)) || skip "needs root (debootstrap, and the VM runner exports / over 9p)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
[ -f "$fixtures/SHA256SUMS" ] || skip "no firmware fixtures in $fixtures"
t0=$SECONDS

mkdir -p "$work"
work=$(cd "$work" && pwd)
share=$work/share
rm -rf "$share"
mkdir -p "$share/debs" "$share/results"

# The packages.
debs=${RPIBOOTD_DEB_DIR:-}
if [ -z "$debs" ]; then
    debs=$work/deb
    "$src/packaging/build-deb.sh" "$debs" >"$work/build-deb.log" 2>&1 ||
        { tail -n 40 "$work/build-deb.log" >&2; die "packaging/build-deb.sh failed; see $work/build-deb.log"; }
    echo "package-test: packages built in $((SECONDS - t0)) s"
fi
cp "$debs"/rpibootd_*.deb "$debs"/rpibootd-cli_*.deb "$share/debs/" 2>/dev/null ||
    die "no rpibootd_*.deb and rpibootd-cli_*.deb in $debs"

# The root file system (cached; minutes the first time).
root=$("$here/make-root.sh") || { rc=$?; [ "$rc" = 77 ] && skip "no Debian root"; die "make-root.sh failed"; }

# A file:// mirror laid out as the upstream release (usbboot tree with its rpi-eeprom
# submodule), from the fixtures plus stand-ins, and the pins that match it (computed from
# those files; the helper takes them with --pins, the real pins stay as they are).
m=$share/mirror
"$src/firmware/make-test-mirror" "$m" "$share/pins.txt" "$fixtures" ||
    die "firmware/make-test-mirror failed"
# The same with one byte of start.elf changed: the helper must refuse it and install nothing.
cp -r "$m" "$share/mirror-tampered"
printf 'X' | dd of="$share/mirror-tampered/msd/start.elf" bs=1 seek=4096 conv=notrunc status=none
# What each board must receive, by the name it asks for (fixture hashes, and the stand-in's).
sum() { awk -v want="./$1" '$2 == want { print $1 }' "$fixtures/SHA256SUMS"; }
{
    echo "--sha256 bootcode.bin:$(sum msd/bootcode.bin)"
    echo "--sha256 start.elf:$(sum msd/start.elf)"
    echo "--sha256 start4.elf:$(sum msd/start.elf)"
    echo "--sha256 bootcode4.bin:$(sum 2711/bootcode4.bin)"
    echo "--sha256 config.txt:$(sum mass-storage-gadget64/config.txt)"
    echo "--sha256 boot.img:$(sha256sum <"$m/mass-storage-gadget64/boot.img" | cut -d' ' -f1)"
} >"$share/board-hashes"

# The USB/IP front-end (its libraries are all in the root).
if [ -n "$boards_bin" ] && [ -x "$boards_bin" ]; then
    cp "$boards_bin" "$share/rpiboot-usbip-boards"
else
    echo "package-test: no rpiboot-usbip-boards given: the boards part will fail" >&2
fi
cp "$here/guest-install-test.sh" "$share/"

# Units the test does not need slow the boot under TCG.
mask="systemd.mask=e2scrub_reap.service systemd.mask=systemd-timesyncd.service"
mask+=" systemd.mask=apt-daily.timer systemd.mask=apt-daily-upgrade.timer"
mask+=" systemd.mask=getty@tty1.service systemd.mask=serial-getty@ttyS0.service"
echo "package-test: booting $root with systemd (setup took $((SECONDS - t0)) s)"
rc=0
(cd / && "$runner" --timeout 900 --systemd-root "$root" --share "$share" --merge-output \
    --console "$work/console.txt" --append "$mask" -- "$share/guest-install-test.sh" "$share") || rc=$?
echo "package-test: exit $rc after $((SECONDS - t0)) s in all; results in $share/results"
[ -s "$share/results/exposure.txt" ] &&
    echo "package-test: rpibootd.service exposure $(cat "$share/results/exposure.txt")"
exit "$rc"
