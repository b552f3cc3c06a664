// Firmware resolution (docs/protocol.md §6): which bytes a board gets for a name.
//
// A FirmwareSet is one configured boot set (a profile's root directory, its
// overlays, files generated in memory) and is immutable after construction,
// so every board worker may resolve through the same instance concurrently.
// It never serves anything outside its trusted roots and says which rule
// refused a name. Bytes come from a FileCache shared by all sets: a file is
// read once per version and handed out read-only, never copied per request.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rpiboot/core/device.hpp"
#include "rpiboot/core/file_source.hpp"

namespace rpiboot {

class FileCache;

// Who is asking: decides the chip subfolder and the overlays that apply.
struct BoardContext {
    Chip chip = Chip::Bcm2711;
    std::string portPath;  // "1-1.3"; empty when unknown
    std::string serial;    // ROM serial string; empty when unknown
};

struct FirmwareSetConfig {
    // The boot set's directory (upstream -d).
    std::filesystem::path root;
    // Directories symlinks may lead into besides `root` (e.g. a shared
    // firmware tree the set links into). Anything else is refused.
    std::vector<std::filesystem::path> trustedRoots;
    // Upstream -o: <root>/<port path>/NAME, never for bootcode files.
    bool portOverlays = false;
    // rpibootd addition: <serialOverlayRoot>/<serial>/NAME, never for bootcode files.
    std::filesystem::path serialOverlayRoot;
    // Further sets searched, with the same rules, when `root` has no answer
    // (profile layering).
    std::vector<std::filesystem::path> fallbackRoots;
    // Files produced in memory (e.g. a recovery profile's pieeprom.bin);
    // searched first, by exact name: "<chip folder>/NAME" (e.g. "2712/pieeprom.bin")
    // before NAME.
    std::map<std::string, ServedFile, std::less<>> generated;
    // A file larger than this is refused (the protocol carries 32-bit sizes).
    std::uint64_t maxFileSize = std::uint64_t{1} << 30;
    // The firmware compiled in (embedded_firmware.hpp) answers, as the last
    // resort, what no directory has. Then `root` may be empty (no directory)
    // and a root or fallback that is not a directory is skipped (see
    // missingRoots()) instead of failing the set.
    bool embedded = false;
};

class FirmwareSet {
  public:
    // Throws Errc::NotFound when `root` is not a directory, Errc::Corrupt when
    // its bootfiles.bin is not a readable tar archive.
    FirmwareSet(FirmwareSetConfig config, std::shared_ptr<FileCache> cache);
    ~FirmwareSet();
    FirmwareSet(const FirmwareSet&) = delete;
    FirmwareSet& operator=(const FirmwareSet&) = delete;

    // Resolves a name requested by a board. Thread-safe. Order (the first
    // source that has the name wins; C = chipFolder(board.chip)):
    //  0. the name is checked (request_name.hpp); a refused name stops here;
    //  1. `generated`, by the exact name "C/NAME", then "NAME";
    //  2. <serialOverlayRoot>/<serial>/NAME (not for bootcode names);
    //  3. when <root>/bootfiles.bin existed at construction: <root>/C/NAME on
    //     disk, else archive member C/NAME (case-insensitive; a zero-length
    //     member falls through, as upstream);
    //  4. <root>/<portPath>/NAME when portOverlays (not for bootcode names);
    //  5. <root>/C/NAME, then <root>/NAME;
    //  6. each fallback root in turn, with steps 3-5;
    //  7. when config.embedded: the embedded firmware, by exact name (origin
    //     "embedded:NAME").
    // Steps 3-5 are upstream's order for one directory (docs/protocol.md §6.1).
    // A source that exists but is refused (symlink leading outside the trusted
    // roots, not a regular file, over maxFileSize, unreadable) ends the lookup
    // with `refusal` set rather than falling through to a lower source. Never
    // throws.
    Lookup resolve(std::string_view name, const BoardContext& board) const;
    // The chip's second-stage loader (bootcodeFileName(chip)); no overlays.
    Lookup bootcode(const BoardContext& board) const;

    const FirmwareSetConfig& config() const noexcept;
    // Roots and fallbacks skipped because they were not directories (only
    // with config.embedded; otherwise the constructor throws).
    const std::vector<std::filesystem::path>& missingRoots() const noexcept;
    // Where lookups search, for messages: "/fw/msd, /fw (missing), the
    // embedded firmware (bootcode.bin, ...)".
    std::string searchedPlaces() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// A FileSource for one board: a FirmwareSet seen with that board's context.
class BoardFileSource final : public FileSource {
  public:
    BoardFileSource(const FirmwareSet& set, BoardContext board)
        : set_(set), board_(std::move(board)) {}
    Lookup lookup(std::string_view name) override { return set_.resolve(name, board_); }

  private:
    const FirmwareSet& set_;
    BoardContext board_;
};

}  // namespace rpiboot
