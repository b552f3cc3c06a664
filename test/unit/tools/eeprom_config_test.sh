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
new_key key.pem pub.pem
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

# Loaders, timestamp, extraction: compared with the Python model of the format.
ref="python3 $(dirname "$0")/eeprom_reference.py"
head -c 26516 /dev/urandom >bootcode.bin
expect_ok "replaces the 2712 bootcode" "$config" --bootcode bootcode.bin -o bc2712.bin in2712.bin
$ref in2712.bin ref-bc2712.bin bootcode bootcode.bin
expect_same "bootcode replacement matches the reference model" bc2712.bin ref-bc2712.bin
head -c 78864 /dev/urandom >bootsys.bin
expect_ok "replaces bootsys of an A/B image" "$config" -s bootsys.bin -o bs2712.bin in2712.bin
$ref in2712.bin ref-bs2712.bin bootsys bootsys.bin
expect_same "bootsys replacement matches the reference model" bs2712.bin ref-bs2712.bin
expect_ok "sets the update timestamp (2712: both copies)" "$config" -t 1700000000 -o ts2712.bin in2712.bin
$ref in2712.bin ref-ts2712.bin timestamp 1700000000
expect_same "timestamp matches the reference model (2712)" ts2712.bin ref-ts2712.bin
expect_ok "sets the update timestamp (2711)" "$config" --timestamp 1700000000 -o ts2711.bin in2711.bin
$ref in2711.bin ref-ts2711.bin timestamp 1700000000
expect_same "timestamp matches the reference model (2711)" ts2711.bin ref-ts2711.bin
mkdir extracted
expect_ok "extracts the files" "$config" -x -o extracted out2711.bin
expect_same "extracted bootconf.txt" extracted/bootconf.txt boot.conf
python3 -c "
import struct; d = open('in2711.bin','rb').read(); n = struct.unpack_from('>I', d, 4)[0]
open('ref-bootcode.bin','wb').write(d[8:8+n])"
expect_same "extracted bootcode.bin is the first section's body" extracted/bootcode.bin ref-bootcode.bin
head -c 140000 /dev/urandom >huge.bin
expect_fail "a bootcode that does not fit is refused" 1 "fit before" \
  "$config" --bootcode huge.bin -o x.bin in2712.bin
expect_fail "bootcode replacement in a 2711 image keeps 128 KiB for the loader" 1 "128 KiB" \
  "$config" --bootcode bootcode.bin -o x.bin in2711.bin
# --edit runs $EDITOR on the current configuration.
printf '#!/bin/sh\nprintf "BOOT_ORDER=0xf41\\n" >>"$1"\n' >editor.sh
chmod +x editor.sh
expect_ok "--edit runs the editor" env EDITOR="$PWD/editor.sh" VISUAL= "$config" --edit -o edited.bin in2711.bin
{ cat shipped.txt; printf 'BOOT_ORDER=0xf41\n'; } >expected-edit.txt
"$config" edited.bin >edited.txt
expect_same "the edited configuration is stored" edited.txt expected-edit.txt
expect_fail "a failing editor leaves no image" 1 "editor" env EDITOR=false VISUAL= "$config" -e -o x.bin in2711.bin

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
