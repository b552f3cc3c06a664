#!/usr/bin/env python3
"""An independent model of the EEPROM edits checked by eeprom_config_test.sh,
written from the format description (docs/protocol.md §10), not from the
C++ code: replace the bootcode, replace a named file without size limit
(bootsys), set the update timestamp.

usage: eeprom_reference.py IN OUT bootcode FILE | bootsys FILE | timestamp N
"""
import struct
import sys

PAD = 0x55AAFEEF
FILE = 0x55AAF11F


def sections(img):
    out, off = [], 0
    while off + 8 <= len(img):
        magic, length = struct.unpack_from('>II', img, off)
        if magic in (0, 0xFFFFFFFF):
            break
        name = img[off + 8:off + 20].split(b'\0')[0].decode() if magic == FILE else ''
        out.append((off, magic, length, name))
        off = (off + 8 + length + 7) & ~7
    return out


def fill_after(img, start, nxt, is_last):
    while start % 8:
        img[start] = 0xFF
        start += 1
    remaining = nxt - start
    if remaining >= 8 and not is_last:
        struct.pack_into('>II', img, start, PAD, remaining - 8)
        start += 8
        remaining -= 8
    img[start:start + remaining] = b'\xff' * remaining


def next_non_pad(secs, index, default):
    for off, magic, _, _ in secs[index + 1:]:
        if magic != PAD:
            return off, False
    return default, True


def main():
    src, dst, what, arg = sys.argv[1:5]
    img = bytearray(open(src, 'rb').read())
    secs = sections(img)
    if what == 'bootcode':
        data = open(arg, 'rb').read()
        nxt, _ = next_non_pad(secs, 0, len(img) - 4096)
        assert 8 + len(data) <= nxt
        struct.pack_into('>I', img, 4, len(data))
        img[8:8 + len(data)] = data
        fill_after(img, 8 + len(data), nxt, False)
    elif what == 'bootsys':
        data = open(arg, 'rb').read()
        index = next(i for i, s in enumerate(secs) if s[3] == 'bootsys' and 0x10000 <= s[0] < 0x10000 + 988 * 1024)
        off = secs[index][0]
        nxt, is_last = next_non_pad(secs, index, min(len(img) - 4096, 0x10000 + 988 * 1024))
        struct.pack_into('>I', img, off + 4, len(data) + 16)
        img[off + 24:off + 24 + len(data)] = data
        fill_after(img, off + 24 + len(data), nxt, is_last)
    elif what == 'timestamp':
        ts = int(arg)
        # Without a copy in the read-only first 64 KiB, only the image's last
        # 8 bytes hold it; otherwise both copies (read-only and partition) do.
        hits = [s for s in secs if s[3] == 'updatetime']
        if not any(off < 0x10000 for off, _, _, _ in hits):
            hits = []
            struct.pack_into('<II', img, len(img) - 8, ~ts & 0xFFFFFFFF, ts)
        for off, _, _, _ in hits:
            struct.pack_into('<II', img, off + 24, ~ts & 0xFFFFFFFF, ts)
    open(dst, 'wb').write(img)


main()
