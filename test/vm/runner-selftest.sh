#!/bin/bash
# Host-side test of run-in-vm itself: the command's exit code, stdout and stderr come back,
# arguments and --env values keep their exact bytes, the guest runs in our working directory,
# a --share directory carries files back, and --timeout stops a hung guest with 124.
# It must never leave files outside its own temporary directory.
set -uo pipefail
# shellcheck disable=SC2016 # The bash -c scripts expand in the guest, not here.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
runner=$here/run-in-vm
work=$(mktemp -d "${TMPDIR:-/tmp}/rpibootd-vm-selftest.XXXXXX")
trap 'rm -rf "$work"' EXIT

failures=0
expect() { # description, expected, actual
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1: expected '$2', got '$3'" >&2
        failures=$((failures + 1))
    fi
}

# One boot checks exit code, both output streams, quoting, environment, cwd and the share.
mkdir -p "$work/cwd"
cd "$work/cwd" || exit 1
weird="it's \"quoted\" \$HOME *"
RPVM_SELFTEST_COPIED=copied "$runner" --timeout 300 --share "$work/out" \
    --env "RPVM_SELFTEST_SET=a b  c" --env RPVM_SELFTEST_COPIED -- \
    bash -c 'printf "%s\n" "$1"; echo "to stderr" >&2
             echo "$PWD|$RPVM_SELFTEST_SET|$RPVM_SELFTEST_COPIED" >"$2/result"
             uname -r >"$2/kernel"; exit 3' \
    selftest "$weird" "$work/out" >"$work/stdout" 2>"$work/stderr"
rc=$?
cd "$here" || exit 1
if [ "$rc" -eq 77 ]; then
    echo "runner-selftest: the guest kernel is unavailable; skipping" >&2
    exit 77
fi
expect "the command's exit code is the runner's" 3 "$rc"
expect "stdout comes back byte for byte" "$weird" "$(cat "$work/stdout")"
expect "stderr comes back" "to stderr" "$(cat "$work/stderr")"
expect "cwd, --env NAME=VALUE and --env NAME reach the command" \
    "$work/cwd|a b  c|copied" "$(cat "$work/out/result" 2>/dev/null)"
guest_kernel=$(cat "$work/out/kernel" 2>/dev/null)
if [ -n "$guest_kernel" ] && [ "$guest_kernel" != "$(uname -r)" ]; then
    echo "ok   the command ran under the guest kernel ($guest_kernel)"
else
    echo "FAIL the command did not run under a guest kernel ('$guest_kernel')" >&2
    failures=$((failures + 1))
fi

# A guest that never finishes is stopped; the runner says so with 124.
"$runner" --timeout 3 -- sleep 1000 >"$work/stdout" 2>"$work/stderr"
expect "--timeout stops the VM with exit code 124" 124 "$?"
if grep -q "timed out after 3 s" "$work/stderr"; then
    echo "ok   the timeout is reported"
else
    echo "FAIL the timeout is not reported" >&2
    failures=$((failures + 1))
fi

if ((failures)); then
    echo "runner-selftest: $failures check(s) failed" >&2
    exit 1
fi
echo "runner-selftest: all checks passed"
