// Byte buffers, hex and whole-file helpers shared by the signing and image
// code and the tools.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rpiboot {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

std::string toHex(ByteView data);  // lower case
// Decodes hex (either case); throws Errc::Corrupt naming `what` on odd length
// or a non-hex digit.
Bytes fromHex(std::string_view hex, std::string_view what);

Bytes readFileBytes(const std::filesystem::path& path);  // Errc::NotFound / Errc::Io
// Writes through a temporary file in the same directory and renames it over
// `path`, so a reader never sees half a file.
void writeFileBytes(const std::filesystem::path& path, ByteView data);

}  // namespace rpiboot
