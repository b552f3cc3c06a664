// Shared FAT on-disk constants and helpers for the boot image writer and reader.
// Internal to rpiboot_signing; never part of the public API.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

#include "rpiboot/image/fat_writer.hpp"

namespace rpiboot::fat {

inline constexpr std::size_t kDirEntrySize = 32;
inline constexpr std::uint8_t kAttrReadOnly = 0x01;
inline constexpr std::uint8_t kAttrHidden = 0x02;
inline constexpr std::uint8_t kAttrSystem = 0x04;
inline constexpr std::uint8_t kAttrVolumeId = 0x08;
inline constexpr std::uint8_t kAttrDirectory = 0x10;
inline constexpr std::uint8_t kAttrArchive = 0x20;
inline constexpr std::uint8_t kAttrLongName = 0x0f;
inline constexpr std::uint8_t kLfnLast = 0x40;
inline constexpr std::size_t kLfnCharsPerEntry = 13;
// NT reserved byte: the 8.3 base / extension is shown in lower case.
inline constexpr std::uint8_t kCaseLowerBase = 0x08;
inline constexpr std::uint8_t kCaseLowerExt = 0x10;
inline constexpr std::uint8_t kMediaFixed = 0xf8;

// Cluster-count limits per FAT width (Microsoft FAT specification). mkfs.fat
// refuses FAT16 below 4087 clusters; we keep to its stricter bound.
inline constexpr std::uint32_t kMaxClustersFat12 = 4084;
inline constexpr std::uint32_t kMinClustersFat16 = 4087;
inline constexpr std::uint32_t kMaxClustersFat16 = 65524;
inline constexpr std::uint32_t kMinClustersFat32 = 65525;
inline constexpr std::uint32_t kMaxClustersFat32 = 0x0ffffff5 - 2;

inline std::uint8_t lfnChecksum(const std::uint8_t* shortName) {
    std::uint8_t sum = 0;
    for (int i = 0; i < 11; ++i) {
        sum = static_cast<std::uint8_t>(((sum & 1) << 7) + (sum >> 1) + shortName[i]);
    }
    return sum;
}

// Byte offsets of the 13 UCS-2 characters inside a long-name entry.
inline constexpr int kLfnCharOffsets[kLfnCharsPerEntry] = {1,  3,  5,  7,  9,  14, 16,
                                                           18, 20, 22, 24, 28, 30};

inline std::uint16_t le16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint32_t le32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
           (std::uint32_t{p[3]} << 24);
}
inline void put16(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v);
    p[1] = static_cast<std::uint8_t>(v >> 8);
}
inline void put32(std::uint8_t* p, std::uint32_t v) {
    put16(p, v);
    put16(p + 2, v >> 16);
}

}  // namespace rpiboot::fat
