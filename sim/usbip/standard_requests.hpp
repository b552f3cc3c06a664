// USB standard requests (USB 2.0 §9.4) that a device server answers from a
// board's descriptor bytes alone: GET_DESCRIPTOR for the device,
// configuration (partial reads and the ROM's 55/32 length quirk included),
// string and device-qualifier descriptors. Requests that change or read
// device state (SET_CONFIGURATION, SET_INTERFACE, GET_STATUS, CLEAR_FEATURE
// ENDPOINT_HALT, ...) are left to the board so that its halt and
// configuration state stays the one truth. Never blocks, never does I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "virtualpi/descriptors.hpp"
#include "virtualpi/usb_device.hpp"

namespace usbip {

inline constexpr std::uint8_t kRequestTypeMask = 0x60;
inline constexpr std::uint8_t kRequestTypeStandard = 0x00;
inline constexpr std::uint8_t kRequestGetDescriptor = 6;
inline constexpr std::uint8_t kRequestSetAddress = 5;
inline constexpr std::uint8_t kDescriptorDeviceQualifier = 6;

struct DescriptorAnswer {
    bool stall = false;
    std::vector<std::uint8_t> data;  // at most wLength bytes
};

bool isStandardRequest(const virtualpi::SetupPacket& setup) noexcept;

// The answer to a GET_DESCRIPTOR request, or nullopt for any other request
// (which the board answers).
std::optional<DescriptorAnswer> answerGetDescriptor(const virtualpi::DescriptorSet& descriptors,
                                                    const virtualpi::SetupPacket& setup);

}  // namespace usbip
