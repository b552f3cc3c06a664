// Reading FAT images in memory: lists and extracts any FAT image (our own or
// one made by mkfs.fat/genimage); it is what tests use to check the writer.
// The reader must never trust a number from the image: every sector, cluster
// and chain is bounds-checked, loops are detected, and a malformed image
// throws Errc::Corrupt instead of reading outside the buffer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rpiboot/image/fat_writer.hpp"
#include "rpiboot/signing/bytes_io.hpp"

namespace rpiboot {

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
