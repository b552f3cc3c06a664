# Small assertion helpers shared by the tools' shell tests.
set -euo pipefail

failures=0
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

pass() { echo "ok - $1"; }
fail() { echo "FAIL - $1"; failures=$((failures + 1)); }

# expect_ok NAME CMD...: the command must succeed.
expect_ok() {
  local name="$1"; shift
  if "$@" >"$scratch/out" 2>"$scratch/err"; then pass "$name"; else
    fail "$name (exit $?)"; cat "$scratch/out" "$scratch/err"; fi
}

# expect_fail NAME STATUS PATTERN CMD...: the command must exit with STATUS and
# say PATTERN on stderr.
expect_fail() {
  local name="$1" status="$2" pattern="$3"; shift 3
  local rc=0
  "$@" >"$scratch/out" 2>"$scratch/err" || rc=$?
  if [[ $rc -ne $status ]]; then
    fail "$name (exit $rc, wanted $status)"; cat "$scratch/err"; return
  fi
  if ! grep -q -- "$pattern" "$scratch/err"; then
    fail "$name (stderr lacks '$pattern')"; cat "$scratch/err"; return
  fi
  pass "$name"
}

# expect_same NAME A B: two files have the same bytes.
expect_same() {
  if cmp -s "$2" "$3"; then pass "$1"; else fail "$1 ($2 and $3 differ)"; fi
}

# new_key PRIVATE [PUBLIC [BITS]]: a fresh RSA key (2048 bits unless BITS) in
# PEM, and its public half in PUBLIC when given.
new_key() {
  openssl genrsa -out "$1" "${3:-2048}" 2>/dev/null
  if [[ -n "${2:-}" ]]; then openssl rsa -in "$1" -pubout -out "$2" 2>/dev/null; fi
}

hex_to_bin() { local hex; hex="$(cat)"; printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")"; }
bin_to_hex() { od -An -tx1 -v | tr -d ' \n'; }

finish() {
  if ((failures)); then echo "$failures check(s) failed"; exit 1; fi
  echo "all checks passed"
}
