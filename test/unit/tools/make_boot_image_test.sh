#!/usr/bin/env bash
# rpiboot-make-boot-image checked with fsck.fat and mtools, and its reader on
# the real boot-secure-msd.img fixture.
# Usage: make_boot_image_test.sh MAKE_BOOT_IMAGE FIXTURES_DIR
source "$(dirname "$0")/lib.sh"
tool="$1"
fixtures="$2"
real="$fixtures/mass-storage-gadget64/boot-secure-msd.img"
export MTOOLS_SKIP_CHECK=1
cd "$scratch"

mkdir -p bootfs/overlays
printf '[all]\narm_64bit=1\n' >bootfs/config.txt
printf 'console=serial0,115200\n' >bootfs/cmdline.txt
head -c 300000 /dev/urandom >bootfs/kernel8.img
head -c 200000 /dev/urandom >bootfs/kernel7l.img
head -c 40000 /dev/urandom >bootfs/start4.elf
head -c 40000 /dev/urandom >bootfs/start.elf
head -c 40000 /dev/urandom >bootfs/start4x.elf
head -c 30000 /dev/urandom >bootfs/bcm2711-rpi-4-b.dtb
head -c 30000 /dev/urandom >bootfs/bcm2710-rpi-3-b.dtb
head -c 3000 /dev/urandom >bootfs/overlays/vc4-kms-v3d-pi4.dtbo

expect_ok "builds a Pi 4 image" "$tool" -d bootfs -o boot.img -b pi4
expect_ok "fsck.fat accepts it" fsck.fat -n boot.img
mdir -i boot.img -/ -b :: | sed 's|^::/||; s|/$||' | sort >mtools.txt
printf '%s\n' bcm2711-rpi-4-b.dtb cmdline.txt config.txt kernel8.img overlays \
  overlays/vc4-kms-v3d-pi4.dtbo start4.elf | sort >want.txt
expect_same "mtools lists exactly the Pi 4 64-bit files" mtools.txt want.txt
mcopy -n -i boot.img ::/kernel8.img kernel8.out
expect_same "mtools extracts kernel8.img intact" kernel8.out bootfs/kernel8.img
mcopy -n -i boot.img ::/overlays/vc4-kms-v3d-pi4.dtbo dtbo.out
expect_same "mtools extracts an overlay intact" dtbo.out bootfs/overlays/vc4-kms-v3d-pi4.dtbo

# Our own reader, through the tool, agrees with mtools.
"$tool" --list boot.img | awk '{print $2}' | sed 's|/$||' | sort >ours.txt
expect_same "--list agrees with mdir" ours.txt want.txt
expect_ok "--extract copies the files out" "$tool" --extract boot.img -o extracted
expect_same "extracted kernel8.img intact" extracted/kernel8.img bootfs/kernel8.img
expect_same "extracted overlay intact" extracted/overlays/vc4-kms-v3d-pi4.dtbo \
  bootfs/overlays/vc4-kms-v3d-pi4.dtbo

expect_ok "builds a 32-bit image" "$tool" -d bootfs -o boot32.img -a 32
mdir -i boot32.img -b :: | sed 's|^::/||' >list32.txt
grep -qx kernel7l.img list32.txt && ! grep -qx kernel8.img list32.txt \
  && pass "-a 32 keeps kernel7l.img and drops kernel8.img" || fail "-a 32 pruning"
grep -qx start.elf list32.txt && pass "no -b keeps older-board files" || fail "no -b pruning"

FAT_SIZE=16 "$tool" -d bootfs -o boot16.img >/dev/null
minfo -i boot16.img :: | grep -q 'disk type="FAT16' && pass "FAT_SIZE=16 gives FAT16" \
  || fail "FAT_SIZE=16"
expect_ok "fsck.fat accepts the FAT16 image" fsck.fat -n boot16.img
expect_ok "builds a fixed-size 4 MiB image" "$tool" -d bootfs -o fixed.img --image-size 4
[[ $(stat -c %s fixed.img) -eq 4194304 ]] && pass "--image-size 4 gives 4 MiB" \
  || fail "--image-size"
SOURCE_DATE_EPOCH=1700000000 "$tool" -d bootfs -o r1.img >/dev/null
touch bootfs/config.txt
SOURCE_DATE_EPOCH=1700000000 "$tool" -d bootfs -o r2.img >/dev/null
expect_same "SOURCE_DATE_EPOCH makes the image reproducible" r1.img r2.img

# The real boot image lists and extracts through the same reader.
"$tool" --list "$real" >real.txt
grep -Eq '^ *301628  start4.elf$' real.txt && pass "--list reads the real boot image" \
  || { fail "--list on the real boot image"; cat real.txt; }
"$tool" --extract "$real" -o real
mcopy -n -i "$real" ::/start4.elf start4.mtools
expect_same "real start4.elf extracts like mtools" real/start4.elf start4.mtools

expect_fail "an unknown board is a usage error" 2 "unknown board" \
  "$tool" -d bootfs -o x.img -b pi5
expect_fail "a missing directory is reported" 1 "is not a directory" \
  "$tool" -d nowhere -o x.img
expect_fail "a non-FAT file is refused" 1 "is not a FAT image" \
  "$tool" --list bootfs/config.txt
mkdir bigfs && head -c 1500000 /dev/urandom >bigfs/kernel8.img
expect_fail "a too-small fixed size is refused" 1 "holds only" \
  "$tool" -d bigfs -o x.img --image-size 1

finish
