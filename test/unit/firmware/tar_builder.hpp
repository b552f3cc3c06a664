// Test helper: writes small ustar archives byte by byte, so tests can build
// exactly the corrupt or unusual headers they need.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rpiboot::test {

struct TarEntry {
    TarEntry(std::string entryName, std::string entryContents = "", char entryType = '0',
             std::string entryPrefix = "")
        : name(std::move(entryName)),
          contents(std::move(entryContents)),
          type(entryType),
          prefix(std::move(entryPrefix)) {}

    std::string name;
    std::string contents;
    char type;
    std::string prefix;  // ustar prefix field
};

inline void putField(std::vector<std::uint8_t>& block, std::size_t offset, std::string_view text) {
    std::copy(text.begin(), text.end(), block.begin() + static_cast<std::ptrdiff_t>(offset));
}

inline std::string octal(std::uint64_t value, int width) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%0*llo", width, static_cast<unsigned long long>(value));
    return buffer;
}

inline void setChecksum(std::vector<std::uint8_t>& archive, std::size_t headerOffset) {
    std::fill_n(archive.begin() + static_cast<std::ptrdiff_t>(headerOffset + 148), 8, ' ');
    unsigned sum = 0;
    for (std::size_t i = 0; i < 512; ++i) {
        sum += archive[headerOffset + i];
    }
    const std::string text = octal(sum, 6);
    std::copy(text.begin(), text.end(),
              archive.begin() + static_cast<std::ptrdiff_t>(headerOffset + 148));
    archive[headerOffset + 154] = 0;
    archive[headerOffset + 155] = ' ';
}

inline std::vector<std::uint8_t> tarHeader(const TarEntry& entry, std::uint64_t size) {
    std::vector<std::uint8_t> block(512, 0);
    putField(block, 0, entry.name);
    putField(block, 100, "0000644");
    putField(block, 108, "0001750");
    putField(block, 116, "0001750");
    putField(block, 124, octal(size, 11));
    putField(block, 136, "15207570545");
    block[156] = static_cast<std::uint8_t>(entry.type);
    putField(block, 257,
             std::string_view("ustar\0"
                              "00",
                              8));
    putField(block, 345, entry.prefix);
    setChecksum(block, 0);
    return block;
}

inline std::vector<std::uint8_t> makeTar(const std::vector<TarEntry>& entries,
                                         bool endBlocks = true) {
    std::vector<std::uint8_t> archive;
    for (const auto& entry : entries) {
        const auto header = tarHeader(entry, entry.contents.size());
        archive.insert(archive.end(), header.begin(), header.end());
        archive.insert(archive.end(), entry.contents.begin(), entry.contents.end());
        archive.resize((archive.size() + 511) / 512 * 512, 0);
    }
    if (endBlocks) {
        archive.resize(archive.size() + 1024, 0);
    }
    return archive;
}

}  // namespace rpiboot::test
