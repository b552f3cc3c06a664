#include "device_source.hpp"

#include <cstdio>

#include "rpiboot/core/device.hpp"

namespace rpibootd {

namespace {

constexpr std::uint16_t kBroadcomVendor = 0x0a5c;
constexpr std::uint16_t kGadgetProduct = 0x0104;
constexpr std::uint16_t kFastbootVendor = 0x18d1;
constexpr std::uint16_t kFastbootProduct = 0x4e40;

}  // namespace

UsbDeviceKind classifyUsbDevice(std::uint16_t vendorId, std::uint16_t productId) noexcept {
    if (vendorId == kBroadcomVendor && productId == kGadgetProduct) {
        return UsbDeviceKind::Gadget;
    }
    if (vendorId == kFastbootVendor && productId == kFastbootProduct) {
        return UsbDeviceKind::Fastboot;
    }
    if (vendorId == kBroadcomVendor && !rpiboot::isBootDevice(vendorId, productId)) {
        return UsbDeviceKind::Msd;
    }
    return UsbDeviceKind::Other;
}

std::string_view usbDeviceKindName(UsbDeviceKind kind) noexcept {
    switch (kind) {
        case UsbDeviceKind::Msd:
            return "msd";
        case UsbDeviceKind::Gadget:
            return "gadget";
        case UsbDeviceKind::Fastboot:
            return "fastboot";
        case UsbDeviceKind::Other:
            break;
    }
    return "other";
}

std::string UsbDeviceInfo::describe() const {
    char ids[16];
    std::snprintf(ids, sizeof ids, "%04x:%04x", vendorId, productId);
    std::string text(usbDeviceKindName(kind));
    text += ' ';
    text += ids;
    if (!serial.empty()) {
        text += " serial " + serial;
    }
    return text;
}

}  // namespace rpibootd
