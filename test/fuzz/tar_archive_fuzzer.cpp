// Fuzz target: the bounds-checked ustar reader (tar_archive.hpp).
//
// Input: one mode byte, then the archive. With bit 0 of the mode byte set the
// header checksums are recomputed before parsing (walking the blocks as a
// reader would), so mutations get past the checksum into the size, name and
// type fields instead of being rejected at the first header.
//
// Checked: only rpiboot::Error (Errc::Corrupt) escapes; every member lies
// inside the archive, after its own header; find() is case-insensitive, finds
// every listed member and prefers the first of a duplicated name.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <vector>

#include "fuzz_support.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/firmware/tar_archive.hpp"

namespace rpiboot::fuzz {
namespace {

constexpr std::size_t kSizeOffset = 124;
constexpr std::size_t kChecksumOffset = 148;

// Best effort: a size that is not plain octal stops the walk, leaving the
// rest of the input as the fuzzer wrote it.
void fixChecksums(std::vector<std::uint8_t>& tar) {
    std::size_t offset = 0;
    while (tar.size() - offset >= kTarBlockSize) {
        std::uint8_t* header = tar.data() + offset;
        if (std::all_of(header, header + kTarBlockSize, [](std::uint8_t b) { return b == 0; })) {
            return;
        }
        std::fill(header + kChecksumOffset, header + kChecksumOffset + 8, std::uint8_t{' '});
        unsigned sum = 0;
        for (std::size_t i = 0; i < kTarBlockSize; ++i) {
            sum += header[i];
        }
        char text[8];
        std::snprintf(text, sizeof text, "%06o", sum & 0777777U);
        std::copy(text, text + 7, header + kChecksumOffset);  // six digits and a NUL
        std::uint64_t size = 0;
        for (std::size_t i = kSizeOffset; i < kSizeOffset + 12; ++i) {
            if (header[i] < '0' || header[i] > '7') {
                break;
            }
            size = size * 8 + (header[i] - '0');
        }
        const std::size_t left = tar.size() - offset - kTarBlockSize;
        if (size > left) {
            return;
        }
        const std::uint64_t padded = (size + kTarBlockSize - 1) / kTarBlockSize * kTarBlockSize;
        offset += kTarBlockSize + static_cast<std::size_t>(std::min<std::uint64_t>(padded, left));
    }
}

std::string upper(std::string text) {
    for (char& c : text) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return text;
}

void checkArchive(std::span<const std::uint8_t> bytes) {
    std::optional<TarArchive> tar;
    try {
        tar.emplace(bytes, "fuzz.tar");
    } catch (const Error& error) {
        FUZZ_CHECK(error.code() == Errc::Corrupt,
                   "a bad archive is Errc::Corrupt: " + std::string(error.what()));
        return;
    }
    std::uint64_t previousEnd = 0;
    for (const TarMember& member : tar->members()) {
        FUZZ_CHECK(!member.name.empty(), "regular members have names");
        FUZZ_CHECK(
            member.offset >= previousEnd + kTarBlockSize && member.offset % kTarBlockSize == 0,
            "contents follow their own header, in order: " + member.name);
        FUZZ_CHECK(member.offset <= bytes.size() && member.size <= bytes.size() - member.offset,
                   "member lies inside the archive: " + member.name);
        previousEnd = member.offset + member.size;
        const auto contents = tar->contents(member);
        FUZZ_CHECK(
            contents.data() == bytes.data() + member.offset && contents.size() == member.size,
            "contents are a view of the member's bytes");

        const TarMember* found = tar->find(member.name);
        FUZZ_CHECK(found != nullptr, "every listed member can be found: " + member.name);
        const TarMember* foundUpper = tar->find(upper(member.name));
        FUZZ_CHECK(foundUpper == found, "lookup is ASCII case-insensitive: " + member.name);
        FUZZ_CHECK(found->offset <= member.offset, "the first of a duplicated name wins");
    }
    // A member of another archive is refused, never read through.
    TarMember stranger{"stranger", bytes.size() + 1, 1};
    try {
        (void)tar->contents(stranger);
        FUZZ_CHECK(false, "contents() accepted a member outside the archive");
    } catch (const Error&) {
    }
}

}  // namespace

int tarArchiveOne(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::uint8_t mode = data[0];
    // A copy of exactly the archive's size, so ASan catches any read past it.
    std::vector<std::uint8_t> archive(data + 1, data + size);
    if ((mode & 1U) != 0) {
        fixChecksums(archive);
    }
    checkArchive(archive);
    return 0;
}

}  // namespace rpiboot::fuzz

RPIBOOT_FUZZ_ENTRY(tarArchiveOne)
