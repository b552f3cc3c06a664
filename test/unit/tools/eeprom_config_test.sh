#!/usr/bin/env bash
# rpiboot-eeprom-config on synthetic 2711/2712 images: print, replace, embed.
# Usage: eeprom_config_test.sh EEPROM_CONFIG DIGEST TEST_EEPROM FIXTURES_DIR
source "$(dirname "$0")/lib.sh"
config="$1"
digest="$2"
make_eeprom="$3"
fixtures="$4"
cd "$scratch"
cp "$fixtures/recovery/boot.conf" boot.conf
openssl genrsa -out key.pem 2048 2>/dev/null
openssl rsa -in key.pem -pubout -out pub.pem 2>/dev/null
"$make_eeprom" 2711 in2711.bin
"$make_eeprom" 2712 in2712.bin

printf '[all]\nBOOT_UART=0\nWAKE_ON_GPIO=1\nPOWER_OFF_ON_HALT=0\nNET_INSTALL_AT_POWER_ON=1\n' >shipped.txt
"$config" in2711.bin >printed.txt
expect_same "prints the current configuration" printed.txt shipped.txt

# Round trip: replace, read back, and nothing outside bootconf.txt's space changed.
expect_ok "replaces the configuration (2711)" "$config" --config boot.conf --out out2711.bin in2711.bin
"$config" out2711.bin >back.txt
expect_same "the new configuration reads back (2711)" back.txt boot.conf
cmp -s -n $((0x72e00)) in2711.bin out2711.bin && pass "bytes before bootconf.txt unchanged" \
  || fail "bytes before bootconf.txt changed"
cmp -s -i $((0x7f000)) in2711.bin out2711.bin && pass "reserved last 4 KiB unchanged" \
  || fail "reserved last 4 KiB changed"
"$config" -c shipped.txt -o restored.bin out2711.bin
expect_same "putting the old configuration back restores the image" restored.bin in2711.bin

expect_ok "replaces the configuration (2712)" "$config" -c boot.conf -o out2712.bin in2712.bin
"$config" out2712.bin >back.txt
expect_same "the new configuration reads back (2712)" back.txt boot.conf
cmp -s -n $((0xa3000)) in2712.bin out2712.bin && pass "2712 bytes before bootconf.txt unchanged" \
  || fail "2712 bytes before bootconf.txt changed"
cmp -s -i $((0x107000)) in2712.bin out2712.bin && pass "2712 bytes after its padding unchanged" \
  || fail "2712 bytes after its padding changed"

# Secure boot: signed configuration, signature and public key embedded.
"$digest" -i boot.conf -o boot.sig -k key.pem
expect_ok "embeds bootconf.sig and pubkey.bin" \
  "$config" --config boot.conf --digest boot.sig --pubkey pub.pem --out signed.bin in2711.bin
"$config" signed.bin >back.txt
expect_same "signed image keeps the configuration" back.txt boot.conf
expect_ok "embeds with the private key PEM as --pubkey" \
  "$config" -c boot.conf -d boot.sig -p key.pem -o signed2.bin in2711.bin
expect_same "private or public PEM embed the same key" signed.bin signed2.bin
expect_fail "a signature of another configuration is refused" 1 "does not match" \
  "$config" --config shipped.txt --digest boot.sig --pubkey pub.pem --out x.bin in2711.bin

# Rejections.
expect_fail "a file that is not an EEPROM image is refused" 1 "is not an EEPROM image" \
  "$config" boot.conf
head -c 4077 /dev/zero | tr '\0' '#' >big.txt
expect_fail "a configuration over 4076 bytes is refused" 1 "at most 4076 bytes" \
  "$config" --config big.txt --out x.bin in2711.bin
expect_fail "--config without --out is a usage error" 2 "need --out" \
  "$config" --config boot.conf in2711.bin
[[ ! -e x.bin ]] && pass "no output is written on failure" || fail "output written on failure"

finish
