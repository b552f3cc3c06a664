#!/usr/bin/env bash
# rpiboot-digest against the openssl command-line tool, in both directions.
# Usage: digest_test.sh RPIBOOT_DIGEST FIXTURES_DIR
source "$(dirname "$0")/lib.sh"
digest="$1"
fixtures="$2"
conf="$fixtures/recovery/boot.conf"
cd "$scratch"

new_key key.pem pub.pem
new_key other.pem other.pub.pem
new_key key3072.pem pub3072.pem 3072
cp "$conf" boot.conf

# Unsigned digest: the published hash of recovery/boot.conf and SOURCE_DATE_EPOCH.
SOURCE_DATE_EPOCH=1700000000 "$digest" -i boot.conf -o plain.sig
printf '2e763f6cc60961a4653d901fe2681651840ae6103f1ba98587ee0b319f75949c\nts: 1700000000\n' >want.sig
expect_same "unsigned .sig is hash + ts" plain.sig want.sig

# Sign here, verify with openssl.
SOURCE_DATE_EPOCH=1700000000 "$digest" -i boot.conf -o signed.sig -k key.pem
[[ $(stat -c %s signed.sig) -eq 602 ]] && pass "signed .sig is 602 bytes" || fail "signed .sig size"
grep '^rsa2048: ' signed.sig | cut -d' ' -f2 | tr -d '\n' | hex_to_bin >signed.bin
expect_ok "openssl verifies our signature" \
  openssl dgst -sha256 -verify pub.pem -signature signed.bin boot.conf

# Sign with openssl, verify here; and the two signatures are identical (PKCS#1 v1.5).
openssl dgst -sha256 -sign key.pem -out theirs.bin boot.conf
{ sha256sum boot.conf | cut -d' ' -f1; echo "ts: 1700000000"; echo "rsa2048: $(bin_to_hex <theirs.bin)"; } >theirs.sig
expect_ok "we verify openssl's signature" "$digest" -i boot.conf -k pub.pem -v theirs.sig
grep -q 'Verified OK' "$scratch/out" && pass "verify prints Verified OK" || fail "verify output"
expect_same "our signature equals openssl's" signed.sig theirs.sig

# Rejections.
cp boot.conf tampered.conf
printf 'x' >>tampered.conf
expect_fail "tampered file is rejected" 1 "does not match" \
  "$digest" -i tampered.conf -k pub.pem -v signed.sig
expect_fail "wrong key is rejected" 1 "does not verify" \
  "$digest" -i boot.conf -k other.pub.pem -v signed.sig
head -c 400 signed.sig >truncated.sig
expect_fail "truncated signature is rejected" 1 "truncated" \
  "$digest" -i boot.conf -k pub.pem -v truncated.sig
expect_fail "unsigned .sig cannot be verified with a key" 1 "no rsa2048 line" \
  "$digest" -i boot.conf -k pub.pem -v plain.sig
expect_fail "RSA-3072 private key is refused" 1 "RSA-3072 key; only RSA-2048" \
  "$digest" -i boot.conf -o x.sig -k key3072.pem
expect_fail "RSA-3072 public key is refused" 1 "RSA-3072 key; only RSA-2048" \
  "$digest" -i boot.conf -k pub3072.pem -v signed.sig
expect_fail "-v without -k is a usage error" 2 "needs the public key" \
  "$digest" -i boot.conf -v signed.sig
expect_fail "missing input is reported" 1 "no such file" \
  "$digest" -i nothing.bin -o x.sig

# HSM wrapper: called as WRAPPER -a rsa2048-sha256 FILE, prints hex.
cat >hsm.sh <<HSM
#!/bin/sh
[ "\$1" = -a ] && [ "\$2" = rsa2048-sha256 ] || exit 9
openssl dgst -sha256 -sign "$scratch/key.pem" "\$3" | od -An -tx1 -v
HSM
chmod +x hsm.sh
SOURCE_DATE_EPOCH=1700000000 "$digest" -i boot.conf -o hsm.sig -H ./hsm.sh
expect_same "HSM signature equals the key signature" hsm.sig signed.sig
printf '#!/bin/sh\nexit 4\n' >broken.sh && chmod +x broken.sh
expect_fail "failing HSM wrapper is reported" 1 "exited with status 4" \
  "$digest" -i boot.conf -o x.sig -H ./broken.sh

finish
