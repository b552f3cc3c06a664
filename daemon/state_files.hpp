// Files the daemon writes for others to read after it: the held ports and
// the serials booted under an "once-per-serial" profile in the state
// directory (read back at start), and the metrics textfile.
//
// Every write is atomic (a temporary file beside the target, then rename),
// so a reader never sees half a file and a crash never leaves one behind.
// Used on the main loop; never throws past its callers' boundaries: errors
// come back as rpiboot::Error for them to log.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace rpibootd {

// Replaces `file` with `content` (mode 0644). Throws rpiboot::Error(Io)
// naming the file and the reason.
void writeFileAtomically(const std::filesystem::path& file, std::string_view content);

// The held port globs, one per line, in `<state dir>/held-ports`.
class HeldPortsFile {
  public:
    explicit HeldPortsFile(std::filesystem::path stateDir)
        : file_(std::move(stateDir) / "held-ports") {}

    const std::filesystem::path& path() const noexcept { return file_; }
    // Empty when the file does not exist. Throws rpiboot::Error when it
    // exists but cannot be read.
    std::vector<std::string> load() const;
    // Creates the state directory when missing. Throws rpiboot::Error.
    void save(const std::vector<std::string>& globs) const;

  private:
    std::filesystem::path file_;
};

// Serials of boards booted under an "once-per-serial" profile, one per line,
// in `<state dir>/booted-serials`: such a board is never booted again
// (until rpibootctl retry or forget).
class BootedSerialsFile {
  public:
    explicit BootedSerialsFile(std::filesystem::path stateDir)
        : file_(std::move(stateDir) / "booted-serials") {}

    const std::filesystem::path& path() const noexcept { return file_; }
    // Empty when the file does not exist. Throws rpiboot::Error.
    std::vector<std::string> load() const;
    // Creates the state directory when missing. Throws rpiboot::Error.
    void save(const std::vector<std::string>& serials) const;

  private:
    std::filesystem::path file_;
};

}  // namespace rpibootd
