#include "udev_watcher.hpp"

#include <libudev.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <utility>
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

std::string trimmed(const std::string& text) {
    const auto first = text.find_first_not_of(" \t\n");
    if (first == std::string::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(" \t\n") - first + 1);
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
    // Monitor first, then enumerate: a device plugged in between is seen by
    // both, and the `known_` map drops the duplicate.
    monitor_.reset(udev_monitor_new_from_netlink(udev_.get(), "udev"));
    if (!monitor_) {
        throw rpiboot::Error(rpiboot::Errc::Io, "cannot open the udev monitor");
    }
    int r = udev_monitor_filter_add_match_subsystem_devtype(monitor_.get(), "usb", "usb_device");
    if (r >= 0) {
        r = udev_monitor_filter_add_match_subsystem_devtype(monitor_.get(), "block", "disk");
    }
    if (r >= 0) {
        r = udev_monitor_enable_receiving(monitor_.get());
    }
    if (r < 0) {
        throw rpiboot::Error(rpiboot::Errc::Io, std::string("cannot start the udev monitor: ") +
                                                    rpiboot::errnoText(r));
    }
    monitorSource_ = loop_.onReadable(udev_monitor_get_fd(monitor_.get()),
                                      [this](std::uint32_t) { onMonitorReadable(); });

    // USB devices before disks: a disk is reported after the device it hangs under.
    for (const auto& [subsystem, devtype] :
         {std::pair<const char*, const char*>{"usb", "usb_device"}, {"block", "disk"}}) {
        UdevEnumeratePtr scan(udev_enumerate_new(udev_.get()));
        if (!scan) {
            throw rpiboot::Error(rpiboot::Errc::Io, "cannot enumerate devices through udev");
        }
        udev_enumerate_add_match_subsystem(scan.get(), subsystem);
        udev_enumerate_add_match_property(scan.get(), "DEVTYPE", devtype);
        udev_enumerate_scan_devices(scan.get());
        udev_list_entry* entry = nullptr;
        udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(scan.get())) {
            UdevDevicePtr device(
                udev_device_new_from_syspath(udev_.get(), udev_list_entry_get_name(entry)));
            if (device) {
                added(device.get(), true);
            }
        }
    }
}

void UdevWatcher::added(udev_device* device, bool coldplug) {
    const std::string subsystem = stringOrEmpty(udev_device_get_subsystem(device));
    if (subsystem == "block") {
        if (auto disk = describeDisk(device);
            disk && known_.emplace(disk->id, Reported::Disk).second) {
            events_->diskAdded(*disk);
        }
        return;
    }
    if (auto info = describe(device)) {
        if (known_.emplace(info->id, Reported::Boot).second) {
            if (coldplug) {
                log_.debug("found " + info->id + " at start-up", portFields(info->port));
            }
            events_->deviceAdded(*info);
        }
        return;
    }
    if (auto other = describeOther(device);
        other && known_.emplace(other->id, Reported::Other).second) {
        events_->usbDeviceAdded(*other);
    }
}

void UdevWatcher::removed(udev_device* device) {
    const std::string subsystem = stringOrEmpty(udev_device_get_subsystem(device));
    const std::string id = subsystem == "block" ? stringOrEmpty(udev_device_get_syspath(device))
                                                : stringOrEmpty(udev_device_get_devnode(device));
    const auto it = known_.find(id);
    if (it == known_.end()) {
        return;
    }
    const Reported what = it->second;
    known_.erase(it);
    switch (what) {
        case Reported::Boot:
            events_->deviceRemoved(id);
            break;
        case Reported::Other:
            events_->usbDeviceRemoved(id);
            break;
        case Reported::Disk:
            events_->diskRemoved(id);
            break;
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

std::optional<UsbDeviceInfo> UdevWatcher::describeOther(udev_device* device) {
    const auto vid = hexAttribute(device, "idVendor");
    const auto pid = hexAttribute(device, "idProduct");
    const char* devnode = udev_device_get_devnode(device);
    const char* syspath = udev_device_get_syspath(device);
    const std::string port = stringOrEmpty(udev_device_get_sysname(device));
    // Root hubs ("usb1") have no port path.
    if (!vid || !pid || devnode == nullptr || syspath == nullptr ||
        port.find('-') == std::string::npos || rpiboot::isBootDevice(*vid, *pid)) {
        return std::nullopt;
    }
    UsbDeviceInfo info;
    info.id = devnode;
    info.port = port;
    info.vendorId = *vid;
    info.productId = *pid;
    info.serial = stringOrEmpty(udev_device_get_sysattr_value(device, "serial"));
    info.sysfsPath = syspath;
    info.kind = classifyUsbDevice(*vid, *pid);
    return info;
}

std::optional<DiskInfo> UdevWatcher::describeDisk(udev_device* device) {
    const char* devnode = udev_device_get_devnode(device);
    const char* syspath = udev_device_get_syspath(device);
    udev_device* usb = udev_device_get_parent_with_subsystem_devtype(device, "usb", "usb_device");
    if (devnode == nullptr || syspath == nullptr || usb == nullptr) {
        return std::nullopt;  // not a disk on USB
    }
    DiskInfo info;
    info.id = syspath;
    info.port = stringOrEmpty(udev_device_get_sysname(usb));
    info.disk.node = devnode;
    info.disk.sysfsPath = syspath;
    udev_list_entry* link = nullptr;
    udev_list_entry_foreach(link, udev_device_get_devlinks_list_entry(device)) {
        const std::string name = stringOrEmpty(udev_list_entry_get_name(link));
        if (name.rfind("/dev/disk/by-path/", 0) == 0) {
            info.disk.byPath = name;
            break;
        }
    }
    // "size" counts 512-byte sectors whatever the logical block size.
    const std::string sectors = stringOrEmpty(udev_device_get_sysattr_value(device, "size"));
    info.disk.sizeBytes = std::strtoull(sectors.c_str(), nullptr, 10) * 512U;
    // The SCSI model; the mass-storage gadget's inquiry string ("mmcblk0")
    // fills the vendor field first, leaving the model blank.
    std::string model =
        trimmed(stringOrEmpty(udev_device_get_sysattr_value(device, "device/model")));
    if (model.empty()) {
        model = trimmed(stringOrEmpty(udev_device_get_sysattr_value(device, "device/vendor")));
    }
    info.disk.model = model;
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
            added(device.get(), false);
        } else if (action == "remove") {
            removed(device.get());
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
