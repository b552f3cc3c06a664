// rpiboot-make-boot-image: builds a FAT boot.img from a directory without
// root, loop devices or mounts, with the options of Raspberry Pi's
// make-boot-image (docs/protocol.md §11); also lists and extracts images.
#include <getopt.h>

#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <optional>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/image/boot_files.hpp"
#include "rpiboot/image/fat_reader.hpp"
#include "rpiboot/image/fat_writer.hpp"
#include "tool_main.hpp"

namespace {

using namespace rpiboot;
using rpiboot::tools::UsageError;

constexpr const char* kName = "rpiboot-make-boot-image";
// make-boot-image warns above this size (its "try removing unused files").
constexpr std::uint64_t kLargeImageBytes = 20ull * 1024 * 1024;

void usage() {
    std::cout
        << "Usage:\n"
           "  "
        << kName
        << " -d DIR -o OUTPUT [-b pi4|pi400|cm4] [-a 32|64] [size options]\n"
           "  "
        << kName
        << " --list IMAGE\n"
           "  "
        << kName
        << " --extract IMAGE -o DIR\n"
           "\n"
           "  -d DIR                  the files to put in the boot image\n"
           "  -o OUTPUT               the image to write (or the directory for --extract)\n"
           "  -b BOARD                keep only files a pi4, pi400 or cm4 uses\n"
           "  -a 32|64                kernel architecture (default 64: drops kernel7l.img;\n"
           "                          32 drops kernel8.img; upstream defaults to 32)\n"
           "  --image-size MIB        fixed image size (default: contents + overhead)\n"
           "  --fat-size 12|16|32     FAT width (default: the smallest that fits)\n"
           "  --sector-size BYTES     512 (default), 1024, 2048 or 4096\n"
           "  --sectors-per-cluster N 1 (default) to 128\n"
           "  --root-entries N        root directory entries on FAT12/16 (default 256)\n"
           "  --fat-overhead KIB      free space added to an automatic size (default 16)\n"
           "  --geometry H/S          heads/sectors per track recorded (default 1/1)\n"
           "  --label NAME            volume label (default BOOT)\n"
           "  --list IMAGE            list the files of a FAT image\n"
           "  --extract IMAGE         copy every file of a FAT image into -o DIR\n"
           "  -h, --help              show this help\n"
           "\n"
           "The environment variables IMAGE_SIZE, FAT_SIZE, SECTOR_SIZE, SECTORS_PER_CLUSTER,\n"
           "ROOT_DIR_ENTRIES, FAT_OVERHEAD and DISK_GEOMETRY set the same values as\n"
           "make-boot-image's; options win. SOURCE_DATE_EPOCH sets every file's time.\n";
}

std::uint64_t number(std::string_view what, std::string_view text) {
    if (text.empty() || text.size() > 12 ||
        text.find_first_not_of("0123456789") != std::string_view::npos) {
        throw UsageError(std::string(what) + " must be a whole number, not '" + std::string(text) +
                         "'");
    }
    return std::stoull(std::string(text));
}

std::uint32_t number32(std::string_view what, std::string_view text) {
    std::uint64_t v = number(what, text);
    if (v > 0xffffffffu) {
        throw UsageError(std::string(what) + " " + std::string(text) + " is too large");
    }
    return static_cast<std::uint32_t>(v);
}

struct Options {
    std::string dir;
    std::string out;
    std::string list;
    std::string extract;
    BoardFilter board = BoardFilter::All;
    KernelArch arch = KernelArch::Arm64;
    BootImageOptions image;
    bool help = false;
};

enum LongOnly {
    kImageSize = 1000,
    kFatSize,
    kSectorSize,
    kSectorsPerCluster,
    kRootEntries,
    kFatOverhead,
    kGeometry,
    kLabel,
    kList,
    kExtract,
};

void setFatSize(Options& o, std::string_view v) {
    if (v == "12") {
        o.image.fatType = FatType::Fat12;
    } else if (v == "16") {
        o.image.fatType = FatType::Fat16;
    } else if (v == "32") {
        o.image.fatType = FatType::Fat32;
    } else {
        throw UsageError("FAT size must be 12, 16 or 32, not '" + std::string(v) + "'");
    }
}

void setGeometry(Options& o, std::string_view v) {
    std::size_t slash = v.find('/');
    if (slash == std::string_view::npos) {
        throw UsageError("geometry must be HEADS/SECTORS, not '" + std::string(v) + "'");
    }
    std::uint64_t heads = number("geometry heads", v.substr(0, slash));
    std::uint64_t sectors = number("geometry sectors", v.substr(slash + 1));
    if (heads == 0 || heads > 255 || sectors == 0 || sectors > 63) {
        throw UsageError("geometry " + std::string(v) + " is out of range (1-255/1-63)");
    }
    o.image.heads = static_cast<std::uint16_t>(heads);
    o.image.sectorsPerTrack = static_cast<std::uint16_t>(sectors);
}

void applyEnvironment(Options& o) {
    auto env = [](const char* name) -> std::optional<std::string> {
        const char* v = std::getenv(name);
        if (v == nullptr || *v == '\0') {
            return std::nullopt;
        }
        return std::string(v);
    };
    if (auto v = env("IMAGE_SIZE"); v && number("IMAGE_SIZE", *v) != 0) {
        o.image.imageSizeKiB = number("IMAGE_SIZE", *v) * 1024;
    }
    if (auto v = env("FAT_SIZE")) {
        setFatSize(o, *v);
    }
    if (auto v = env("SECTOR_SIZE")) {
        o.image.sectorSize = number32("SECTOR_SIZE", *v);
    }
    if (auto v = env("SECTORS_PER_CLUSTER")) {
        o.image.sectorsPerCluster = number32("SECTORS_PER_CLUSTER", *v);
    }
    if (auto v = env("ROOT_DIR_ENTRIES")) {
        o.image.rootDirEntries = number32("ROOT_DIR_ENTRIES", *v);
    }
    if (auto v = env("FAT_OVERHEAD")) {
        o.image.fatOverheadKiB = number32("FAT_OVERHEAD", *v);
    }
    if (auto v = env("DISK_GEOMETRY")) {
        setGeometry(o, *v);
    }
}

Options parse(int argc, char** argv) {
    static const option kLong[] = {
        {"image-size", required_argument, nullptr, kImageSize},
        {"fat-size", required_argument, nullptr, kFatSize},
        {"sector-size", required_argument, nullptr, kSectorSize},
        {"sectors-per-cluster", required_argument, nullptr, kSectorsPerCluster},
        {"root-entries", required_argument, nullptr, kRootEntries},
        {"fat-overhead", required_argument, nullptr, kFatOverhead},
        {"geometry", required_argument, nullptr, kGeometry},
        {"label", required_argument, nullptr, kLabel},
        {"list", required_argument, nullptr, kList},
        {"extract", required_argument, nullptr, kExtract},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0}};
    Options o;
    applyEnvironment(o);
    opterr = 0;
    int c = 0;
    while ((c = getopt_long(argc, argv, ":d:o:b:a:h", kLong, nullptr)) != -1) {
        std::string_view v = optarg != nullptr ? optarg : "";
        switch (c) {
            case 'd':
                o.dir = v;
                break;
            case 'o':
                o.out = v;
                break;
            case 'b': {
                auto board = parseBoardFilter(v);
                if (!board) {
                    throw UsageError("unknown board '" + std::string(v) +
                                     "': use pi4, pi400 or cm4");
                }
                o.board = *board;
                break;
            }
            case 'a':
                if (v == "32") {
                    o.arch = KernelArch::Arm32;
                } else if (v == "64") {
                    o.arch = KernelArch::Arm64;
                } else {
                    throw UsageError("architecture must be 32 or 64, not '" + std::string(v) + "'");
                }
                break;
            case kImageSize:
                o.image.imageSizeKiB = number("image size", v) * 1024;
                break;
            case kFatSize:
                setFatSize(o, v);
                break;
            case kSectorSize:
                o.image.sectorSize = number32("sector size", v);
                break;
            case kSectorsPerCluster:
                o.image.sectorsPerCluster = number32("sectors per cluster", v);
                break;
            case kRootEntries:
                o.image.rootDirEntries = number32("root entries", v);
                break;
            case kFatOverhead:
                o.image.fatOverheadKiB = number32("FAT overhead", v);
                break;
            case kGeometry:
                setGeometry(o, v);
                break;
            case kLabel:
                o.image.volumeLabel = v;
                break;
            case kList:
                o.list = v;
                break;
            case kExtract:
                o.extract = v;
                break;
            case 'h':
                o.help = true;
                return o;
            default:
                tools::badLongOption(c, argv);
        }
    }
    tools::noOperands(argc, argv);
    if (o.image.imageSizeKiB && *o.image.imageSizeKiB == 0) {
        o.image.imageSizeKiB.reset();  // IMAGE_SIZE=0 means automatic, as upstream
    }
    int modes = !o.dir.empty() + !o.list.empty() + !o.extract.empty();
    if (modes != 1) {
        throw UsageError("give one of -d DIR (build), --list IMAGE or --extract IMAGE");
    }
    if ((!o.dir.empty() || !o.extract.empty()) && o.out.empty()) {
        throw UsageError("no output: give it with -o");
    }
    if (const char* epoch = std::getenv("SOURCE_DATE_EPOCH"); epoch != nullptr && *epoch) {
        o.image.timestamp = static_cast<std::int64_t>(number("SOURCE_DATE_EPOCH", epoch));
    }
    return o;
}

