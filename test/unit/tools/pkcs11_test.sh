#!/usr/bin/env bash
# pkcs11: keys through SoftHSM2: a token in a scratch directory holds an
# RSA-2048 key generated inside it (never extractable); rpiboot-digest and
# rpiboot-sign-bootcode sign with it and openssl checks every signature with
# the public key read back from the token.
# Usage: pkcs11_test.sh DIGEST SIGN_BOOTCODE FIXTURES_DIR   (exit 77: SoftHSM2 missing)
source "$(dirname "$0")/lib.sh"
# A fixed ts: line, so two signatures of the same file compare equal even when
# the clock ticks between them.
export SOURCE_DATE_EPOCH=1700000000
digest="$1"
sign="$2"
fixtures="$3"
module=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
         /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
  [[ -f $m ]] && module=$m && break
done
if [[ -z $module ]] || ! command -v softhsm2-util >/dev/null || ! command -v pkcs11-tool >/dev/null \
   || ! openssl engine pkcs11 >/dev/null 2>&1; then
  echo "SoftHSM2, pkcs11-tool or OpenSSL's pkcs11 engine is missing; skipping"
  exit 77
fi
cd "$scratch"
mkdir tokens
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\n' "$scratch" >softhsm2.conf
export SOFTHSM2_CONF="$scratch/softhsm2.conf"
softhsm2-util --init-token --free --label station --pin 1234 --so-pin 987654 >/dev/null
pkcs11-tool --module "$module" --token-label station --login --pin 1234 \
  --keypairgen --key-type rsa:2048 --label customer --id 01 >/dev/null 2>&1
pkcs11-tool --module "$module" --token-label station --login --pin 1234 --list-objects >objects.txt 2>&1
grep -A6 "Private Key Object" objects.txt | grep -q "never extractable" \
  && pass "the private key was generated in the token and is never extractable" \
  || { fail "private key attributes"; cat objects.txt; }
pkcs11-tool --module "$module" --token-label station --read-object --type pubkey --label customer \
  -o pub.der >/dev/null 2>&1
openssl rsa -pubin -inform DER -in pub.der -out pub.pem 2>/dev/null
uri="pkcs11:token=station;object=customer;type=private?pin-value=1234"

printf 'BOOT_UART=1\n' >boot.conf
expect_ok "rpiboot-digest signs with a pkcs11: key (-P MODULE)" "$digest" -i boot.conf -o boot.sig -k "$uri" -P "$module"
tail -n1 boot.sig | sed 's/^rsa2048: //' | hex_to_bin >sig.bin
openssl dgst -sha256 -verify pub.pem -signature sig.bin boot.conf >/dev/null \
  && pass "openssl verifies the token's signature with the token's public key" \
  || fail "token signature does not verify"
grep -q "^$(sha256sum boot.conf | cut -d' ' -f1)\$" boot.sig && pass "digest line is sha256sum's" \
  || fail "digest line"

RPIBOOT_PKCS11_MODULE="$module" "$digest" -i boot.conf -o boot2.sig -k "$uri" \
  && pass "the module can come from RPIBOOT_PKCS11_MODULE" || fail "RPIBOOT_PKCS11_MODULE"
printf '1234\n' >pin.txt
expect_ok "the PIN can come from pin-source=file:" \
  "$digest" -i boot.conf -o boot3.sig -k "pkcs11:token=station;object=customer;type=private?pin-source=file:$scratch/pin.txt" -P "$module"
expect_same "pin-source and pin-value give the same signature" boot.sig boot3.sig
expect_fail "a pkcs11: key without a module is a usage error" 2 "PKCS#11 module" \
  env -u RPIBOOT_PKCS11_MODULE "$digest" -i boot.conf -o x.sig -k "$uri"
# OpenSSL's pkcs11 engine (libp11 0.4.12, not this project) leaks its RSA method
# and context when a key cannot be loaded; LeakSanitizer would turn that into an
# abort under the ASan build, so only these two failure runs skip leak checking.
no_engine_leak_check=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
expect_fail "a wrong PIN is refused, and the PIN is not printed" 1 "pin-value=\*\*\*" \
  "${no_engine_leak_check[@]}" "$digest" -i boot.conf -o x.sig -k "pkcs11:token=station;object=customer;type=private?pin-value=97531" -P "$module"
grep -q 97531 "$scratch/err" && fail "the PIN appears in the message" || pass "the PIN stays out of messages"
expect_fail "an unknown object is refused" 1 "cannot find the private key" \
  "${no_engine_leak_check[@]}" "$digest" -i boot.conf -o x.sig -k "pkcs11:token=station;object=nothing;type=private?pin-value=1234" -P "$module"

tar -xf "$fixtures/bootfiles.bin" 2712/bootcode5.bin
expect_ok "rpiboot-sign-bootcode counter-signs with the token" \
  "$sign" -c 2712 -i 2712/bootcode5.bin -o counter.bin -k "$uri" -P "$module"
python3 - <<'PY'
import struct
d = open('counter.bin', 'rb').read()
at = len(d) - 532
assert struct.unpack_from('<III', d, at) == (at, 16, 0)
open('covered', 'wb').write(d[:at + 12])
open('sig', 'wb').write(d[at + 12:at + 268])
open('n', 'w').write(d[at + 268:at + 524][::-1].hex().upper())
PY
openssl dgst -sha256 -verify pub.pem -signature sig covered >/dev/null \
  && pass "openssl verifies the token's counter-signature" || fail "counter-signature"
[[ "$(cat n)" == "$(openssl rsa -pubin -in pub.pem -noout -modulus | cut -d= -f2)" ]] \
  && pass "the block embeds the token's public key" || fail "embedded modulus"

finish
