#!/usr/bin/env bash
# Builds a firmware tree laid out as firmware/README.md describes, from the
# project's test fixtures, for trying rpibootd with virtual boards:
#   firmware/make-demo-tree.sh DEST [FIXTURES_DIR]
# The fixtures keep msd/bootcode4.bin and msd/start4.elf as files naming
# their link targets; here they become the symbolic links upstream ships.
# boot.img is the fixtures' real (small) secure-boot-msd FAT image.
set -euo pipefail

dest=${1:?usage: make-demo-tree.sh DEST [FIXTURES_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
fixtures=${2:-$here/../../shared/fixtures/firmware}
[[ -f $fixtures/SHA256SUMS ]] || { echo "no fixtures in $fixtures" >&2; exit 1; }

mkdir -p "$dest"/{msd,2711,mass-storage-gadget64,recovery}
install -m 0644 "$fixtures/bootfiles.bin" "$dest/bootfiles.bin"
install -m 0644 "$fixtures/2711/bootcode4.bin" "$dest/2711/bootcode4.bin"
install -m 0644 "$fixtures/msd/bootcode.bin" "$fixtures/msd/start.elf" "$dest/msd/"
ln -sfn ../2711/bootcode4.bin "$dest/msd/bootcode4.bin"
ln -sfn start.elf "$dest/msd/start4.elf"
install -m 0644 "$fixtures/mass-storage-gadget64/config.txt" "$dest/mass-storage-gadget64/"
install -m 0644 "$fixtures/mass-storage-gadget64/boot-secure-msd.img" \
  "$dest/mass-storage-gadget64/boot.img"
install -m 0644 "$fixtures/recovery/config.txt" "$dest/recovery/"
echo "firmware tree ready in $dest"
