#!/usr/bin/env bash
# rpibootd-fetch-firmware against a file:// mirror built here: the repository's fixtures where
# they provide a file, synthetic stand-ins for the rest. The script's own file list (sources and
# destinations) is used, but every digest is computed here from the mirror's files and handed
# to the script with --pins; the real pins are never touched.
# (firmware/make-test-mirror builds the mirror and computes the pins.)
# Usage: fetch_firmware_test.sh FETCH_SCRIPT FIXTURES_DIR RPIBOOT_TEST_EEPROM [RPIBOOTD]
source "$(dirname "$0")/lib.sh"
fetch="$1"
fixtures="$2"
make_eeprom="$3"
rpibootd="${4:-}"
cd "$scratch"

# --- the mirror -------------------------------------------------------------------------------
# "SOURCE -> DEST (...)" lines of the pinned list.
bash "$fetch" --list >real-list.txt
grep -q '^release: raspberrypi/usbboot ' real-list.txt && pass "--list names the pinned tag" ||
  fail "--list names the pinned tag"
n=$(grep -c ' -> ' real-list.txt)
[[ $n -ge 20 ]] && pass "pinned list has $n files" || fail "pinned list parsed ($n lines)"
grep -q 'verified by git-blob-id' real-list.txt && grep -q 'verified by sha256' real-list.txt &&
  pass "--list says which check applies" || fail "--list shows both checks"

# The mirror and the pins that match it (computed from the mirror's files, not the real pins).
mirror="$scratch/mirror"
make_mirror="$(dirname "$fetch")/make-test-mirror"
bash "$make_mirror" "$mirror" pins.txt "$fixtures" "$make_eeprom"
cut -d' ' -f4,5 pins.txt >layout.txt
cmp -s <(sed -n 's/^\([^ ]*\) -> \([^ ]*\) (.*$/\1 \2/p' real-list.txt) layout.txt &&
  pass "test pins cover the real list" || fail "test pins cover the real list"
[[ $(grep -c '^gitblob .* mass-storage-gadget64/boot.img mass-storage-gadget64/boot.img$' pins.txt) == 1 ]] &&
  pass "gadget boot.img pinned by git blob id" || fail "gadget boot.img pinned by git blob id"
if command -v git >/dev/null; then
  [[ $(git hash-object --no-filters "$mirror/mass-storage-gadget64/boot.img") == \
     $(awk '$5 == "mass-storage-gadget64/boot.img" { print $2 }' pins.txt) ]] &&
    pass "blob id is git's" || fail "blob id is git's"
fi
for f in msd/bootcode.bin msd/start.elf firmware/bootfiles.bin; do
  fixture=$f; [[ $f == firmware/bootfiles.bin ]] && fixture=bootfiles.bin
  expect_same "mirror's $f is the fixture" "$mirror/$f" "$fixtures/$fixture"
done
write_pins() { bash "$make_mirror" --pins-only "$1" /dev/stdout; }

# Every destination of the list is a regular file equal to its source in MIRROR.
installed_from() {  # installed_from NAME DEST MIRROR
  local src dst bad=0
  while read -r src dst; do
    if [[ -L "$2/$dst" || ! -f "$2/$dst" ]] || ! cmp -s "$3/$src" "$2/$dst"; then
      echo "  $dst is not a copy of $src"; bad=1
    fi
  done <layout.txt
  if ((bad)); then fail "$1"; else pass "$1"; fi
}
nothing_installed() {  # nothing_installed NAME DEST
  local left
  left=$(find "$2" -mindepth 1 2>/dev/null | head -5)
  if [[ -z $left ]]; then pass "$1"; else fail "$1 (found: $left)"; fi
}
pins="$scratch/pins.txt"
run_fetch() { bash "$fetch" --pins "$pins" --mirror "file://$1" --dest "$2" "${@:3}"; }

# --- a complete install -----------------------------------------------------------------------
dest="$scratch/fw"
expect_ok "install from a file:// mirror" run_fetch "$mirror" "$dest"
grep -q "installed" "$scratch/out" && pass "says installed" || fail "says installed"
installed_from "every file installed, links resolved to real files" "$dest" "$mirror"
for f in msd/bootcode.bin msd/start4.elf msd/bootcode4.bin secure-boot-msd/2711/bootcode4.bin bootfiles.bin \
  mass-storage-gadget64/boot.img mass-storage-gadget64/config.txt recovery/2711/bootcode4.bin \
  recovery/2711/pieeprom.original.bin recovery/2712/bootcode5.bin \
  recovery/2712/pieeprom.original.bin recovery/config.txt recovery/boot.conf; do
  [[ -f "$dest/$f" ]] || fail "layout has $f"
