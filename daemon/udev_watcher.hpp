// Real USB boot-mode devices, as udev reports them.
//
// Watches a udev monitor ("udev" netlink group, so rules and permissions have
// been applied before we hear of a device) for usb_device and whole-disk
// block add/remove events, and enumerates the ones already attached at start
// (USB devices first, then disks). Boot-mode devices (VID 0a5c with a boot
// PID) are reported as such; any other USB device as what a board may have
// become; a disk only when it hangs under a USB device. No polling, no
// sleeps: the monitor fd sits in the main sd-event loop. Descriptor facts
// come from sysfs; opening goes through libusb on the device node. Never
// decides what to do with a device.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "device_source.hpp"
#include "event_loop.hpp"
#include "handles.hpp"
#include "journal.hpp"

namespace rpiboot {
class LibusbContext;
}

namespace rpibootd {

// From the sysfs `descriptors` attribute (device descriptor, then the
// configuration descriptors as the device returned them): iSerialNumber
// index (byte 16) and the number of interface descriptors actually present
// in the first configuration — what libusb would report (docs/protocol.md
// §12.3, the ROM's 55/32 quirk). nullopt when the blob is too short.
std::optional<rpiboot::UsbDescriptorSummary> summaryFromDescriptors(
    std::uint16_t vendorId, std::uint16_t productId, std::span<const std::uint8_t> raw);

class UdevWatcher final : public DeviceSource {
  public:
    UdevWatcher(EventLoop& loop, Logger& log);
    ~UdevWatcher() override;

    std::string_view name() const noexcept override { return "udev"; }
    void start(DeviceEvents& events) override;
    OpenedDevice open(const DeviceInfo& device) override;

  private:
    void onMonitorReadable();
    void added(udev_device* device, bool coldplug);
    void removed(udev_device* device);
    std::optional<DeviceInfo> describe(udev_device* device);
    std::optional<UsbDeviceInfo> describeOther(udev_device* device);
    std::optional<DiskInfo> describeDisk(udev_device* device);

    EventLoop& loop_;
    Logger& log_;
    UdevPtr udev_;
    UdevMonitorPtr monitor_;
    EventSource monitorSource_;
    DeviceEvents* events_ = nullptr;
    // What was reported as added, by the id it was reported with (boot and
    // other USB devices: the device node; disks: the sysfs path), and as what.
    enum class Reported { Boot, Other, Disk };
    std::map<std::string, Reported> known_;
    std::unique_ptr<rpiboot::LibusbContext> usb_;
};

}  // namespace rpibootd
