// Owners of the C handles the daemon holds: sd-bus, sd-event, udev and file
// descriptors, each released once by its own unref/close when the owner goes.
//
// Every C handle in daemon/ lives in one of these; no module calls *_unref or
// close() on a handle it keeps. The types only own: they never create, start
// or configure anything.
#pragma once

#include <libudev.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <memory>
#include <utility>

namespace rpibootd {

// A unique_ptr deleter calling `release` (sd_bus_unref, udev_unref, ...).
template <auto release>
struct Unref {
    template <typename T>
    void operator()(T* handle) const noexcept {
        release(handle);
    }
};

// Flushes what is queued before closing, so a last signal is not lost.
using BusPtr = std::unique_ptr<sd_bus, Unref<sd_bus_flush_close_unref>>;
using BusSlotPtr = std::unique_ptr<sd_bus_slot, Unref<sd_bus_slot_unref>>;
using BusMessagePtr = std::unique_ptr<sd_bus_message, Unref<sd_bus_message_unref>>;
using BusCredsPtr = std::unique_ptr<sd_bus_creds, Unref<sd_bus_creds_unref>>;

using EventPtr = std::unique_ptr<sd_event, Unref<sd_event_unref>>;
// Disabled as well as released: a source other code still references (the
// loop, while dispatching) must not fire for an owner that is gone.
using EventSource = std::unique_ptr<sd_event_source, Unref<sd_event_source_disable_unref>>;

using UdevPtr = std::unique_ptr<udev, Unref<udev_unref>>;
using UdevMonitorPtr = std::unique_ptr<udev_monitor, Unref<udev_monitor_unref>>;
using UdevDevicePtr = std::unique_ptr<udev_device, Unref<udev_device_unref>>;
using UdevEnumeratePtr = std::unique_ptr<udev_enumerate, Unref<udev_enumerate_unref>>;

// A file descriptor, closed when this goes; -1 is "none".
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        reset(other.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
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

}  // namespace rpibootd