done
pass "layout of firmware/README.md"
# A BCM2711 loader beside bootfiles.bin would shadow the archive's for the gadget set.
[[ ! -e "$dest/2711/bootcode4.bin" ]] && pass "no loader shadows bootfiles.bin" ||
  fail "no loader shadows bootfiles.bin"
expect_same "msd/start4.elf is start.elf" "$dest/msd/start4.elf" "$dest/msd/start.elf"
expect_same "msd/bootcode4.bin is the 2711 loader" "$dest/msd/bootcode4.bin" "$fixtures/2711/bootcode4.bin"
[[ -z $(find "$dest" -name '.staging.*') ]] && pass "no staging left" || fail "no staging left"
grep -qx "recovery/2712/bootcode5.bin" "$dest/.rpibootd-fetch-firmware" &&
  pass "record lists the installed files" || fail "record lists the installed files"

run_fetch "$mirror" "$dest" --list >list.txt
grep -q 'mass-storage-gadget64/boot.img -> mass-storage-gadget64/boot.img' list.txt &&
  grep -A1 'mass-storage-gadget64/boot.img ->' list.txt | grep -q 'git-blob-id' &&
  grep -A1 'msd/bootcode.bin ->' list.txt | grep -q 'sha256' &&
  pass "--list with test pins" || fail "--list with test pins"

# --- over an install of the earlier layout ----------------------------------------------------
# It had msd's BCM2711 files as symbolic links and a 2711/ loader beside bootfiles.bin, listed
# in its record; a per-port overlay the user added is not in the record.
older="$scratch/older"
mkdir -p "$older/msd/1-1.3" "$older/2711"
cp "$fixtures/msd/start.elf" "$older/msd/start.elf"
cp "$fixtures/2711/bootcode4.bin" "$older/2711/bootcode4.bin"
ln -s start.elf "$older/msd/start4.elf"
ln -s ../2711/bootcode4.bin "$older/msd/bootcode4.bin"
echo "port overlay" >"$older/msd/1-1.3/config.txt"
printf '%s\n' msd/start.elf 2711/bootcode4.bin msd/start4.elf msd/bootcode4.bin >"$older/.rpibootd-fetch-firmware"
expect_ok "install over the earlier layout" run_fetch "$mirror" "$older"
installed_from "earlier layout replaced by regular files" "$older" "$mirror"
[[ ! -e "$older/2711/bootcode4.bin" ]] && pass "files dropped from the release are removed" ||
  fail "files dropped from the release are removed"
[[ -f "$older/msd/1-1.3/config.txt" ]] && pass "files not installed by the helper are kept" ||
  fail "files not installed by the helper are kept"

# --- idempotent -------------------------------------------------------------------------------
before=$(stat -c %Y.%i "$dest/bootfiles.bin")
expect_ok "second run succeeds" run_fetch "$mirror" "$dest"
grep -q "up to date" "$scratch/out" && pass "second run says up to date" || fail "second run says up to date"
[[ $(stat -c %Y.%i "$dest/bootfiles.bin") == "$before" ]] && pass "second run rewrites nothing" ||
  fail "second run rewrites nothing"
expect_ok "--force installs again" run_fetch "$mirror" "$dest" --force
grep -q "installed" "$scratch/out" && pass "--force says installed" || fail "--force says installed"

# --- the daemon sees complete sets ------------------------------------------------------------
if [[ -n $rpibootd ]]; then
  mkdir -p no-profiles
  printf '{ "firmware_dir": "%s", "profiles_dir": "%s/no-profiles" }\n' "$dest" "$scratch" >d.json
  expect_ok "rpibootd --check-config on the installed tree" "$rpibootd" --check-config -c d.json
  for p in msd mass-storage-gadget recovery secure-boot-msd secure-boot-recovery; do
    grep -A1 "^  $p " "$scratch/out" | grep -q 'firmware: complete' &&
      pass "check-config: $p complete" || { fail "check-config: $p complete"; cat "$scratch/out"; }
  done
  rm "$dest/recovery/2712/bootcode5.bin"
  expect_ok "check-config with a file removed" "$rpibootd" --check-config -c d.json
  grep -A1 "^  recovery " "$scratch/out" | grep -q 'INCOMPLETE: missing 2712/bootcode5.bin' &&
    pass "check-config names the missing file" || { fail "check-config names the missing file"; cat "$scratch/out"; }
  expect_ok "a damaged install is repaired" run_fetch "$mirror" "$dest"
  installed_from "repaired install is complete" "$dest" "$mirror"