int list(const std::string& path) {
    Bytes image = readFileBytes(path);
    FatReader reader(image, path);
    for (const auto& [name, entry] : reader.walk()) {
        if (entry.isDirectory) {
            std::cout << std::setw(10) << "-"
                      << "  " << name << "/\n";
        } else {
            std::cout << std::setw(10) << entry.size << "  " << name << "\n";
        }
    }
    return 0;
}

int extract(const std::string& path, const std::filesystem::path& outDir) {
    Bytes image = readFileBytes(path);
    FatReader reader(image, path);
    std::filesystem::create_directories(outDir);
    for (const auto& [name, entry] : reader.walk()) {
        // Names come from the image: walk() never yields '..', and FAT names cannot hold '/'.
        std::filesystem::path target = outDir / name;
        if (entry.isDirectory) {
            std::filesystem::create_directories(target);
        } else {
            writeFileBytes(target, reader.read(name));
        }
    }
    return 0;
}

int build(const Options& o) {
    std::vector<BootFile> files = collectBootFiles(o.dir);
    pruneBootFiles(files, o.board, o.arch);
    Bytes image = buildFatImage(files, o.image);
    FatReader check(image, o.out);
    writeFileBytes(o.out, image);
    std::size_t count = 0;
    for (const auto& f : files) {
        count += f.isDirectory ? 0 : 1;
    }
    std::cout << o.out << ": " << toString(check.info().type) << ", " << image.size() / 1024
              << " KiB, " << count << " files\n";
    if (image.size() > kLargeImageBytes) {
        std::cerr << kName
                  << ": warning: the image is over 20 MiB; the board holds it in RAM, "
                     "so consider removing files it does not need (-b)\n";
    }
    return 0;
}

int run(const Options& o) {
    if (!o.list.empty()) {
        return list(o.list);
    }
    if (!o.extract.empty()) {
        return extract(o.extract, o.out);
    }
    return build(o);
}

}  // namespace

int main(int argc, char** argv) {
    return rpiboot::tools::runTool(kName, argc, argv, parse, usage, run);
}
