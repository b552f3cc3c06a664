#!/usr/bin/env bash
# One memcheck run of rpibootd booting three virtual boards (two BCM2711,
# one BCM2712) from a demo firmware tree, off D-Bus and udev, until they are
# done. Fails on any memcheck error or definite/indirect/possible leak.
# Usage: scripts/valgrind.sh [--binary PATH/rpibootd]
# Exits 77 when valgrind is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
binary=${RPIBOOTD:-$here/build/debug/daemon/rpibootd}
while [[ $# -gt 0 ]]; do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    *) echo "usage: valgrind.sh [--binary PATH]" >&2; exit 2 ;;
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
