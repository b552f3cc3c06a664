#include "firmware/inside_root.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <system_error>
#include <utility>

#include "rpiboot/core/error.hpp"

namespace rpiboot::firmware_detail {
namespace {

constexpr int kFileOpenFlags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW;

OpenedFile outcome(OpenStatus status, std::string reason) {
    OpenedFile result;
    result.status = status;
    result.reason = std::move(reason);
    return result;
}

OpenedFile fromErrno(int error, const std::filesystem::path& path) {
    switch (error) {
        case ENOENT:
            return outcome(OpenStatus::Missing, path.string() + " does not exist");
        case ELOOP:
        case ENOTDIR:
        case EXDEV:
            // The canonical path had no symlink a moment ago: one was swapped in.
            return outcome(OpenStatus::Refused,
                           path.string() + " changed into a symlink while being opened");
        default:
            return outcome(OpenStatus::Failed,
                           "cannot open " + path.string() + ": " + errnoText(error));
    }
}

// -1 with errno set; errno ENOSYS (or EPERM under some seccomp filters) when
// the kernel or sandbox lacks openat2.
int openat2NoSymlinks(const std::filesystem::path& canonical) {
#ifdef SYS_openat2
    struct open_how how {};
    how.flags = static_cast<std::uint64_t>(kFileOpenFlags);
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, canonical.c_str(), &how, sizeof how));
#else
    errno = ENOSYS;
    return -1;
#endif
}

// Opens an absolute canonical path one component at a time, refusing to
// follow a symlink at any level.
int walkNoSymlinks(const std::filesystem::path& canonical) {
    UniqueFd dir(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) {
        return -1;
    }
    std::filesystem::path components = canonical.relative_path();
    auto it = components.begin();
    if (it == components.end()) {
        errno = EISDIR;
        return -1;
    }
    while (true) {
        const std::string component = it->string();
        ++it;
        if (it == components.end()) {
            return ::openat(dir.get(), component.c_str(), kFileOpenFlags);
        }
        UniqueFd next(
            ::openat(dir.get(), component.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (next.get() < 0) {
            return -1;
        }
        dir = std::move(next);
    }
}

}  // namespace

bool isWithin(const std::filesystem::path& path, const std::filesystem::path& root) {
    auto p = path.begin();
    for (auto r = root.begin(); r != root.end(); ++r, ++p) {
        if (r->empty()) {
            continue;  // trailing separator of "root/"
        }
        if (p == path.end() || *p != *r) {
            return false;
        }
    }
    return true;
}

namespace {

bool insideAny(const std::filesystem::path& path,
               std::span<const std::filesystem::path> allowedRoots) {
    bool inside = false;
    for (const auto& root : allowedRoots) {
        inside = inside || isWithin(path, root);
    }
    return inside;
}

OpenedFile opened(int fd, std::filesystem::path canonical) {
    OpenedFile result;
    result.status = OpenStatus::Opened;
    result.fd = UniqueFd(fd);
    result.canonical = std::move(canonical);
    return result;
}

// The common case in one system call: a path with no symlink anywhere is its
// own canonical form, so opening it with RESOLVE_NO_SYMLINKS both checks that
// and opens it. Empty when the answer needs the canonical path: a symlink on
// the way (ELOOP), or no openat2 here.
std::optional<OpenedFile> openWithoutSymlinks(const std::filesystem::path& path,
                                              std::span<const std::filesystem::path> allowedRoots) {
    if (!path.is_absolute() || path != path.lexically_normal() || !insideAny(path, allowedRoots)) {
        return std::nullopt;
    }
    const int fd = openat2NoSymlinks(path);
    if (fd >= 0) {
        return opened(fd, path);
    }
    if (errno == ENOENT || errno == ENOTDIR) {
        // Every component up to the missing one was a plain directory.
        return outcome(OpenStatus::Missing, path.string() + " does not exist");
    }
    return std::nullopt;
}

}  // namespace

OpenedFile openInsideRoots(const std::filesystem::path& path,
                           std::span<const std::filesystem::path> allowedRoots,
                           NoSymlinkOpen method) {
    if (method == NoSymlinkOpen::Openat2OrWalk) {
        if (auto fast = openWithoutSymlinks(path, allowedRoots)) {
            return std::move(*fast);
        }
    }
    std::error_code ec;
    std::filesystem::path canonical = std::filesystem::canonical(path, ec);
    if (ec) {
        if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
            return outcome(OpenStatus::Missing, path.string() + " does not exist");
        }
        if (ec == std::errc::too_many_symbolic_link_levels) {
            return outcome(OpenStatus::Refused, path.string() + " is a symlink loop");
        }
        return outcome(OpenStatus::Failed, "cannot resolve " + path.string() + ": " + ec.message());
    }
    if (!insideAny(canonical, allowedRoots)) {
        return outcome(OpenStatus::Refused, path.string() +
                                                " leads outside the trusted roots (to " +
                                                canonical.string() + ") through a symlink");
    }

    int fd = -1;
    if (method == NoSymlinkOpen::Openat2OrWalk) {
        fd = openat2NoSymlinks(canonical);
        if (fd < 0 && (errno == ENOSYS || errno == EPERM || errno == E2BIG)) {
            fd = walkNoSymlinks(canonical);
        }
    } else {
        fd = walkNoSymlinks(canonical);
    }
    if (fd < 0) {
        return fromErrno(errno, canonical);
    }
    return opened(fd, std::move(canonical));
}

}  // namespace rpiboot::firmware_detail
