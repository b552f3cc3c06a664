#!/usr/bin/env bash
# Soak of the real rpibootd process: 1000 sequential boots on one port, then 200
# rounds of 8 boots at once, with file descriptors, threads and RSS printed
# at the start and the end (rpibootd_soak fails when they grow).
# Usage: scripts/soak.sh [--smoke] [--binary PATH/rpibootd_soak]
#   --smoke   50 sequential boots and 10 rounds (the ctest `soak` label)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
binary=${RPIBOOTD_SOAK:-$here/build/debug/test/integration/rpibootd_soak}
sequential=1000
rounds=200
while [[ $# -gt 0 ]]; do
  case $1 in
    --smoke) sequential=50; rounds=10; shift ;;
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    *) echo "usage: soak.sh [--smoke] [--binary PATH]" >&2; exit 2 ;;
  esac
done
if [[ ! -x $binary ]]; then
  echo "soak: $binary not built (cmake --build BUILD --target rpibootd_soak)" >&2
  exit 77
fi
exec "$binary" --sequential "$sequential" --rounds "$rounds"
