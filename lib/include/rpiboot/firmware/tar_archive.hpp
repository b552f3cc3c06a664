// Reading a POSIX tar (ustar) archive held in memory, such as bootfiles.bin
// (docs/protocol.md §6, §6.5).
//
// The archive is walked and checked once, when it is opened, and indexed by
// member name; lookups afterwards cost a hash lookup. Every header is
// bounds-checked against the archive's length and its checksum verified, so a
// truncated or corrupt archive is rejected as a whole (Errc::Corrupt, with the
// offset and member) instead of yielding half a file. It never reads outside
// the span it was given and never copies member contents. The bytes must
// outlive the TarArchive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rpiboot {

inline constexpr std::size_t kTarBlockSize = 512;

struct TarMember {
    std::string name;          // full name: ustar prefix + "/" + name when a prefix is set
    std::uint64_t offset = 0;  // of the contents, from the start of the archive
    std::uint64_t size = 0;
};

class TarArchive {
  public:
    // Walks and indexes `bytes`. `label` names the archive in error messages
    // ("/srv/fw/bootfiles.bin"). Throws Errc::Corrupt when a header is
    // truncated, its checksum is wrong, its size field is not octal, or a
    // member's contents run past the end of the archive.
    explicit TarArchive(std::span<const std::uint8_t> bytes, std::string label = "tar archive");

    // Regular-file members in archive order (directories, links and extension
    // headers are skipped; a name stored twice is listed twice).
    const std::vector<TarMember>& members() const noexcept { return members_; }

    // The member named `name`, compared ASCII case-insensitively
    // ("2711/BOOTCODE4.BIN" finds "2711/bootcode4.bin"). When a name is stored
    // more than once, the first one wins. nullptr when absent.
    const TarMember* find(std::string_view name) const;

    // The contents of a member of this archive (a view into the bytes).
    std::span<const std::uint8_t> contents(const TarMember& member) const;

    const std::string& label() const noexcept { return label_; }

  private:
    std::span<const std::uint8_t> bytes_;
    std::string label_;
    std::vector<TarMember> members_;
    std::unordered_map<std::string, std::size_t> index_;  // lower-cased name -> members_ index
};

}  // namespace rpiboot
