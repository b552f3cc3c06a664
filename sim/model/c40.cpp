#include "virtualpi/c40.hpp"

#include <cstdint>
#include <cstdio>
#include <vector>

#include "rpiboot/core/error.hpp"

namespace virtualpi {
namespace {

// c40 values (docs/protocol.md §5.6): 4..13 digits, 14..39 letters.
int valueOf(char c) {
    if (c >= '0' && c <= '9') {
        return 4 + (c - '0');
    }
    if (c >= 'A' && c <= 'Z') {
        return 14 + (c - 'A');
    }
    return -1;
}

char charOf(unsigned v) {
    if (v >= 4 && v <= 13) {
        return static_cast<char>('0' + (v - 4));
    }
    if (v >= 14 && v <= 39) {
        return static_cast<char>('A' + (v - 14));
    }
    return '\0';
}

bool decodeHalf(unsigned h, std::string& out) {
    if (h == 0) {
        return false;
    }
    const unsigned a = (h - 1) / 1600;
    h -= a * 1600;
    const unsigned b = (h - 1) / 40;
    h -= b * 40;
    const unsigned c = h - 1;
    for (unsigned v : {a, b, c}) {
        const char ch = charOf(v);
        if (ch == '\0') {
            return false;
        }
        out.push_back(ch);
    }
    return true;
}

}  // namespace

std::string c40Encode(std::string_view text) {
    if (text.size() % 3 != 0) {
        throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                             "c40: \"" + std::string(text) +
                                 "\" cannot be encoded: its length is not a multiple of 3");
    }
    std::vector<std::uint16_t> halves;
    for (std::size_t i = 0; i < text.size(); i += 3) {
        unsigned h = 1;
        const unsigned weights[] = {1600, 40, 1};
        for (std::size_t k = 0; k < 3; ++k) {
            const int v = valueOf(text[i + k]);
            if (v < 0) {
                throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                                     std::string("c40: character '") + text[i + k] +
                                         "' is not a digit or an upper-case letter");
            }
            h += static_cast<unsigned>(v) * weights[k];
        }
        halves.push_back(static_cast<std::uint16_t>(h));
    }
    if (halves.empty()) {
        return "0";
    }
    std::string out;
    for (std::size_t i = 0; i < halves.size(); i += 2) {
        const std::uint32_t high = i + 1 < halves.size() ? halves[i + 1] : 0;
        const std::uint32_t word = (high << 16) | halves[i];
        char buffer[16];
        std::snprintf(buffer, sizeof buffer, "%08x", static_cast<unsigned>(word));
        if (!out.empty()) {
            out.push_back('_');
        }
        out += buffer;
    }
    return out;
}

std::optional<std::string> c40Decode(std::string_view encoded) {
    std::string out;
    std::size_t at = 0;
    while (at <= encoded.size()) {
        std::size_t end = encoded.find('_', at);
        if (end == std::string_view::npos) {
            end = encoded.size();
        }
        std::string_view token = encoded.substr(at, end - at);
        if (token.size() > 2 && token[0] == '0' && (token[1] == 'x' || token[1] == 'X')) {
            token.remove_prefix(2);
        }
        std::uint64_t word = 0;
        std::size_t digits = 0;
        for (char c : token) {
            int v = -1;
            if (c >= '0' && c <= '9') {
                v = c - '0';
            } else if (c >= 'a' && c <= 'f') {
                v = 10 + (c - 'a');
            } else if (c >= 'A' && c <= 'F') {
                v = 10 + (c - 'A');
            }
            if (v < 0) {
                break;
            }
            word = (word << 4) | static_cast<unsigned>(v);
            if (++digits > 8) {
                return std::nullopt;
            }
        }
        if (word == 0) {
            break;
        }
        if (!decodeHalf(static_cast<unsigned>(word & 0xffff), out)) {
            return std::nullopt;
        }
        if ((word >> 16) != 0 && !decodeHalf(static_cast<unsigned>(word >> 16), out)) {
            return std::nullopt;
        }
        at = end + 1;
    }
    return out;
}

}  // namespace virtualpi
