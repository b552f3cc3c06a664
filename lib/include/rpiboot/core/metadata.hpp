// Board metadata sent by the second stage as `*KEY*VALUE` (docs/protocol.md §5.5).
//
// Parses the messages, decodes FACTORY_UUID from its c40 form, and renders one
// JSON object per board. Never trusts the device: keys and values are escaped
// and file names derived from a serial are sanitised.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace rpiboot {

struct MetadataEntry {
    std::string key;
    std::string value;
};

// "*KEY*VALUE" -> {KEY, VALUE}. nullopt when `name` is not a metadata message
// (no leading '*'). A message without a second '*' or with an empty key yields
// nullopt too: it carries no entry. VALUE ends at the next '*', as on the board.
std::optional<MetadataEntry> parseMetadataMessage(std::string_view name);
bool isMetadataMessage(std::string_view name) noexcept;

// c40 decoding of FACTORY_UUID (docs/protocol.md §5.6). Throws Errc::Protocol for a
// value that is not valid c40 (no partial result).
std::string decodeFactoryUuid(std::string_view encoded);
// The inverse, for device models and tests: "001000911006186073" -> "19a519a6_...".
std::string encodeFactoryUuid(std::string_view text);

// Upstream's file layout: {\n\t"KEY": "VALUE",...\n}\n, but properly escaped.
std::string renderMetadataJson(const std::map<std::string, std::string>& entries);

// A file name safe to create in a directory: the serial with anything other
// than [A-Za-z0-9_-] replaced, never empty, never "." or "..".
std::string metadataFileStem(std::string_view serial);

// Writes <dir>/<stem>.json atomically (temp file + rename). Returns the path.
std::filesystem::path writeMetadataFile(const std::filesystem::path& dir, std::string_view serial,
                                        const std::map<std::string, std::string>& entries);

}  // namespace rpiboot
