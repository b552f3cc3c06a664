#include "rpiboot/firmware/tar_archive.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

#include "rpiboot/core/error.hpp"

namespace rpiboot {
namespace {

// ustar header layout (POSIX.1-1988): offsets and lengths of the fields read.
constexpr std::size_t kNameOffset = 0;
constexpr std::size_t kNameLength = 100;
constexpr std::size_t kSizeOffset = 124;
constexpr std::size_t kSizeLength = 12;
constexpr std::size_t kChecksumOffset = 148;
constexpr std::size_t kChecksumLength = 8;
constexpr std::size_t kTypeFlagOffset = 156;
constexpr std::size_t kMagicOffset = 257;
constexpr std::size_t kPrefixOffset = 345;
constexpr std::size_t kPrefixLength = 155;

using Block = std::span<const std::uint8_t, kTarBlockSize>;

std::string fieldText(Block header, std::size_t offset, std::size_t length) {
    const auto field = header.subspan(offset, length);
    const auto nul = std::find(field.begin(), field.end(), std::uint8_t{0});
    return std::string(field.begin(), nul);
}

// Strict octal: optional leading spaces, at least one digit 0-7, then only
// NULs or spaces to the end of the field. nullopt for anything else.
std::optional<std::uint64_t> parseOctal(std::span<const std::uint8_t> field) {
    std::size_t i = 0;
    while (i < field.size() && field[i] == ' ') {
        ++i;
    }
    std::uint64_t value = 0;
    std::size_t digits = 0;
    for (; i < field.size() && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
        value = (value << 3) | static_cast<std::uint64_t>(field[i] - '0');
    }
    if (digits == 0) {
        return std::nullopt;
    }
    for (; i < field.size(); ++i) {
        if (field[i] != 0 && field[i] != ' ') {
            return std::nullopt;
        }
    }
    return value;
}

std::string printableField(std::span<const std::uint8_t> field) {
    std::string text;
    for (std::uint8_t byte : field) {
        if (byte >= 0x20 && byte < 0x7f) {
            text += static_cast<char>(byte);
        } else {
            static constexpr char kHex[] = "0123456789abcdef";
            text += "\\x";
            text += kHex[byte >> 4];
            text += kHex[byte & 0xf];
        }
    }
    return text;
}

bool isZeroBlock(Block block) {
    return std::all_of(block.begin(), block.end(), [](std::uint8_t b) { return b == 0; });
}

// The checksum is the sum of the header's bytes with the checksum field read
// as spaces; historic writers summed signed chars, so both sums are accepted.
bool checksumMatches(Block header, std::uint64_t stored) {
    std::uint64_t unsignedSum = 0;
    std::int64_t signedSum = 0;
    for (std::size_t i = 0; i < header.size(); ++i) {
        const bool inField = i >= kChecksumOffset && i < kChecksumOffset + kChecksumLength;
        const std::uint8_t byte = inField ? std::uint8_t{' '} : header[i];
        unsignedSum += byte;
        signedSum += static_cast<signed char>(byte);
    }
    return stored == unsignedSum || static_cast<std::int64_t>(stored) == signedSum;
}

bool isRegularFileType(std::uint8_t flag) {
    return flag == '0' || flag == 0 || flag == '7';  // '7': contiguous file, a regular file
}

// Only POSIX ustar ("ustar\0") has a prefix field; GNU tar ("ustar  ") keeps
// other data at that offset.
bool hasPosixPrefix(Block header) {
    static constexpr char kPosixMagic[6] = {'u', 's', 't', 'a', 'r', '\0'};
    return std::memcmp(header.data() + kMagicOffset, kPosixMagic, sizeof kPosixMagic) == 0;
}

std::string memberName(Block header) {
    std::string name = fieldText(header, kNameOffset, kNameLength);
    if (hasPosixPrefix(header)) {
        const std::string prefix = fieldText(header, kPrefixOffset, kPrefixLength);
        if (!prefix.empty()) {
            name = prefix + "/" + name;
        }
    }
    return name;
}

std::string lowerAscii(std::string_view text) {
    std::string lower(text);
    for (char& c : lower) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return lower;
}

}  // namespace

TarArchive::TarArchive(std::span<const std::uint8_t> bytes, std::string label)
    : bytes_(bytes), label_(std::move(label)) {
    const std::uint64_t total = bytes_.size();
    auto corrupt = [&](std::uint64_t offset, const std::string& member, const std::string& why) {
        std::string message = label_ + " is corrupt at offset " + std::to_string(offset);
        if (!member.empty()) {
            message += " (member '" + member + "')";
        }
        return Error(Errc::Corrupt, message + ": " + why);
    };

    std::uint64_t offset = 0;
    while (offset < total) {
        if (total - offset < kTarBlockSize) {
            throw corrupt(offset, "",
                          "truncated header: only " + std::to_string(total - offset) +
                              " bytes left of a 512-byte block");
        }
        const Block header(bytes_.data() + offset, kTarBlockSize);
        if (isZeroBlock(header)) {
            break;  // end-of-archive marker; anything after it is padding
        }
        const std::string name = memberName(header);
        const auto checksumField = header.subspan(kChecksumOffset, kChecksumLength);
        const auto checksum = parseOctal(checksumField);
        if (!checksum) {
            throw corrupt(offset, name,
                          "checksum field '" + printableField(checksumField) + "' is not octal");
        }
        if (!checksumMatches(header, *checksum)) {
            throw corrupt(offset, name, "header checksum does not match its contents");
        }
        const auto sizeField = header.subspan(kSizeOffset, kSizeLength);
        if ((sizeField[0] & 0x80) != 0) {
            throw corrupt(offset, name, "base-256 size field (member over 8 GiB) not supported");
        }
        const auto size = parseOctal(sizeField);
        if (!size) {
            throw corrupt(offset, name,
                          "size field '" + printableField(sizeField) + "' is not octal");
        }
        const std::uint64_t contentOffset = offset + kTarBlockSize;
        if (*size > total - contentOffset) {
            throw corrupt(offset, name,
                          "member claims " + std::to_string(*size) + " bytes but only " +
                              std::to_string(total - contentOffset) + " remain in the archive");
        }
        if (isRegularFileType(header[kTypeFlagOffset])) {
            if (name.empty()) {
                throw corrupt(offset, name, "regular-file member has an empty name");
            }
            index_.try_emplace(lowerAscii(name), members_.size());
            members_.push_back(TarMember{name, contentOffset, *size});
        }
        const std::uint64_t padded = (*size + kTarBlockSize - 1) / kTarBlockSize * kTarBlockSize;
        // A last member without its padding is tolerated: the walk ends there.
        offset = contentOffset + std::min(padded, total - contentOffset);
    }
}

const TarMember* TarArchive::find(std::string_view name) const {
    const auto it = index_.find(lowerAscii(name));
    return it == index_.end() ? nullptr : &members_[it->second];
}

std::span<const std::uint8_t> TarArchive::contents(const TarMember& member) const {
    if (member.offset > bytes_.size() || member.size > bytes_.size() - member.offset) {
        throw Error(Errc::InvalidArgument,
                    "member '" + member.name + "' does not belong to " + label_);
    }
    return bytes_.subspan(member.offset, member.size);
}

}  // namespace rpiboot
