// Where boot-mode devices come from: udev for real USB, the virtual bus for
// --virtual. Both look the same to the board registry.
//
// A DeviceSource reports devices appearing and leaving (coldplug first, then
// hotplug) to DeviceEvents on the main loop thread, and opens a reported
// device for a board worker (on the worker's thread). Besides boot-mode
// devices it reports the other USB devices and the whole-disk block devices
// under them, so the registry can follow a board into what it becomes after
// its boot. It never decides what to do with a device and never touches
// board state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "rpiboot/core/device.hpp"
#include "rpiboot/core/transport.hpp"
#include "storage_job.hpp"

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

// What a non-boot USB device is, by its IDs (docs/protocol.md §2.6, §12.4).
enum class UsbDeviceKind {
    Msd,       // Broadcom's VID 0a5c with any other product ID than the boot
               // ROMs' and the gadget's: the legacy msd firmware's device (its
               // product ID is not documented)
    Gadget,    // 0a5c:0104, the mass-storage-gadget's Linux gadget
    Fastboot,  // 18d1:4e40, a fastboot gadget (provisioning images)
    Other,
};

UsbDeviceKind classifyUsbDevice(std::uint16_t vendorId, std::uint16_t productId) noexcept;
std::string_view usbDeviceKindName(UsbDeviceKind kind) noexcept;  // "msd", "gadget", ...

// One enumeration of a USB device that is not a boot-mode device.
struct UsbDeviceInfo {
    std::string id;    // unique per enumeration within its source
    std::string port;  // USB port path, "1-1.3"
    std::uint16_t vendorId = 0;
    std::uint16_t productId = 0;
    std::string serial;     // "" when none
    std::string sysfsPath;  // "/sys/devices/.../1-1.3"; "" for a virtual device
    UsbDeviceKind kind = UsbDeviceKind::Other;
    // A virtual board's device: its disks are regular files.
    bool simulated = false;

    // "gadget 0a5c:0104 serial 10000000af04b2da" (D-Bus AfterBoot).
    std::string describe() const;
};

// A whole-disk block device under a USB device.
struct DiskInfo {
    std::string id;    // unique within its source (sysfs path, or "virtual-disk:N")
    std::string port;  // the port path of the USB device it hangs under
    BoardDisk disk;
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
    // Any other USB device, and the whole disks under USB devices.
    virtual void usbDeviceAdded(const UsbDeviceInfo&) {}
    virtual void usbDeviceRemoved(const std::string& /*id*/) {}
    virtual void diskAdded(const DiskInfo&) {}
    virtual void diskRemoved(const std::string& /*id*/) {}
};

class DeviceSource {
  public:
    virtual ~DeviceSource() = default;
    virtual std::string_view name() const noexcept = 0;
    // Starts watching; reports the devices (boot-mode, other USB, disks)
    // already present, then changes, all on the main loop thread. Throws rpiboot::Error when it
    // cannot watch.
    virtual void start(DeviceEvents& events) = 0;
    // Thread-safe. Throws rpiboot::Error (DeviceGone when it left the bus,
    // Refused without permission, NotFound/Protocol for a device that is not
    // a boot-mode device after all).
    virtual OpenedDevice open(const DeviceInfo& device) = 0;
};

}  // namespace rpibootd
