// Boot images (`boot.img`, protocol.md §11): a bare FAT12/16/32 file system
// holding a boot partition, written and read entirely in memory.
//
// The writer builds the image from a list of files without root, loop devices
// or mounts; the reader lists and extracts any FAT image (our own or one made
// by mkfs.fat/genimage) and is what tests use to check the writer. The reader
// must never trust a number from the image: every sector, cluster and chain is
// bounds-checked, loops are detected, and a malformed image throws
// Errc::Corrupt instead of reading outside the buffer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rpiboot/signing/signature.hpp"

namespace rpiboot {

enum class FatType { Fat12, Fat16, Fat32 };
std::string_view toString(FatType type) noexcept;  // "FAT12", ...

// One file or directory of the image; `path` is relative, '/'-separated,
// UTF-8 ("overlays/vc4-kms-v3d.dtbo"). Parent directories are implied.
struct BootFile {
    std::string path;
    Bytes data;
    std::int64_t mtime = 0;  // Unix seconds
    bool isDirectory = false;
};

// The layout knobs of Raspberry Pi's make-boot-image (protocol-details.md §8.5).
struct BootImageOptions {
    std::uint32_t sectorSize = 512;       // 512, 1024, 2048 or 4096
    std::uint32_t sectorsPerCluster = 1;  // power of two, 1..128
    std::uint32_t rootDirEntries = 256;   // FAT12/16 only
    std::uint16_t heads = 1;              // geometry recorded in the boot sector
    std::uint16_t sectorsPerTrack = 1;
    std::optional<FatType> fatType;             // default: smallest that fits
    std::optional<std::uint64_t> imageSizeKiB;  // default: contents + fatOverheadKiB
    std::uint32_t fatOverheadKiB = 16;          // free space added to an automatic size
    std::string volumeLabel = "BOOT";
    std::optional<std::uint32_t> volumeId;  // default: derived from the contents
    std::optional<std::int64_t> timestamp;  // when set, every entry gets this time
};

// Builds a FAT image holding `files`. Throws Errc::InvalidArgument for a bad
// option, name or duplicate, Errc::TooLarge when the contents do not fit the
// requested size, FAT type or root directory.
Bytes buildFatImage(const std::vector<BootFile>& files, const BootImageOptions& options);

// Which files make-boot-image keeps (`-b`, `-a`).
enum class BoardFilter { All, Pi4, Pi400, Cm4 };
enum class KernelArch { Arm32, Arm64 };
std::optional<BoardFilter> parseBoardFilter(std::string_view name);  // "pi4", "pi400", "cm4"

// Reads a directory tree into BootFiles (symbolic links followed, top-level
// hidden entries skipped as a shell glob would).
std::vector<BootFile> collectBootFiles(const std::filesystem::path& dir);
// Removes top-level files the board or kernel architecture does not use:
// older-board firmware and kernels for pi4/pi400/cm4, kernel8.img for 32-bit,
// kernel7l.img for 64-bit, start4x/fixup4x for pi400.
void pruneBootFiles(std::vector<BootFile>& files, BoardFilter board, KernelArch arch);

// Reads a FAT image held in `image`, which must outlive the reader.
class FatReader {
  public:
    struct Info {
        FatType type = FatType::Fat12;
        std::uint32_t sectorSize = 0;
        std::uint32_t sectorsPerCluster = 0;
        std::uint32_t reservedSectors = 0;
        std::uint32_t fatCount = 0;
        std::uint32_t fatSectors = 0;
        std::uint32_t rootDirEntries = 0;  // 0 on FAT32
        std::uint64_t totalSectors = 0;
        std::uint32_t clusterCount = 0;
        std::uint32_t volumeId = 0;
        std::string volumeLabel;  // from the boot sector, trailing spaces removed
    };
    struct Entry {
        std::string name;       // long name when present, else the 8.3 name
        std::string shortName;  // "START4.ELF"
        bool isDirectory = false;
        std::uint32_t size = 0;
        std::uint32_t firstCluster = 0;
        std::int64_t mtime = 0;  // Unix seconds (the image stores local time; read as UTC)
    };

    // Throws Errc::Corrupt naming `origin` if this is not a FAT image.
    FatReader(ByteView image, std::string origin);

    const Info& info() const noexcept { return info_; }
    // Entries of a directory ("" or "/" is the root); names match case-insensitively.
    std::vector<Entry> list(std::string_view dirPath = "") const;
    Bytes read(std::string_view path) const;
    // Every file and directory, depth first, with '/'-separated paths.
    std::vector<std::pair<std::string, Entry>> walk() const;

  private:
    std::vector<Entry> readDirectory(std::uint32_t firstCluster, bool isRoot,
                                     std::string_view path) const;
    Entry lookup(std::string_view path) const;
    Bytes readChain(std::uint32_t firstCluster, std::uint64_t bytes, std::string_view what) const;
    std::uint32_t nextCluster(std::uint32_t cluster, std::string_view what) const;

    ByteView image_;
    std::string origin_;
    Info info_;
    std::uint64_t fatOffset_ = 0;
    std::uint64_t rootOffset_ = 0;
    std::uint64_t dataOffset_ = 0;
    std::uint32_t rootCluster_ = 0;
};

}  // namespace rpiboot
