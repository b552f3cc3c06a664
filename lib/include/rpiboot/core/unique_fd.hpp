// A file descriptor owned by exactly one object and closed when that object
// goes: the one fd owner for the library, the daemon, the CLIs and the
// simulator. -1 is "none".
//
// close() is never retried: on Linux the descriptor is released even when
// close() reports EINTR, and a retry could close a number another thread has
// just been given.
#pragma once

#include <unistd.h>

#include <utility>

namespace rpiboot {

class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset(other.release());
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }
    // Gives the descriptor up without closing it; the caller now owns it.
    int release() noexcept { return std::exchange(fd_, -1); }
    // Closes the held descriptor (if any) and takes `fd` instead.
    void reset(int fd = -1) noexcept {
        const int old = std::exchange(fd_, fd);
        if (old >= 0 && old != fd) {
            ::close(old);
        }
    }

  private:
    int fd_ = -1;
};

}  // namespace rpiboot
