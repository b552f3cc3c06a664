#include "udev_watcher.hpp"

#include <libudev.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <vector>

#include "rpiboot/core/error.hpp"
#include "rpiboot/usb/libusb_transport.hpp"

namespace rpibootd {

namespace {

// USB descriptor layout (USB 2.0 §9.6): the fields we read.
constexpr std::size_t kDeviceDescriptorLength = 18;
constexpr std::size_t kSerialNumberIndexOffset = 16;
constexpr std::uint8_t kConfigurationType = 2;
constexpr std::uint8_t kInterfaceType = 4;

std::optional<std::uint16_t> hexAttribute(udev_device* device, const char* name) {
    const char* text = udev_device_get_sysattr_value(device, name);
    if (text == nullptr) {
        return std::nullopt;
    }
    char* end = nullptr;
    errno = 0;
    const unsigned long value = std::strtoul(text, &end, 16);
    if (errno != 0 || end == text || value > 0xffff) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

std::vector<std::uint8_t> readBinary(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in),
                                     std::istreambuf_iterator<char>());
}

std::string stringOrEmpty(const char* text) {
    return text != nullptr ? text : "";
}

}  // namespace

std::optional<rpiboot::UsbDescriptorSummary> summaryFromDescriptors(
    std::uint16_t vendorId, std::uint16_t productId, std::span<const std::uint8_t> raw) {
    if (raw.size() < kDeviceDescriptorLength) {
        return std::nullopt;
    }
    rpiboot::UsbDescriptorSummary s;
    s.vendorId = vendorId;
    s.productId = productId;
    s.serialNumberIndex = raw[kSerialNumberIndexOffset];
    // Count interface descriptors (alternate setting 0) of the first
    // configuration, as far as the bytes actually go.
    std::uint8_t interfaces = 0;
    bool inFirstConfiguration = false;
    std::size_t pos = raw[0] >= kDeviceDescriptorLength ? raw[0] : kDeviceDescriptorLength;
    while (pos + 2 <= raw.size()) {
        const std::uint8_t length = raw[pos];
        const std::uint8_t type = raw[pos + 1];
        if (length < 2) {
            break;
        }
        if (type == kConfigurationType) {
            if (inFirstConfiguration) {
                break;
            }
            inFirstConfiguration = true;
        } else if (type == kInterfaceType && inFirstConfiguration && pos + 3 < raw.size() &&
                   raw[pos + 3] == 0) {
            ++interfaces;
        }
        pos += length;
    }
    s.interfaceCount = interfaces == 0 ? 1 : interfaces;
    return s;
}

UdevWatcher::UdevWatcher(EventLoop& loop, Logger& log) : loop_(loop), log_(log) {
    udev_.reset(udev_new());
    if (!udev_) {
        throw rpiboot::Error(rpiboot::Errc::Io, "cannot create a udev context");
    }
    // libusb does not scan the bus: udev tells us the device nodes.
    usb_ = std::make_unique<rpiboot::LibusbContext>(false);
}

UdevWatcher::~UdevWatcher() = default;

void UdevWatcher::start(DeviceEvents& events) {
    events_ = &events;
    // Monitor first, then enumerate: a board plugged in between is seen by
    // both, and the `known_` set drops the duplicate.
    monitor_.reset(udev_monitor_new_from_netlink(udev_.get(), "udev"));
    if (!monitor_) {
        throw rpiboot::Error(rpiboot::Errc::Io, "cannot open the udev monitor");
    }
    int r = udev_monitor_filter_add_match_subsystem_devtype(monitor_.get(), "usb", "usb_device");
    if (r >= 0) {
        r = udev_monitor_enable_receiving(monitor_.get());
    }
    if (r < 0) {
        throw rpiboot::Error(rpiboot::Errc::Io, std::string("cannot start the udev monitor: ") +
                                                    rpiboot::errnoText(r));
    }
    monitorSource_ = loop_.onReadable(udev_monitor_get_fd(monitor_.get()),
                                      [this](std::uint32_t) { onMonitorReadable(); });

    UdevEnumeratePtr scan(udev_enumerate_new(udev_.get()));
    if (!scan) {
        throw rpiboot::Error(rpiboot::Errc::Io, "cannot enumerate USB devices through udev");
    }
    udev_enumerate_add_match_subsystem(scan.get(), "usb");
    udev_enumerate_add_match_property(scan.get(), "DEVTYPE", "usb_device");
    udev_enumerate_add_match_sysattr(scan.get(), "idVendor", "0a5c");
    udev_enumerate_scan_devices(scan.get());
    udev_list_entry* entry = nullptr;
    udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(scan.get())) {
        UdevDevicePtr device(
            udev_device_new_from_syspath(udev_.get(), udev_list_entry_get_name(entry)));
        if (!device) {
            continue;
        }
        if (auto info = describe(device.get()); info && known_.insert(info->id).second) {
            log_.debug("found " + info->id + " at start-up", portFields(info->port));
            events_->deviceAdded(*info);
        }
    }
}

std::optional<DeviceInfo> UdevWatcher::describe(udev_device* device) {
    const auto vid = hexAttribute(device, "idVendor");
    const auto pid = hexAttribute(device, "idProduct");
    if (!vid || !pid || !rpiboot::isBootDevice(*vid, *pid)) {
        return std::nullopt;
    }
    const char* devnode = udev_device_get_devnode(device);
    const char* syspath = udev_device_get_syspath(device);
    if (devnode == nullptr || syspath == nullptr) {
        return std::nullopt;
    }
    const auto raw = readBinary(std::string(syspath) + "/descriptors");
    auto summary = summaryFromDescriptors(*vid, *pid, raw);
    if (!summary) {
        log_.warning(std::string("cannot read the USB descriptors of ") + syspath +
                     "; ignoring the device");
        return std::nullopt;
    }
    const auto identity = rpiboot::identifyDevice(*summary);
    if (!identity) {
        log_.debug(std::string("ignoring ") + devnode + ": not a boot-mode device");
        return std::nullopt;
    }
    DeviceInfo info;
    info.id = devnode;
    info.port = stringOrEmpty(udev_device_get_sysname(device));
    info.identity = *identity;
    if (summary->serialNumberIndex != 0) {
        info.serial = stringOrEmpty(udev_device_get_sysattr_value(device, "serial"));
    }
    info.source = this;
    return info;
}

void UdevWatcher::onMonitorReadable() {
    // Drain everything pending; the fd is level-triggered in the loop anyway.
    while (true) {
        UdevDevicePtr device(udev_monitor_receive_device(monitor_.get()));
        if (!device) {
            return;
        }
        const std::string action = stringOrEmpty(udev_device_get_action(device.get()));
        if (action == "add") {
            if (auto info = describe(device.get()); info && known_.insert(info->id).second) {
                events_->deviceAdded(*info);
            }
        } else if (action == "remove") {
            const std::string devnode = stringOrEmpty(udev_device_get_devnode(device.get()));
            if (known_.erase(devnode) > 0) {
                events_->deviceRemoved(devnode);
            }
        }
    }
}

OpenedDevice UdevWatcher::open(const DeviceInfo& device) {
    auto transport = rpiboot::LibusbTransport::openNode(*usb_, device.id);
    const auto identity = rpiboot::identifyDevice(transport->summary());
    if (!identity) {
        throw rpiboot::Error(rpiboot::Errc::NotFound,
                             device.id + " is not a Raspberry Pi boot-mode device any more");
    }
    transport->claim(identity->interface);
    return OpenedDevice{std::move(transport), *identity};
}

}  // namespace rpibootd
