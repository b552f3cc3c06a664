#!/usr/bin/env bash
# Installs what the project needs, builds it and runs the test suite.
# Usage: scripts/test.sh [preset [ctest args...]]   (debug by default; asan, tsan, release)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-debug}"
shift || true

if [[ $(id -u) -eq 0 ]]; then
  bash scripts/install-deps.sh
fi

cmake --preset "$preset"
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)" "$@"
