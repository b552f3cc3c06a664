// Opening a file only if it really lies inside a set of trusted directories.
//
// Private to the firmware resolver. The path is canonicalised (symlinks
// followed), checked to lie inside one of the allowed roots, then opened again
// by its canonical path without following any symlink, so a symlink swapped in
// between the check and the open fails instead of leading outside. Never
// throws; every outcome is a status with a reason for the log.
#pragma once

#include <filesystem>
#include <span>
#include <string>

namespace rpiboot::firmware_detail {

class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd();
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const noexcept { return fd_; }
    int release() noexcept {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }

  private:
    int fd_ = -1;
};

enum class OpenStatus {
    Opened,   // fd is set
    Missing,  // nothing by that name (or a dangling symlink): try the next source
    Refused,  // a safety rule refused it: reason says which
    Failed,   // it exists but cannot be opened (permissions, I/O): reason says why
};

struct OpenedFile {
    OpenStatus status = OpenStatus::Missing;
    UniqueFd fd;
    std::filesystem::path canonical;  // set when Opened
    std::string reason;
};

enum class NoSymlinkOpen {
    Openat2OrWalk,  // openat2(RESOLVE_NO_SYMLINKS) when the kernel has it, else WalkOnly
    WalkOnly,       // component by component with O_NOFOLLOW (for kernels before 5.6)
};

// Root paths in `allowedRoots` must already be canonical. `path` is the full
// lexical path to open (a root joined with a checked relative name).
OpenedFile openInsideRoots(const std::filesystem::path& path,
                           std::span<const std::filesystem::path> allowedRoots,
                           NoSymlinkOpen method = NoSymlinkOpen::Openat2OrWalk);

// True when `path` is `root` or lies below it, comparing whole components.
bool isWithin(const std::filesystem::path& path, const std::filesystem::path& root);

}  // namespace rpiboot::firmware_detail
