// Fuzz target: board metadata (metadata.hpp): `*KEY*VALUE` messages, the
// FACTORY_UUID c40 decoder and encoder, the JSON renderer and file stems.
//
// The input is used whole as a message, as an encoded FACTORY_UUID and as a
// serial; mapped onto 0-9A-Z it is c40 text to round-trip; split at NULs
// into key/value pairs it is a metadata map to render.
//
// Checked: parse results are substrings of the message as documented;
// decoding fails only with rpiboot::Error and agrees with a reference decoder
// written from docs/protocol.md §5; decode(encode(x)) == x for valid text; the
// rendered JSON parses (nlohmann) back to the same keys and values; stems are
// safe file names.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "fuzz_support.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/core/metadata.hpp"

namespace rpiboot::fuzz {
namespace {

constexpr std::size_t kMaxWords = 64;  // the decoder's documented cap

void checkMessage(std::string_view message) {
    const auto entry = parseMetadataMessage(message);
    FUZZ_CHECK(isMetadataMessage(message) == (!message.empty() && message[0] == '*'),
               "metadata messages are the names starting with '*'");
    if (!entry) {
        return;
    }
    FUZZ_CHECK(!entry->key.empty() && !entry->value.empty(), "entries have a key and a value");
    FUZZ_CHECK(
        entry->key.find('*') == std::string::npos && entry->value.find('*') == std::string::npos,
        "key and value end at the next '*'");
    const std::string prefix = "*" + entry->key + "*" + entry->value;
    FUZZ_CHECK(message.substr(0, prefix.size()) == prefix, "entry is read from the message");
    FUZZ_CHECK(message.size() == prefix.size() || message[prefix.size()] == '*',
               "the value runs to the next '*' or the end");
}

// docs/protocol.md §5.6: h = 1600a + 40b + c + 1; 4-13 digits, 14-39 letters.
bool appendReferenceHalf(std::uint32_t half, std::string& out) {
    const std::uint32_t values[3] = {(half - 1) / 1600, (half - 1) / 40 % 40, (half - 1) % 40};
    for (const std::uint32_t v : values) {
        if (v >= 4 && v <= 13) {
            out.push_back(static_cast<char>('0' + (v - 4)));
        } else if (v >= 14 && v <= 39) {
            out.push_back(static_cast<char>('A' + (v - 14)));
        } else {
            return false;
        }
    }
    return true;
}

std::optional<std::string> referenceDecode(std::string_view encoded) {
    std::string out;
    std::size_t words = 0;
    std::size_t start = 0;
    while (true) {
        const std::size_t sep = encoded.find('_', start);
        std::string_view token = encoded.substr(
            start, sep == std::string_view::npos ? std::string_view::npos : sep - start);
        if (token.size() > 2 && token[0] == '0' && (token[1] == 'x' || token[1] == 'X')) {
            token.remove_prefix(2);
        }
        if (token.empty() || token.size() > 8 ||
            token.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
            return std::nullopt;
        }
        const std::uint32_t word =
            static_cast<std::uint32_t>(std::stoul(std::string(token), nullptr, 16));
        if (word == 0) {
            break;
        }
        if (++words > kMaxWords) {
            return std::nullopt;
        }
        const std::uint32_t low = word & 0xffffU;
        const std::uint32_t high = word >> 16;
        if (low == 0 || !appendReferenceHalf(low, out) ||
            (high != 0 && !appendReferenceHalf(high, out))) {
            return std::nullopt;  // an empty low half, or a value outside 4-39
        }
        if (sep == std::string_view::npos) {
            break;
        }
        start = sep + 1;
    }
    return out;
}

void checkDecode(std::string_view encoded) {
    std::optional<std::string> decoded;
    try {
        decoded = decodeFactoryUuid(encoded);
    } catch (const Error& error) {
        FUZZ_CHECK(error.code() == Errc::Protocol, "invalid c40 is Errc::Protocol");
    }
    const auto reference = referenceDecode(encoded);
    FUZZ_CHECK(decoded.has_value() == reference.has_value(),
               "decoder and reference disagree on validity of \"" + std::string(encoded) + "\"");
    if (!decoded) {
        return;
    }
    FUZZ_CHECK(*decoded == *reference, "decoder and reference disagree on \"" +
                                           std::string(encoded) + "\": " + *decoded + " vs " +
                                           *reference);
    FUZZ_CHECK(decoded->size() % 3 == 0, "c40 yields whole triples");
    FUZZ_CHECK(
        decoded->find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos,
        "decoded text is digits and capitals");
    FUZZ_CHECK(decodeFactoryUuid(encodeFactoryUuid(*decoded)) == *decoded,
               "re-encoding a decoded value round-trips");
}

void checkRoundTrip(std::span<const std::uint8_t> bytes) {
    static constexpr char kAlphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::string text;
    std::string upperText;
    for (const std::uint8_t b : bytes) {
        const char c = kAlphabet[b % 62];
        text.push_back(c);
        upperText.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
    }
    const std::size_t keep = std::min(text.size() - text.size() % 3, kMaxWords * 6);
    text.resize(keep);
    upperText.resize(keep);
    const std::string encoded = encodeFactoryUuid(text);
    std::string decoded;
    try {
        decoded = decodeFactoryUuid(encoded);
    } catch (const Error& error) {
        FUZZ_CHECK(false, "encoder output does not decode: " + encoded + ": " + error.what());
    }
    FUZZ_CHECK(decoded == upperText, "decode(encode(x)) == x for \"" + text + "\" via " + encoded);
}

// What the renderer's \u00XX escapes read back as: each byte as the code
// point of the same value, in UTF-8.
std::string latin1ToUtf8(std::string_view text) {
    std::string out;
    for (const char c : text) {
        const auto b = static_cast<unsigned char>(c);
        if (b < 0x80) {
            out.push_back(c);
        } else {
            out.push_back(static_cast<char>(0xC0 | (b >> 6)));
            out.push_back(static_cast<char>(0x80 | (b & 0x3F)));
        }
    }
    return out;
}

void checkJson(FuzzInput input) {
    std::map<std::string, std::string> entries;
    while (!input.empty() && entries.size() < 16) {
        std::string key = input.until(0);
        entries[std::move(key)] = input.until(0);
    }
    const std::string text = renderMetadataJson(entries);
    FUZZ_CHECK(text.size() >= 3 && text.front() == '{' && text.substr(text.size() - 2) == "}\n",
               "upstream's layout: {...}\\n");
    nlohmann::json parsed;
    try {
        parsed = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& error) {
        FUZZ_CHECK(false,
                   "rendered metadata is not JSON: " + std::string(error.what()) + "\n" + text);
    }
    FUZZ_CHECK(parsed.is_object() && parsed.size() == entries.size(), "one member per entry");
    for (const auto& [key, value] : entries) {
        const auto it = parsed.find(latin1ToUtf8(key));
        FUZZ_CHECK(
            it != parsed.end() && it->is_string() && it->get<std::string>() == latin1ToUtf8(value),
            "entry survives rendering: " + key);
    }
}

void checkStem(std::string_view serial) {
    const std::string stem = metadataFileStem(serial);
    FUZZ_CHECK(!stem.empty() && stem != "." && stem != "..", "stem is a usable name");
    FUZZ_CHECK(stem.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789_-") == std::string::npos,
               "stem has only [A-Za-z0-9_-]: " + stem);
}

}  // namespace

int metadataOne(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    const std::string_view text = asText(bytes);
    checkMessage(text);
    if (auto entry = parseMetadataMessage(text)) {
        checkDecode(entry->value);
    }
    checkDecode(text);
    checkRoundTrip(bytes);
    checkJson(FuzzInput(bytes));
    checkStem(text);
    return 0;
}

}  // namespace rpiboot::fuzz

RPIBOOT_FUZZ_ENTRY(metadataOne)
