#!/usr/bin/env bash
# Lays out a firmware base directory for trying rpibootd without a real
# firmware install: Raspberry Pi's files from the test fixtures when they are
# next to the repository, otherwise placeholder files with the right names
# and sizes (good enough for virtual boards, useless for real ones).
# Usage: scripts/demo-firmware.sh DIR
set -euo pipefail
out=${1:?usage: demo-firmware.sh DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
fixtures=${RPIBOOT_FIXTURES_DIR:-$here/test/fixtures/firmware}

mkdir -p "$out/msd/2711" "$out/mass-storage-gadget64"
placeholder() { head -c "$2" /dev/urandom > "$1"; }

if [[ -f $fixtures/SHA256SUMS ]]; then
  echo "demo firmware: Raspberry Pi files from $fixtures"
  cp "$fixtures/msd/bootcode.bin" "$fixtures/msd/start.elf" "$out/msd/"
  cp "$fixtures/2711/bootcode4.bin" "$out/msd/2711/bootcode4.bin"
  cp "$fixtures/msd/start.elf" "$out/msd/2711/start4.elf"
  cp "$fixtures/bootfiles.bin" "$out/bootfiles.bin"
  cp "$fixtures/mass-storage-gadget64/config.txt" "$out/mass-storage-gadget64/config.txt"
  cp "$fixtures/mass-storage-gadget64/boot-secure-msd.img" "$out/mass-storage-gadget64/boot.img"
else
  echo "demo firmware: placeholder files (no Raspberry Pi firmware found)"
  placeholder "$out/msd/bootcode.bin" 52624
  placeholder "$out/msd/start.elf" 536536
  placeholder "$out/msd/2711/bootcode4.bin" 105984
  cp "$out/msd/start.elf" "$out/msd/2711/start4.elf"
  tree=$(mktemp -d)
  mkdir -p "$tree/2711" "$tree/2712"
  placeholder "$tree/2711/bootcode4.bin" 73120
  placeholder "$tree/2711/mcb.bin" 11696
  for i in 0 1 2 3 4 5 6 7 8; do placeholder "$tree/2711/memsys0$i.bin" 20492; done
  placeholder "$tree/2711/bootmain" 265712
  placeholder "$tree/2712/bootcode5.bin" 78332
  placeholder "$tree/2712/mcb.bin" 7092
  for i in 0 1 2 3; do placeholder "$tree/2712/memsys0$i.bin" 40972; done
  placeholder "$tree/2712/rp1c0fw1.bin" 16384
  placeholder "$tree/2712/rp1c0fw2.bin" 14864
  placeholder "$tree/2712/bootmain" 556668
  tar --format=ustar -cf "$out/bootfiles.bin" -C "$tree" 2711 2712
  rm -rf "$tree"
  printf 'arm_64bit=1\n' > "$out/mass-storage-gadget64/config.txt"
  placeholder "$out/mass-storage-gadget64/boot.img" $((2 * 1024 * 1024))
fi
