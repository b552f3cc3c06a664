#include "rpiboot/core/metadata.hpp"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <vector>

#include "rpiboot/core/error.hpp"

namespace rpiboot {
namespace {

// docs/protocol.md §5.6, FACTORY_UUID: each 16-bit half holds three c40 values,
// h = 1600a + 40b + c + 1; values 4..13 are digits, 14..39 letters.
constexpr unsigned kC40Digit0 = 4;
constexpr unsigned kC40LetterA = 14;
constexpr unsigned kC40Max = 39;
constexpr std::size_t kMaxUuidWords = 64;

char c40ToChar(unsigned value) {
    if (value >= kC40Digit0 && value < kC40LetterA) {
        return static_cast<char>('0' + (value - kC40Digit0));
    }
    if (value >= kC40LetterA && value <= kC40Max) {
        return static_cast<char>('A' + (value - kC40LetterA));
    }
    return '\0';
}

unsigned charToC40(char c) {
    if (c >= '0' && c <= '9') {
        return kC40Digit0 + static_cast<unsigned>(c - '0');
    }
    if (c >= 'A' && c <= 'Z') {
        return kC40LetterA + static_cast<unsigned>(c - 'A');
    }
    if (c >= 'a' && c <= 'z') {
        return kC40LetterA + static_cast<unsigned>(c - 'a');
    }
    throw Error(Errc::InvalidArgument,
                std::string("character '") + c + "' cannot be encoded in c40 (only 0-9 and A-Z)");
}

[[noreturn]] void badUuid(std::string_view encoded, const std::string& why) {
    throw Error(Errc::Protocol, "FACTORY_UUID \"" + std::string(encoded.substr(0, 80)) +
                                    "\" is not valid c40: " + why);
}

void decodeHalf(std::uint32_t half, std::string& out, std::string_view encoded) {
    if (half == 0) {
        badUuid(encoded, "a word has an empty low half");
    }
    std::uint32_t h = half;
    const std::uint32_t a = (h - 1) / 1600;
    h -= a * 1600;
    const std::uint32_t b = (h - 1) / 40;
    h -= b * 40;
    const std::uint32_t c = h - 1;
    for (std::uint32_t v : {a, b, c}) {
        const char ch = c40ToChar(v);
        if (ch == '\0') {
            badUuid(encoded, "value " + std::to_string(v) + " is outside the digit/letter range");
        }
        out.push_back(ch);
    }
}

std::uint32_t parseHexWord(std::string_view token, std::string_view encoded) {
    if (token.size() > 2 && token[0] == '0' && (token[1] == 'x' || token[1] == 'X')) {
        token.remove_prefix(2);
    }
    if (token.empty() || token.size() > 8) {
        badUuid(encoded, "word \"" + std::string(token.substr(0, 16)) +
                             "\" is not a 32-bit hexadecimal number");
    }
    std::uint32_t value = 0;
    for (char c : token) {
        unsigned digit = 0;
        if (c >= '0' && c <= '9') {
            digit = static_cast<unsigned>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            digit = static_cast<unsigned>(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            digit = static_cast<unsigned>(c - 'A' + 10);
        } else {
            badUuid(encoded, "word \"" + std::string(token) + "\" has a non-hexadecimal character");
        }
        value = value << 4 | digit;
    }
    return value;
}

void appendJsonString(std::string& out, std::string_view text) {
    out.push_back('"');
    for (unsigned char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20 || c >= 0x7f) {
                    // Device strings are ASCII; anything else is shown, not trusted.
                    char esc[8];
                    std::snprintf(esc, sizeof esc, "\\u%04x", c);
                    out += esc;
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
    }
    out.push_back('"');
}

}  // namespace

bool isMetadataMessage(std::string_view name) noexcept {
    return !name.empty() && name[0] == '*';
}

std::optional<MetadataEntry> parseMetadataMessage(std::string_view name) {
    if (!isMetadataMessage(name)) {
        return std::nullopt;
    }
    name.remove_prefix(1);
    const auto star = name.find('*');
    if (star == std::string_view::npos || star == 0) {
        return std::nullopt;
    }
    std::string_view value = name.substr(star + 1);
    value = value.substr(0, value.find('*'));
    if (value.empty()) {
        return std::nullopt;
    }
    return MetadataEntry{std::string(name.substr(0, star)), std::string(value)};
}

std::string decodeFactoryUuid(std::string_view encoded) {
    std::string out;
    std::size_t words = 0;
    std::string_view rest = encoded;
    while (true) {
        const auto sep = rest.find('_');
        const std::string_view token = rest.substr(0, sep);
        const std::uint32_t word = parseHexWord(token, encoded);
        if (word == 0) {
            break;
        }
        if (++words > kMaxUuidWords) {
            badUuid(encoded, "more than " + std::to_string(kMaxUuidWords) + " words");
        }
        decodeHalf(word & 0xffffU, out, encoded);
        if ((word >> 16) != 0) {
            decodeHalf(word >> 16, out, encoded);
        }
        if (sep == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(sep + 1);
    }
    return out;
}

std::string encodeFactoryUuid(std::string_view text) {
    if (text.size() % 3 != 0) {
        throw Error(Errc::InvalidArgument, "c40 text length must be a multiple of 3");
    }
    std::vector<std::uint32_t> halves;
    for (std::size_t i = 0; i < text.size(); i += 3) {
        halves.push_back(1600 * charToC40(text[i]) + 40 * charToC40(text[i + 1]) +
                         charToC40(text[i + 2]) + 1);
    }
    std::string out;
    for (std::size_t i = 0; i < halves.size(); i += 2) {
        std::uint32_t word = halves[i];
        if (i + 1 < halves.size()) {
            word |= halves[i + 1] << 16;
        }
        char buf[16];
        std::snprintf(buf, sizeof buf, "%x", word);
        if (!out.empty()) {
            out.push_back('_');
        }
        out += buf;
    }
    return out.empty() ? "0" : out;
}

std::string renderMetadataJson(const std::map<std::string, std::string>& entries) {
    std::string out = "{";
    bool first = true;
    for (const auto& [key, value] : entries) {
        out += first ? "\n\t" : ",\n\t";
        first = false;
        appendJsonString(out, key);
        out += ": ";
        appendJsonString(out, value);
    }
    out += "\n}\n";
    return out;
}

std::string metadataFileStem(std::string_view serial) {
    std::string stem;
    for (char c : serial.substr(0, 128)) {
        const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_';
        stem.push_back(safe ? c : '_');
    }
    if (stem.empty()) {
        stem = "unknown";
    }
    return stem;
}

std::filesystem::path writeMetadataFile(const std::filesystem::path& dir, std::string_view serial,
                                        const std::map<std::string, std::string>& entries) {
    const std::string stem = metadataFileStem(serial);
    const std::filesystem::path target = dir / (stem + ".json");
    std::string tempName = ".";
    tempName.append(stem).append(".json.").append(std::to_string(::getpid())).append(".tmp");
    const std::filesystem::path temp = dir / tempName;
    const std::string text = renderMetadataJson(entries);
    {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        if (!out) {
            throw Error(Errc::Io,
                        "cannot create metadata file " + temp.string() + ": " + errnoText(errno));
        }
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        out.flush();
        if (!out) {
            std::error_code ignored;
            std::filesystem::remove(temp, ignored);
            throw Error(Errc::Io, "cannot write metadata file " + temp.string());
        }
    }
    std::error_code ec;
    std::filesystem::rename(temp, target, ec);
    if (ec) {
        std::filesystem::remove(temp, ec);
        throw Error(Errc::Io,
                    "cannot rename metadata file into " + target.string() + ": " + ec.message());
    }
    return target;
}

}  // namespace rpiboot
