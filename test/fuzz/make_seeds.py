#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets (test/fuzz/corpus/).

Seeds are small, real-shaped inputs: 260-byte requests with names from the
board logs of docs/protocol.md §7, metadata strings of docs/protocol.md §5.5/§5.6, a tiny
tar with bootfiles.bin's real member names, and the profiles of
config/profiles. Run it again after changing an input format; it replaces
the corpus directories it writes. Needs only the Python standard library.
"""
import io
import pathlib
import struct
import tarfile

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE.parent.parent
CORPUS = HERE / "corpus"

GET, READ, DONE = 0, 1, 2


def request(command, name):
    raw = name.encode("latin-1") if isinstance(name, str) else name
    field = raw[:256].ljust(256, b"\0")
    return struct.pack("<i", command) + field


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def reset(target):
    directory = CORPUS / target
    if directory.is_dir():
        for f in directory.iterdir():
            f.unlink()


METADATA = [
    "*USER_SERIAL_NUM*a7eb274c",
    "*MAC_ADDR*2c:cf:67:70:76:f3",
    "*MAC_WIFI_ADDR*2c:cf:67:70:76:f4",
    "*MAC_BT_ADDR*2c:cf:67:70:76:f5",
    "*EEPROM_UPDATE*success",
    "*EEPROM_HASH*dfc8ef2c0c8a0d3c1c3a1d1d5e8b2c4f7a9e6b3d2c1f0e9d8c7b6a5f4e3d2137",
    "*SECURE_BOOT_PROVISION*success",
    "*CUSTOMER_KEY_HASH*8251a63a0000000000000000000000000000000000000000000000000000" "3cee",
    "*BOOT_ROM*0000c8b0",
    "*BOARD_ATTR*00000000",
    "*USER_BOARDREV*c03141",
    "*JTAG_LOCKED*0",
    "*ADVANCED_BOOT*0000e8e8",
    "*SIGNATURE_MODE*0",
    "*FACTORY_UUID*19a519a6_19ab520e_1ac0212b",
    "*FACTORY_UUID*19a6",
    "*FACTORY_UUID*0",
    "*FACTORY_UUID*ffff",
    "*FACTORY_UUID*19a519a6_0_1ac0212b",
    "*FACTORY_UUID*0x19a6",
    "*KEY_ONLY*",
    "**value-without-key",
    "*A*B*C",
]


def file_request():
    reset("file_request")
    seeds = {
        "get_config_txt": request(GET, "config.txt"),
        "read_start4_elf": request(READ, "start4.elf"),
        "get_memsys00": request(GET, "memsys00.bin"),
        "get_overlay": request(GET, "overlays/x.dtbo"),
        "done": request(DONE, "bootmain"),
        "empty_name": request(GET, ""),
        "metadata_mac": request(READ, "*MAC_ADDR*2c:cf:67:70:76:f3"),
        "traversal": request(GET, "../etc/passwd"),
        "absolute": request(GET, "/etc/passwd"),
        "dot_components": request(GET, "./2711//./bootmain"),
        "backslash": request(GET, "..\\x"),
        "unterminated": struct.pack("<i", GET) + b"A" * 256,
        "unknown_command": request(7, "config.txt"),
        "control_bytes": request(GET, "conf\x01ig.txt\x7f"),
    }
    for name, data in seeds.items():
        write("file_request", name, data)


def event(command, name):
    return b"\x00" + request(command, name)


def file_server():
    reset("file_server")
    msd = b"".join(
        [
            event(GET, "config.txt"),
            event(GET, "pieeprom.sig"),
            event(GET, "start4.elf"),
            event(READ, "start4.elf"),
            event(GET, "fixup4.dat"),
            event(GET, ""),
        ]
    )
    write("file_server", "msd_session", b"\x02" + msd)
    recovery = [event(GET, "config.txt"), event(READ, "config.txt"), event(GET, "pieeprom.bin")]
    recovery += [b"\xe0"]  # the board is quiet while it writes the EEPROM
    recovery += [event(READ, m) for m in METADATA[:16]]
    recovery += [event(DONE, "done")]
    write("file_server", "recovery_metadata", b"\x03" + b"".join(recovery))
    changing = [
        event(GET, "changing.bin"),
        event(READ, "changing.bin"),
        event(READ, "changing.bin"),
        event(GET, "changing.bin"),
        event(READ, "*MAC_ADDR*00:11:22:33:44:55"),
        event(READ, "changing.bin"),
        event(GET, "huge.bin"),
        event(READ, "huge.bin"),
        event(GET, "empty.txt"),
        event(READ, "empty.txt"),
        event(GET, "bootcode4.bin"),
        event(READ, "other.bin"),
    ]
    write("file_server", "changing_file", b"\x01" + b"".join(changing))
    faults = [
        b"\xe0",
        event(GET, "config.txt"),
        b"\xf8",
        event(GET, "start4.elf"),
    ]
    write("file_server", "control_out_fault", b"\x01" + b"".join(faults))
    write(
        "file_server",
        "bulk_out_fault",
        b"\x00" + event(GET, "start4.elf") + b"\xfc" + event(READ, "start4.elf"),
    )
    write("file_server", "short_answer", b"\x00" + event(GET, "config.txt") + b"\xf4\x10")
    write("file_server", "stall", b"\x00" + b"\xf0")
    write("file_server", "unplugged", b"\x00" + event(GET, "config.txt") + b"\xe8")
    write("file_server", "io_error", b"\x00" + b"\xec")
    write("file_server", "unknown_command", b"\x00" + event(9, "config.txt"))
    write(
        "file_server",
        "unterminated_then_refused",
        b"\x00"
        + b"\x00"
        + struct.pack("<i", GET)
        + b"B" * 256
        + event(GET, "../config.txt")
        + event(READ, "/etc/passwd"),
    )
    limit = b"\x80" + b"".join(event(GET, "config.txt") for _ in range(4))
    write("file_server", "request_limit", limit)
    write("file_server", "timeouts", b"\x01" + b"\xe0\xe1" + event(GET, "config.txt"))


def tar_member(name, data, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.type = kind
    info.uname = info.gname = "signbot"
    info.mode = 0o644
    info.mtime = 1780409160
    return info, io.BytesIO(data)


def tiny_tar(fmt, members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data, kind in members:
            info, stream = tar_member(name, data, kind)
            if kind == tarfile.DIRTYPE:
                info.size = 0
                tar.addfile(info)
            else:
                tar.addfile(info, stream)
    # Keep the two end-of-archive blocks, not tarfile's 10 KiB record padding.
    data = out.getvalue().rstrip(b"\0")
    data += b"\0" * (-len(data) % 512)
    return data + b"\0" * 1024


def tar_archive():
    reset("tar_archive")
    real = [
        ("2711/", b"", tarfile.DIRTYPE),
        ("2711/mcb.bin", b"mcb", tarfile.REGTYPE),
        ("2711/memsys00.bin", b"\x00" * 600, tarfile.REGTYPE),
        ("2711/bootmain", b"bootmain", tarfile.REGTYPE),
        ("2711/bootcode4.bin", b"", tarfile.REGTYPE),
        ("2712/", b"", tarfile.DIRTYPE),
        ("2712/bootcode5.bin", b"bc5", tarfile.REGTYPE),
        ("2712/rp1c0fw1.bin", b"rp1", tarfile.REGTYPE),
    ]
    gnu = tiny_tar(tarfile.GNU_FORMAT, real)
    write("tar_archive", "bootfiles_gnu", b"\x00" + gnu)
    write("tar_archive", "bootfiles_gnu_fixed", b"\x01" + gnu)
    long_name = "2711/" + "d" * 90 + "/" + "memsys01.bin"
    ustar = tiny_tar(
        tarfile.USTAR_FORMAT,
        [
            (long_name, b"prefix field", tarfile.REGTYPE),
            ("2711/link", b"", tarfile.SYMTYPE),
            ("2711/MCB.BIN", b"duplicate in another case", tarfile.REGTYPE),
            ("2711/mcb.bin", b"second copy", tarfile.REGTYPE),
        ],
    )
    write("tar_archive", "ustar_prefix", b"\x01" + ustar)
    write("tar_archive", "truncated", b"\x00" + gnu[:700])
    write("tar_archive", "truncated_fixed", b"\x01" + gnu[:1100])
    write("tar_archive", "empty", b"\x00")


def name_resolution():
    reset("name_resolution")
    chip_2711, chip_2712, chip_2835 = 2, 3, 0
    plain = {
        "config_txt": (chip_2711, "config.txt"),
        "start4_elf": (chip_2711, "start4.elf"),
        "bootmain_archive": (chip_2711, "bootmain"),
        "bootmain_disk_wins": (chip_2712, "bootmain"),
        "mcb_archive": (chip_2711, "mcb.bin"),
        "mixed_case": (chip_2711, "mixed.CASE"),
        "empty_member": (chip_2711, "empty.bin"),
        "bootcode5": (chip_2712, "bootcode5.bin"),
        "bootcode": (chip_2835, "bootcode.bin"),
        "overlay": (chip_2711, "overlays/x.dtbo"),
        "deeper": (chip_2711, "subdir/./deeper//file"),
        "link_inside": (chip_2711, "link-inside"),
        "link_outside": (chip_2711, "link-outside"),
        "link_absolute": (chip_2711, "link-absolute"),
        "link_trusted": (chip_2711, "link-trusted"),
        "dirlink_outside": (chip_2711, "dirlink-outside/secret.txt"),
        "dirlink_inside": (chip_2711, "dirlink-inside/x.dtbo"),
        "loop": (chip_2711, "loop"),
        "fifo": (chip_2711, "pipe"),
        "link_up": (chip_2711, "link-up"),
        "link_out": (chip_2711, "link-out"),
        "fallback_only": (chip_2711, "fallback-only.txt"),
        "fallback_chip": (chip_2711, "fb.bin"),
        "generated": (chip_2711, "pieeprom.bin"),
        "traversal": (chip_2711, "../outside/secret.txt"),
        "archive_traversal": (chip_2711, "../../outside/secret.txt"),
        "absolute": (chip_2711, "/etc/passwd"),
    }
    for name, (chip, path) in plain.items():
        write("name_resolution", name, bytes([chip]) + path.encode())
    boards = {
        "port_overlay": ("1-1.3", "", "config.txt"),
        "port_overlay_outside": ("1-1.4", "", "secret.txt"),
        "port_dotdot": ("..", "", "outside/secret.txt"),
        "serial_overlay": ("", "SERIAL1", "config.txt"),
        "serial_link_out": ("", "SERIAL1", "link-out"),
        "serial_escape": ("", "escape", "secret.txt"),
        "serial_dotdot": ("", "..", "outside/secret.txt"),
        "bootcode_no_overlay": ("1-1.3", "SERIAL1", "bootcode4.bin"),
    }
    for name, (port, serial, path) in boards.items():
        data = bytes([4 | chip_2711]) + port.encode() + b"\0" + serial.encode() + b"\0"
        write("name_resolution", name, data + path.encode())


def metadata():
    reset("metadata")
    for i, message in enumerate(METADATA):
        write("metadata", "message_%02d" % i, message.encode())
    write("metadata", "uuid_value", b"19a519a6_19ab520e_1ac0212b")
    write("metadata", "uuid_64_words", ("*FACTORY_UUID*" + "_".join(["19a519a6"] * 64)).encode())
    write("metadata", "uuid_65_words", "_".join(["19a519a6"] * 65).encode())
    write("metadata", "json_pairs", b"MAC_ADDR\x002c:cf:67:70:76:f3\x00EEPROM_UPDATE\x00success\x00")
    write("metadata", "json_escapes", b'KEY"\\\x00value\n\t\x01\xff\x00')


def profile_config():
    reset("profile_config")
    profiles = sorted((SOURCE / "config" / "profiles").glob("*.json"))
    for path in profiles:
        write("profile_config", "profile_" + path.stem, b"\x00" + path.read_bytes())
    daemon = SOURCE / "config" / "rpibootd.json"
    if daemon.exists():
        write("profile_config", "daemon_config", b"\x01" + daemon.read_bytes())
        for path in profiles:
            write(
                "profile_config",
                "configuration_" + path.stem,
                b"\x02" + daemon.read_bytes() + b"\0" + path.read_bytes(),
            )
    write(
        "profile_config",
        "rules",
        b"\x02"
        + b'{"default_profile": "msd", "forget_after_ms": 0, "rules": ['
        + b'{"chip": "BCM2711", "port": "1-1.*", "profile": "fuzz"},'
        + b'{"serial": "a7EB*", "profile": "mass-storage-gadget"}]}'
        + b"\0"
        + b'{"name": "fuzz", "firmware": {"root": "/abs", "trusted": ["t"],'
        + b' "serial_overlays": "s", "port_overlays": true},'
        + b' "timeouts": {"control_ms": 1, "bulk_ms": 600000}, "signed_boot": true}',
    )
    write(
        "profile_config",
        "fractional_timeout",
        b"\x00" + b'{"name": "x", "firmware": {"root": "r"}, "timeouts": {"bulk_ms": 1.5}}',
    )
    write("profile_config", "unknown_key", b"\x01" + b'{"rule": []}')
    write(
        "profile_config",
        "storage",
        b"\x00"
        + b'{"name": "w", "firmware": {"root": "r"}, "timeouts": {"after_boot_ms": 60000},'
        + b' "storage": {"image": "os.img.zst", "bmap": "/i/os.bmap", "disk": "mmcblk0",'
        + b' "verify": true}, "after_success": "once", "forget_after_s": 30}',
    )


if __name__ == "__main__":
    file_request()
    file_server()
    tar_archive()
    name_resolution()
    metadata()
    profile_config()
