// Checking the file name a board asks for (docs/protocol.md §5 and §6.3).
//
// A requested name is untrusted input from the device. These pure functions
// decide whether it may be looked up at all and, when not, say which rule
// refused it in words fit for the log. They never touch the file system and
// never throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace rpiboot {

// Longest name a request can carry: the 256-byte field minus its NUL.
inline constexpr std::size_t kMaxRequestNameLength = 255;

// Why `name` (already cut at its NUL) must not be looked up, or nullopt when
// it may be. Refused: empty, absolute ("/x"), any ".." component, a
// backslash, control or non-ASCII bytes, longer than kMaxRequestNameLength.
// Plain relative subpaths such as "overlays/x.dtbo" are allowed.
std::optional<std::string> requestNameRefusal(std::string_view name);

// True when `component` can be used as one directory level built from
// device-supplied text (a serial number, a USB port path): non-empty, not
// "." or "..", printable ASCII, no '/' or '\\'.
bool isSafePathComponent(std::string_view component) noexcept;

struct RequestName {
    std::string name;                    // bytes before the first NUL (or the whole field)
    std::optional<std::string> refusal;  // set when the field or the name is unusable
};

// Takes the raw name field of a request (normally 256 bytes), cuts it at the
// first NUL and checks the result. A field without a NUL is refused ("no NUL
// terminator within N bytes"). Never reads outside `field`.
RequestName parseRequestNameField(std::span<const std::uint8_t> field);

}  // namespace rpiboot
