// Fuzz target: which bytes a board gets for a name (firmware.hpp
// FirmwareSet::resolve) over a small boot set laid out once in a temporary
// directory: chip folders, a bootfiles.bin, port and serial overlays, a
// fallback root, a trusted root, and symlinks leading inside, into the
// trusted root, outside, in a loop, plus a FIFO.
//
// Input: one option byte (bits 0-1: chip; bit 2: the board's port path and
// serial come from the input, each ended by a NUL), then the requested name.
//
// The property: whatever is served lies inside the set's roots (root,
// fallback, serial overlays, trusted) or its archive or generated files; a
// served disk file really has the bytes served; a name the request-name
// rules refuse is never served; resolve() never throws. A broken property
// aborts, so an escape is a crash.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <system_error>
#include <vector>

#include "fuzz_support.hpp"
#include "rpiboot/core/device.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/firmware/firmware_set.hpp"
#include "rpiboot/firmware/request_name.hpp"
#include "rpiboot/firmware/tar_archive.hpp"

namespace rpiboot::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSecret = "SECRET-OUTSIDE-THE-ROOTS";

void writeFile(const fs::path& path, std::string_view text) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

// A one-member-at-a-time ustar writer, enough for a small bootfiles.bin.
void addTarMember(std::string& tar, std::string_view name, std::string_view contents) {
    std::string header(kTarBlockSize, '\0');
    header.replace(0, name.size(), name);
    char field[16];
    std::snprintf(field, sizeof field, "%07o", 0644U);
    header.replace(100, 7, field, 7);
    std::snprintf(field, sizeof field, "%011o", static_cast<unsigned>(contents.size()));
    header.replace(124, 11, field, 11);
    header.replace(136, 11, "00000000000", 11);
    header[156] = '0';
    header.replace(257, 6, std::string("ustar\0", 6));
    header.replace(263, 2, "00");
    header.replace(148, 8, "        ");
    unsigned sum = 0;
    for (const char c : header) {
        sum += static_cast<unsigned char>(c);
    }
    std::snprintf(field, sizeof field, "%06o", sum);
    header.replace(148, 7, field, 7);
    tar += header;
    tar += contents;
    tar.append((kTarBlockSize - contents.size() % kTarBlockSize) % kTarBlockSize, '\0');
}

struct BootTree {
    fs::path base;
    fs::path root, fallback, serial, trusted, outside;
    std::vector<fs::path> allowed;  // canonical
    fs::path archive;               // canonical path of root/bootfiles.bin
    std::shared_ptr<FileCache> cache;
    std::unique_ptr<FirmwareSet> set;
    std::string pieeprom = "generated pieeprom image";

    BootTree() {
        std::string pattern = (fs::temp_directory_path() / "rpiboot-fuzz-XXXXXX").string();
        FUZZ_CHECK(::mkdtemp(pattern.data()) != nullptr, "cannot create the temporary tree");
        base = fs::canonical(pattern);
        root = base / "root";
        fallback = base / "fallback";
        serial = base / "serial";
        trusted = base / "trusted";
        outside = base / "outside";

        writeFile(outside / "secret.txt", kSecret);
        writeFile(outside / "config.txt", kSecret);
        writeFile(trusted / "shared.bin", "shared firmware");

        writeFile(root / "config.txt", "root config");
        writeFile(root / "start4.elf", "root start4");
        writeFile(root / "bootcode4.bin", "root bootcode4");
        writeFile(root / "2711" / "start4.elf", "2711 start4");
        writeFile(root / "2711" / "config.txt", "2711 config");
        writeFile(root / "2712" / "bootmain", "2712 bootmain on disk");
        writeFile(root / "overlays" / "x.dtbo", "overlay");
        writeFile(root / "subdir" / "deeper" / "file", "deep");
        writeFile(root / "1-1.3" / "config.txt", "port overlay config");
        writeFile(root / "1-1.3" / "bootcode4.bin", "port overlay bootcode (never served)");
        fs::create_symlink("config.txt", root / "link-inside");
        fs::create_symlink("../outside/secret.txt", root / "link-outside");
        fs::create_symlink(outside / "secret.txt", root / "link-absolute");
        fs::create_symlink("../trusted/shared.bin", root / "link-trusted");
        fs::create_directory_symlink("../outside", root / "dirlink-outside");
        fs::create_directory_symlink("overlays", root / "dirlink-inside");
        fs::create_symlink("loop", root / "loop");
        fs::create_symlink("../config.txt", root / "2711" / "link-up");
        fs::create_symlink("../../outside/secret.txt", root / "2711" / "link-out");
        fs::create_directory_symlink("../outside", root / "1-1.4");  // a port overlay outside
        ::mkfifo((root / "pipe").c_str(), 0600);

        std::string tar;
        addTarMember(tar, "2711/bootmain", "archive 2711 bootmain");
        addTarMember(tar, "2711/mcb.bin", "archive 2711 mcb");
        addTarMember(tar, "2711/empty.bin", "");
        addTarMember(tar, "2711/Mixed.Case", "archive mixed case");
        addTarMember(tar, "2712/bootcode5.bin", "archive bootcode5");
        addTarMember(tar, "2712/bootmain", "archive 2712 bootmain (disk wins)");
        addTarMember(tar, "2711/../../outside/secret.txt", kSecret);
        tar.append(2 * kTarBlockSize, '\0');
        writeFile(root / "bootfiles.bin", tar);

        writeFile(fallback / "fallback-only.txt", "fallback");
        writeFile(fallback / "2711" / "fb.bin", "fallback 2711");
        fs::create_symlink("../outside/secret.txt", fallback / "link-out");

        writeFile(serial / "SERIAL1" / "config.txt", "serial overlay config");
        fs::create_symlink("../../outside/secret.txt", serial / "SERIAL1" / "link-out");
        fs::create_directory_symlink("../outside", serial / "escape");

        allowed = {root, fallback, serial, trusted};
        archive = root / "bootfiles.bin";

        FirmwareSetConfig config;
        config.root = root;
        config.trustedRoots = {trusted};
        config.portOverlays = true;
        config.serialOverlayRoot = serial;
        config.fallbackRoots = {fallback};
        const std::span<const std::uint8_t> bytes(
            reinterpret_cast<const std::uint8_t*>(pieeprom.data()), pieeprom.size());
        config.generated.emplace("pieeprom.bin", ServedFile{nullptr, bytes, ""});
        cache = std::make_shared<FileCache>();
        set = std::make_unique<FirmwareSet>(std::move(config), cache);
    }

