#include "standard_requests.hpp"

#include <algorithm>

namespace usbip {
namespace {

DescriptorAnswer truncated(std::vector<std::uint8_t> bytes, std::uint16_t wLength) {
    if (bytes.size() > wLength) {
        bytes.resize(wLength);
    }
    return {false, std::move(bytes)};
}

// The device qualifier of a high-speed-only device: the device descriptor's
// version, class and ep0 packet size (USB 2.0 §9.6.2).
std::vector<std::uint8_t> deviceQualifier(const std::vector<std::uint8_t>& device) {
    if (device.size() < 18) {
        return {};
    }
    return {10,         kDescriptorDeviceQualifier,
            device[2],  device[3],
            device[4],  device[5],
            device[6],  device[7],
            device[17], 0};
}

}  // namespace

bool isStandardRequest(const virtualpi::SetupPacket& setup) noexcept {
    return (setup.requestType & kRequestTypeMask) == kRequestTypeStandard;
}

std::optional<DescriptorAnswer> answerGetDescriptor(const virtualpi::DescriptorSet& d,
                                                    const virtualpi::SetupPacket& setup) {
    if (!isStandardRequest(setup) || setup.request != kRequestGetDescriptor || !setup.isIn()) {
        return std::nullopt;
    }
    const auto type = static_cast<std::uint8_t>(setup.value >> 8);
    const auto index = static_cast<std::uint8_t>(setup.value & 0xff);
    switch (type) {
        case virtualpi::kDescriptorDevice:
            return truncated(d.device, setup.length);
        case virtualpi::kDescriptorConfiguration:
            if (index != 0) {
                break;
            }
            // The header carries advertisedTotalLength; a device with the
            // 55/32 quirk returns fewer bytes than it claims.
            return truncated(d.configurationRead(setup.length), setup.length);
        case virtualpi::kDescriptorString: {
            auto bytes = d.stringDescriptor(index);
            if (bytes.empty()) {
                break;
            }
            return truncated(std::move(bytes), setup.length);
        }
        case kDescriptorDeviceQualifier: {
            auto bytes = deviceQualifier(d.device);
            if (bytes.empty()) {
                break;
            }
            return truncated(std::move(bytes), setup.length);
        }
        default:
            break;
    }
    return DescriptorAnswer{true, {}};
}

}  // namespace usbip