fi

# --- corrupted file: nothing installed --------------------------------------------------------
bad="$scratch/bad-mirror"
cp -a "$mirror" "$bad"
printf 'X' | dd of="$bad/rpi-eeprom/firmware-2712/latest/recovery.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_fail "corrupted file is rejected" 1 "rpi-eeprom/firmware-2712/latest/recovery.bin" \
  run_fetch "$bad" "$scratch/fresh1"
grep -q "nothing installed" "$scratch/err" && pass "corruption: says nothing installed" ||
  fail "corruption: says nothing installed"
nothing_installed "corrupted file: nothing installed" "$scratch/fresh1"

# The file checked by git blob id.
cp -a "$mirror" "$scratch/bad-blob"
printf 'X' >>"$scratch/bad-blob/mass-storage-gadget64/boot.img"
expect_fail "git blob id mismatch is rejected" 1 "mass-storage-gadget64/boot.img.*git-blob-id" \
  run_fetch "$scratch/bad-blob" "$scratch/fresh2"
nothing_installed "blob id mismatch: nothing installed" "$scratch/fresh2"

# --- missing file: nothing installed ----------------------------------------------------------
cp -a "$mirror" "$scratch/short-mirror"
rm "$scratch/short-mirror/recovery5/boot.conf"
expect_fail "missing file is reported" 1 "cannot download recovery5/boot.conf" \
  run_fetch "$scratch/short-mirror" "$scratch/fresh3"
nothing_installed "missing file: nothing installed" "$scratch/fresh3"

# --- a failed update keeps the previous set ---------------------------------------------------
# Release 2: two files change. Its mirror has one of them corrupted in transit.
v2="$scratch/mirror2"
cp -a "$mirror" "$v2"
echo "# release 2" >>"$v2/mass-storage-gadget64/config.txt"
echo "# release 2" >>"$v2/recovery5/config.txt"
cp pins.txt pins-v1.txt
write_pins "$v2" >pins.txt
cp -a "$v2" "$scratch/mirror2-bad"
printf 'X' >>"$scratch/mirror2-bad/recovery5/config.txt"
expect_fail "update from a bad mirror fails" 1 "recovery5/config.txt" \
  run_fetch "$scratch/mirror2-bad" "$dest"
installed_from "previous install intact after a failed download" "$dest" "$mirror"

# An install step that fails after every other file was replaced (a directory where the last
# file goes) puts back what it replaced.
cp pins.txt pins-extra.txt
echo "sha256 $(sha256sum <"$v2/msd/start.elf" | cut -d' ' -f1) $(stat -c %s "$v2/msd/start.elf") msd/start.elf extra/start.elf" >>pins-extra.txt
mkdir -p "$dest/extra/start.elf/blocked"
pins="$scratch/pins-extra.txt"
expect_fail "update that cannot install fails" 1 "cannot install .*extra/start.elf" \
  run_fetch "$v2" "$dest"
pins="$scratch/pins.txt"
installed_from "previous install intact after a failed install" "$dest" "$mirror"
grep -q "release 2" "$dest/mass-storage-gadget64/config.txt" &&
  fail "rolled back file is release 1" || pass "rolled back file is release 1"
rm -r "$dest/extra"
[[ -z $(find "$dest" -name '.staging.*') ]] && pass "no staging left after failures" ||
  fail "no staging left after failures"

# The good update then goes through.
expect_ok "update to release 2" run_fetch "$v2" "$dest"
installed_from "release 2 installed" "$dest" "$v2"
expect_ok "release 2 second run" run_fetch "$v2" "$dest"
grep -q "up to date" "$scratch/out" && pass "release 2 up to date" || fail "release 2 up to date"

# --- usage ------------------------------------------------------------------------------------
expect_fail "unknown option" 2 "unknown argument" bash "$fetch" --bogus
echo "sha256 abc" >short-pins.txt
expect_fail "malformed pin list" 2 "pin list line 1" \
  bash "$fetch" --pins short-pins.txt --mirror "file://$mirror" --dest "$scratch/fresh4"

finish
