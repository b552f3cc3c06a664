// Where boot-mode devices come from: udev for real USB, the virtual bus for
// --virtual. Both look the same to the board registry.
//
// A DeviceSource reports devices appearing and leaving (coldplug first, then
// hotplug) to DeviceEvents on the main loop thread, and opens a reported
// device for a board worker (on the worker's thread). It never decides what
// to do with a device and never touches board state.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "rpiboot/core/device.hpp"
#include "rpiboot/core/transport.hpp"

namespace rpibootd {

class DeviceSource;

// One enumeration of a boot-mode device, identified by its source (which
// reports nothing that rpiboot::identifyDevice does not recognise).
struct DeviceInfo {
    std::string id;    // unique per enumeration within its source ("/dev/bus/usb/001/007")
    std::string port;  // USB port path, "1-1.3"
    rpiboot::DeviceIdentity identity;  // chip, ROM or second stage, bulk interface
    std::string serial;                // the string at iSerialNumber, "" when none
    DeviceSource* source = nullptr;
};

// An opened device, its protocol interface claimed, ready for the engine.
struct OpenedDevice {
    std::unique_ptr<rpiboot::Transport> transport;
    rpiboot::DeviceIdentity identity;
};

class DeviceEvents {
  public:
    virtual ~DeviceEvents() = default;
    virtual void deviceAdded(const DeviceInfo& device) = 0;
    virtual void deviceRemoved(const std::string& id) = 0;
};

class DeviceSource {
  public:
    virtual ~DeviceSource() = default;
    virtual std::string_view name() const noexcept = 0;
    // Starts watching; reports boot-mode devices already present, then
    // changes, all on the main loop thread. Throws rpiboot::Error when it cannot watch.
    virtual void start(DeviceEvents& events) = 0;
    // Thread-safe. Throws rpiboot::Error (DeviceGone when it left the bus,
    // Refused without permission, NotFound/Protocol for a device that is not
    // a boot-mode device after all).
    virtual OpenedDevice open(const DeviceInfo& device) = 0;
};

}  // namespace rpibootd