    ~BootTree() {
        set.reset();
        std::error_code ignored;
        fs::remove_all(base, ignored);
    }

    BootTree(const BootTree&) = delete;
    BootTree& operator=(const BootTree&) = delete;
};

BootTree& tree() {
    static BootTree instance;
    return instance;
}

bool isWithin(const fs::path& path, const fs::path& dir) {
    const std::string p = path.string();
    const std::string d = dir.string();
    return p == d || (p.size() > d.size() && p.compare(0, d.size(), d) == 0 && p[d.size()] == '/');
}

void checkServed(const BootTree& t, std::string_view name, const ServedFile& file) {
    const std::string context = "name \"" + std::string(name) + "\" served from " + file.origin;
    const std::string_view bytes(reinterpret_cast<const char*>(file.bytes.data()),
                                 file.bytes.size());
    FUZZ_CHECK(bytes.find(kSecret) == std::string_view::npos, "served a file outside: " + context);
    if (file.origin.rfind("generated:", 0) == 0) {
        FUZZ_CHECK(file.origin == "generated:" + std::string(name), context);
        FUZZ_CHECK(bytes == t.pieeprom, context);
        return;
    }
    const std::string archivePrefix = t.archive.string() + ":";
    if (file.origin.rfind(archivePrefix, 0) == 0) {
        const std::string member = file.origin.substr(archivePrefix.size());
        FUZZ_CHECK(member.find("..") == std::string::npos, "archive member escapes: " + context);
        FUZZ_CHECK(!file.bytes.empty(), "zero-length members fall through: " + context);
        return;
    }
    // A disk file: "<path>" or "<path> -> <canonical>".
    const auto arrow = file.origin.find(" -> ");
    const fs::path lexical = file.origin.substr(0, arrow);
    const fs::path canonical =
        arrow == std::string::npos ? lexical : fs::path(file.origin.substr(arrow + 4));
    std::error_code ec;
    const fs::path real = fs::canonical(lexical, ec);
    FUZZ_CHECK(!ec && real == canonical, "origin names its real file: " + context);
    bool inside = false;
    for (const auto& dir : t.allowed) {
        inside = inside || isWithin(canonical, dir);
    }
    if (!inside) {
        std::fprintf(stderr, "ESCAPE: %s\n", context.c_str());
        std::abort();
    }
    std::ifstream in(canonical, std::ios::binary);
    const std::string onDisk((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
    FUZZ_CHECK(onDisk == bytes, "served bytes are the file's: " + context);
}

void checkLookup(const BootTree& t, std::string_view name, const Lookup& lookup) {
    if (requestNameRefusal(name)) {
        FUZZ_CHECK(!lookup.found() && !lookup.refusal.empty(),
                   "a refused name is never served: " + std::string(name));
    }
    if (lookup.found()) {
        checkServed(t, name, *lookup.file);
    }
}

}  // namespace

int nameResolutionOne(const std::uint8_t* data, std::size_t size) {
    BootTree& t = tree();
    FuzzInput input(std::span<const std::uint8_t>(data, size));
    const std::uint8_t options = input.byte();
    static constexpr Chip kChips[] = {Chip::Bcm2835, Chip::Bcm2837, Chip::Bcm2711, Chip::Bcm2712};
    BoardContext board;
    board.chip = kChips[options & 3U];
    if ((options & 4U) != 0) {
        board.portPath = input.until(0);
        board.serial = input.until(0);
    } else {
        board.portPath = "1-1.3";
        board.serial = "SERIAL1";
    }
    const std::string name = input.rest();

    checkLookup(t, name, t.set->resolve(name, board));
    BoardFileSource source(*t.set, board);
    checkLookup(t, name, source.lookup(name));
    const Lookup bootcode = t.set->bootcode(board);
    checkLookup(t, bootcodeFileName(board.chip), bootcode);
    return 0;
}

}  // namespace rpiboot::fuzz

RPIBOOT_FUZZ_ENTRY(nameResolutionOne)
