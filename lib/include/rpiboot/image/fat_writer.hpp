// Boot images (`boot.img`, docs/protocol.md §11): a bare FAT12/16/32 file system
// holding a boot partition, built entirely in memory from a list of files
// without root, loop devices or mounts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rpiboot/image/boot_files.hpp"
#include "rpiboot/signing/bytes_io.hpp"

namespace rpiboot {

enum class FatType { Fat12, Fat16, Fat32 };
std::string_view toString(FatType type) noexcept;  // "FAT12", ...

// The layout knobs of Raspberry Pi's make-boot-image (docs/protocol.md §11).
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

}  // namespace rpiboot
