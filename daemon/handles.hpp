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

#include <memory>

#include "rpiboot/core/unique_fd.hpp"

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

// File descriptors are owned by the library's one fd owner.
using rpiboot::UniqueFd;

}  // namespace rpibootd
