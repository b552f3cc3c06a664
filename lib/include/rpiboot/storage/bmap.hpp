// bmap files (the XML block maps bmaptool writes next to an image): which
// blocks of the image hold data, and each mapped range's checksum. The writer
// writes only these ranges and checks each one.
//
// Accepted: versions 1.x (SHA-1 ranges, `sha1` attribute; from 1.4 a
// ChecksumType element) and 2.x (`chksum` attribute, ChecksumType sha256 or
// sha1). The parser is strict: unknown markup, numbers out of range,
// overlapping or unsorted ranges, a MappedBlocksCount that does not match the
// ranges, or a BmapFileChecksum that does not match the file are errors
// (rpiboot::Error, Errc::Corrupt) naming the file and the line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace rpiboot::storage {

enum class ChecksumType { Sha256, Sha1 };

struct BmapRange {
    std::uint64_t first = 0;  // first block, inclusive
    std::uint64_t last = 0;   // last block, inclusive
    std::string checksum;     // lower-case hex over the range's bytes
};

struct Bmap {
    std::string version;  // "2.0"
    std::uint64_t imageSize = 0;
    std::uint64_t blockSize = 0;
    std::uint64_t blocksCount = 0;
    std::uint64_t mappedBlocksCount = 0;
    ChecksumType checksumType = ChecksumType::Sha256;
    std::vector<BmapRange> ranges;  // sorted, disjoint

    // Byte extent of a range in the image (the last block may be short).
    std::uint64_t rangeOffset(const BmapRange& r) const { return r.first * blockSize; }
    std::uint64_t rangeLength(const BmapRange& r) const;
    std::uint64_t mappedBytes() const;
};

// `name` is used in error messages only.
Bmap parseBmap(std::string_view text, std::string_view name);
Bmap loadBmap(const std::filesystem::path& path);

}  // namespace rpiboot::storage
