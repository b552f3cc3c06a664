// A file descriptor owned by exactly one object, closed when it goes away.
// Never duplicates descriptors behind its owner's back.
#pragma once

#include <unistd.h>

#include <utility>

namespace usbip {

class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset(std::exchange(other.fd_, -1));
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

  private:
    int fd_ = -1;
};

// A connected pair of stream sockets (AF_UNIX, close-on-exec). Throws
// rpiboot::Error(Io) when the kernel refuses.
std::pair<UniqueFd, UniqueFd> streamSocketPair();
// A connected pair over TCP on 127.0.0.1 (for kernels that want TCP).
std::pair<UniqueFd, UniqueFd> loopbackTcpPair();

}  // namespace usbip
