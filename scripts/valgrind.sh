#!/usr/bin/env bash
# Memcheck runs of rpibootd. First: three virtual boards (two BCM2711, one
# BCM2712) from a demo firmware tree, off D-Bus and udev, until they are
# done. Then, with --soak, the daemon on a private D-Bus with
# --virtual-control, 100 boards booted one after another and 10 rounds of 8,
# each plugged, booted and unplugged (rpibootd_soak --valgrind). Fails on any
# memcheck error or definite/indirect/possible leak.
# Usage: scripts/valgrind.sh [--binary PATH/rpibootd] [--soak PATH/rpibootd_soak]
# Exits 77 when valgrind is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
binary=${RPIBOOTD:-$here/build/debug/daemon/rpibootd}
soak=
while [[ $# -gt 0 ]]; do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --soak) soak=${2:?--soak needs a path}; shift 2 ;;
    *) echo "usage: valgrind.sh [--binary PATH] [--soak PATH]" >&2; exit 2 ;;
  esac
done
if ! command -v valgrind > /dev/null; then
  echo "valgrind: not installed" >&2
  exit 77
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$here/scripts/demo-firmware.sh" "$scratch/firmware" > /dev/null
# Built-in profiles only, firmware from the demo tree; the BCM2712 (port
# 1-3, the third board) gets the gadget profile.
printf '{ "firmware_dir": "%s/firmware", "profiles_dir": "%s/profiles",\n  "rules": [ { "port": "1-3", "profile": "mass-storage-gadget" } ] }\n' "$scratch" "$scratch" \
  > "$scratch/rpibootd.json"
mkdir -p "$scratch/profiles"
valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
  --show-leak-kinds=definite,indirect,possible --track-origins=yes --num-callers=30 \
  "$binary" -c "$scratch/rpibootd.json" --bus none --no-udev --virtual 2711:2,2712:1 \
  --exit-when-done --firmware-dir "$scratch/firmware"
echo "valgrind: rpibootd ran clean"
if [[ -n $soak ]]; then
  # The soak starts the rpibootd it was built against, under valgrind.
  "$soak" --sequential 100 --rounds 10 --valgrind
  echo "valgrind: rpibootd ran clean through 189 plugged, booted and unplugged boards"
fi
