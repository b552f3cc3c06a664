#!/usr/bin/env bash
# Prints the systemd-analyze security exposure figure of rpibootd.service
# (offline: the unit file is read, nothing is started or installed).
# Usage: scripts/exposure.sh [UNIT_FILE] [--max FIGURE]
# Exits 1 when the figure is above --max (default 2.0), 0 otherwise; 77 when
# systemd-analyze is missing or too old for --offline.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
unit=$here/systemd/rpibootd.service
max=2.0
while [[ $# -gt 0 ]]; do
  case $1 in
    --max) max=${2:?--max needs a figure}; shift 2 ;;
    *) unit=$1; shift ;;
  esac
done
if ! command -v systemd-analyze > /dev/null; then
  echo "exposure: systemd-analyze not found" >&2
  exit 77
fi
# The unit is analysed under its own name, from a copy in a scratch directory.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$unit" "$scratch/rpibootd.service"
if ! out=$(cd "$scratch" && systemd-analyze security --offline=true --no-pager rpibootd.service 2>&1); then
  # systemd-analyze exits non-zero when the threshold (default 100) is passed;
  # only a missing figure is an error here.
  :
fi
figure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<< "$out")
if [[ -z $figure ]]; then
  echo "$out" >&2
  echo "exposure: no figure (systemd-analyze too old for --offline?)" >&2
  exit 77
fi
# The entries that still cost something, for whoever wants to lower the figure.
grep '✗' <<< "$out" | sed 's/[[:space:]]\+$//' || true
echo "rpibootd.service exposure: $figure (goal: $max or lower)"
awk -v f="$figure" -v m="$max" 'BEGIN { exit !(f <= m) }'
