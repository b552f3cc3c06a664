#!/usr/bin/env bash
# rpiboot-sign-bootcode and rpiboot-key-convert, checked against openssl and
# Python's standard library (never against the tools' own output alone).
# Usage: sign_bootcode_test.sh SIGN_BOOTCODE KEY_CONVERT FIXTURES_DIR
source "$(dirname "$0")/lib.sh"
sign="$1"
convert="$2"
fixtures="$3"
cd "$scratch"
new_key key.pem pub.pem
new_key other.pem
tar -xf "$fixtures/bootfiles.bin" 2712/bootcode5.bin
cp 2712/bootcode5.bin rpi-signed.bin

# Independent reader of a 2712 signature block: prints "len keynum version",
# writes the covered bytes, the signature and a PEM of the embedded key.
cat >block.py <<'PY'
import struct, sys, base64
data = open(sys.argv[1], 'rb').read()
at = len(data) - 532
length, keynum, version = struct.unpack_from('<III', data, at)
assert length == at, (length, at)
open(sys.argv[2] + '.covered', 'wb').write(data[:at + 12])
open(sys.argv[2] + '.sig', 'wb').write(data[at + 12:at + 268])
n = int.from_bytes(data[at + 268:at + 524], 'little')
e = int.from_bytes(data[at + 524:at + 532], 'little')
def der_int(v):
    b = v.to_bytes((v.bit_length() + 8) // 8, 'big')
    return b'\x02' + der_len(len(b)) + b
def der_len(l):
    if l < 128: return bytes([l])
    b = l.to_bytes((l.bit_length() + 7) // 8, 'big')
    return bytes([0x80 | len(b)]) + b
def seq(b): return b'\x30' + der_len(len(b)) + b
rsakey = seq(der_int(n) + der_int(e))
algo = seq(b'\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00')
spki = seq(algo + b'\x03' + der_len(len(rsakey) + 1) + b'\x00' + rsakey)
pem = base64.encodebytes(spki).decode().replace('\n', '')
with open(sys.argv[2] + '.pem', 'w') as f:
    f.write('-----BEGIN PUBLIC KEY-----\n')
    for i in range(0, len(pem), 64): f.write(pem[i:i + 64] + '\n')
    f.write('-----END PUBLIC KEY-----\n')
print(length, keynum, version)
PY

# The shipped loader carries Raspberry Pi's block (key 0, version 1).
read -r len keynum version < <(python3 block.py rpi-signed.bin rpi)
[[ $keynum == 0 && $version == 1 ]] && pass "shipped bootcode5.bin has Raspberry Pi's block" \
  || fail "shipped block is key $keynum version $version"
openssl dgst -sha256 -verify rpi.pem -signature rpi.sig rpi.covered >/dev/null \
  && pass "openssl verifies Raspberry Pi's block with the key it carries" \
  || fail "Raspberry Pi's block does not verify"

expect_ok "counter-signs with a PEM key" "$sign" -c 2712 -i rpi-signed.bin -o counter.bin -k key.pem
size_in=$(stat -c %s rpi-signed.bin)
size_out=$(stat -c %s counter.bin)
[[ $((size_out - size_in)) -eq 532 ]] && pass "counter-signing adds 532 bytes" \
  || fail "counter-signing added $((size_out - size_in)) bytes"
cmp -s -n "$size_in" rpi-signed.bin counter.bin && pass "the signed loader is kept byte for byte" \
  || fail "the signed loader changed"
read -r len keynum version < <(python3 block.py counter.bin cust)
[[ $len == "$size_in" && $keynum == 16 && $version == 0 ]] \
  && pass "outer block: length, key 16, version 0" || fail "outer block $len $keynum $version"
openssl dgst -sha256 -verify pub.pem -signature cust.sig cust.covered >/dev/null \
  && pass "openssl verifies the counter-signature with the customer public key" \
  || fail "counter-signature does not verify with pub.pem"
cmp -s <(openssl rsa -pubin -in cust.pem -outform DER 2>/dev/null) \
  <(openssl rsa -pubin -in pub.pem -outform DER 2>/dev/null) \
  && pass "the block embeds the customer public key" || fail "embedded key differs"
openssl dgst -sha256 -sign key.pem -out expected.sig cust.covered
expect_same "signature equals openssl's (PKCS#1 v1.5 is deterministic)" cust.sig expected.sig

expect_ok "-e lists both blocks as good" "$sign" -c 2712 -e counter.bin
grep -q "keynum 16 version 0 .* good" "$scratch/out" && grep -q "keynum 0 version 1 .* good" "$scratch/out" \
  && pass "-e shows the customer and Raspberry Pi blocks" || { fail "-e output"; cat "$scratch/out"; }
python3 -c "
import sys; d = bytearray(open('counter.bin','rb').read()); d[100] ^= 1
open('tampered.bin','wb').write(d)"
rc=0; "$sign" -c 2712 -e tampered.bin >tampered.txt || rc=$?
[[ $rc -eq 1 ]] && grep -q "BAD" tampered.txt && pass "-e reports a tampered loader as BAD, exit 1" \
  || { fail "tampering not reported (exit $rc)"; cat tampered.txt; }

expect_ok "-n and -v are stored" "$sign" -c 2712 -i rpi-signed.bin -o v3.bin -k key.pem -n 16 -v 3
read -r len keynum version < <(python3 block.py v3.bin v3)
[[ $version == 3 ]] && pass "version 3 stored" || fail "version $version"

# HSM wrapper: signs with openssl outside the tool; -p names the public key.
cat >wrapper.sh <<SH
#!/bin/sh
[ "\$1" = "-a" ] && [ "\$2" = "rsa2048-sha256" ] || exit 3
openssl dgst -sha256 -sign "$scratch/key.pem" "\$3" | od -An -tx1 -v | tr -d ' \n'
SH
chmod +x wrapper.sh
openssl rsa -in other.pem -pubout -out other-pub.pem 2>/dev/null
expect_ok "counter-signs through an HSM wrapper" "$sign" -c 2712 -i rpi-signed.bin -o hsm.bin -H ./wrapper.sh -p pub.pem
expect_same "HSM and PEM key give the same loader" hsm.bin counter.bin
expect_fail "an HSM wrapper with the wrong public key is refused" 1 "does not verify" \
  "$sign" -c 2712 -i rpi-signed.bin -o x.bin -H ./wrapper.sh -p other-pub.pem
expect_fail "-H without -p is a usage error" 2 "needs the public key" \
  "$sign" -c 2712 -i rpi-signed.bin -o x.bin -H ./wrapper.sh
expect_fail "2711 is refused with the reason" 2 "BCM2711" "$sign" -c 2711 -i rpi-signed.bin -o x.bin -k key.pem
expect_fail "key number 5 is refused" 1 "key number 5" "$sign" -c 2712 -i rpi-signed.bin -o x.bin -k key.pem -n 5
expect_fail "version 33 is refused" 1 "0-32" "$sign" -c 2712 -i rpi-signed.bin -o x.bin -k key.pem -v 33
head -c 112200 /dev/urandom >big.bin
expect_fail "a result over 110 KiB is refused" 1 "at most 112640" "$sign" -c 2712 -i big.bin -o x.bin -k key.pem
new_key small.pem "" 1024
expect_fail "an RSA-1024 key is refused" 1 "RSA-1024" "$sign" -c 2712 -i rpi-signed.bin -o x.bin -k small.pem
[[ ! -e x.bin ]] && pass "no output on failure" || fail "output written on failure"

# Key conversion: pubkey.bin = modulus LE (256) + exponent LE (8), from openssl's modulus.
expect_ok "converts a PEM to pubkey.bin" "$convert" -o pubkey.bin pub.pem
modulus=$(openssl rsa -pubin -in pub.pem -noout -modulus | cut -d= -f2)
python3 -c "
import sys
n = int('$modulus', 16)
open('expected-pubkey.bin','wb').write(n.to_bytes(256,'little') + (65537).to_bytes(8,'little'))"
expect_same "pubkey.bin matches the modulus and exponent openssl reports" pubkey.bin expected-pubkey.bin
"$convert" -o pubkey-from-private.bin key.pem
expect_same "a private PEM gives the same pubkey.bin" pubkey-from-private.bin expected-pubkey.bin
expect_ok "converts pubkey.bin back to PEM" "$convert" --inform bin -o back.pem pubkey.bin
cmp -s <(openssl rsa -pubin -in back.pem -outform DER 2>/dev/null) \
  <(openssl rsa -pubin -in pub.pem -outform DER 2>/dev/null) \
  && pass "PEM -> bin -> PEM round trip (openssl compares the keys)" || fail "round trip differs"
"$convert" --hash pub.pem >hash.txt
[[ "$(cat hash.txt)" == "$(sha256sum expected-pubkey.bin | cut -d' ' -f1)" ]] \
  && pass "--hash is sha256sum of the pubkey.bin encoding" || fail "--hash differs"
head -c 263 expected-pubkey.bin >short.bin
expect_fail "a 263-byte pubkey.bin is refused" 1 "264" "$convert" --inform bin short.bin

finish
