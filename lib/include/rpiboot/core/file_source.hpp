// What the file server asks when a board requests a file by name.
//
// A FileSource answers "which bytes, if any, does this board get for NAME".
// The firmware resolver (firmware.hpp) is the real implementation; tests may
// provide their own. Served bytes are shared and read-only: a ServedFile keeps
// its storage alive, so many boards can be sent the same buffer without a copy.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace rpiboot {

struct ServedFile {
    std::shared_ptr<const void> storage;  // keeps `bytes` valid
    std::span<const std::uint8_t> bytes;
    std::string origin;  // where it came from, for logs: "/srv/fw/2711/start4.elf",
                         // "bootfiles.bin:2711/bootmain"
};

struct Lookup {
    std::optional<ServedFile> file;  // set when found
    std::string refusal;             // set when a safety rule refused the name (why, for the log)
    bool found() const noexcept { return file.has_value(); }
};

class FileSource {
  public:
    virtual ~FileSource() = default;
    // `name` is the request's name as the board sent it, already cut at its
    // terminating NUL. Must not throw for a missing or refused file.
    virtual Lookup lookup(std::string_view name) = 0;
};

}  // namespace rpiboot
