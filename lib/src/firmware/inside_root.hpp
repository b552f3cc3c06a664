// Opening a file only if it really lies inside a set of trusted directories.
//
// Private to the firmware resolver. A path with no symlink on it is opened in
// one openat2(RESOLVE_NO_SYMLINKS) call: it is its own canonical path, checked
// against the roots before the call (a board asks for a file every
// millisecond; a readlink per component per request showed on the wire).
// Otherwise the path is canonicalised (symlinks followed), checked to lie
// inside one of the allowed roots, then opened again by its canonical path
// without following any symlink, so a symlink swapped in between the check and
// the open fails instead of leading outside. Never throws; every outcome is a
// status with a reason for the log.
#pragma once

#include <filesystem>
#include <span>
#include <string>

#include "rpiboot/core/unique_fd.hpp"

namespace rpiboot::firmware_detail {

using rpiboot::UniqueFd;

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
