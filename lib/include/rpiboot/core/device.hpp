// Telling boot-mode devices apart (docs/protocol.md §2).
//
// Pure functions from what the USB descriptors say (VID/PID, the index of
// iSerialNumber, the number of interfaces) to which chip is on the bus, which
// stage it is in and which interface/endpoints carry the protocol. No I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rpiboot {

inline constexpr std::uint16_t kBroadcomVendorId = 0x0a5c;

enum class Chip {
    Bcm2835,  // PID 0x2763: BCM2835/2836/2837 ROM (Pi 1, Zero, Zero 2 W, 3A+, CM1, CM3)
    Bcm2837,  // PID 0x2764: BCM2836/2837 form that can show a mass-storage interface too
    Bcm2711,  // PID 0x2711: Pi 4, Pi 400, CM4
    Bcm2712,  // PID 0x2712: Pi 5, CM5
};

enum class BootStage { Rom, SecondStage };

struct UsbDescriptorSummary {
    std::uint16_t vendorId = 0;
    std::uint16_t productId = 0;
    std::uint8_t serialNumberIndex = 0;
    std::uint8_t interfaceCount = 1;
};

struct BulkInterface {
    std::uint8_t interfaceNumber = 0;
    std::uint8_t outEndpoint = 0x01;
    std::uint8_t inEndpoint = 0x82;
};

struct DeviceIdentity {
    Chip chip = Chip::Bcm2835;
    BootStage stage = BootStage::Rom;
    BulkInterface interface;
};

bool isBootDevice(std::uint16_t vendorId, std::uint16_t productId) noexcept;
std::optional<Chip> chipFromProductId(std::uint16_t productId) noexcept;
std::uint16_t productIdOf(Chip chip) noexcept;

// nullopt for anything that is not a Broadcom boot-mode device.
std::optional<DeviceIdentity> identifyDevice(const UsbDescriptorSummary& descriptor) noexcept;

// "BCM2835", "BCM2837", "BCM2711", "BCM2712".
std::string_view chipName(Chip chip) noexcept;
// The chip's number alone: "2835", "2837", "2711", "2712" (what parseChip reads back).
std::string_view chipNumber(Chip chip) noexcept;
// Firmware subfolder: "2710" for the BCM2835 family, "2711", "2712" (docs/protocol.md §6.1).
std::string_view chipFolder(Chip chip) noexcept;
// The second-stage loader the ROM wants: bootcode.bin, bootcode4.bin, bootcode5.bin.
std::string_view bootcodeFileName(Chip chip) noexcept;
bool isBootcodeFileName(std::string_view name) noexcept;
// Accepts "2835", "bcm2835", "2837", "2711", "BCM2712", "2763", "0x2711", ... (case-insensitive).
std::optional<Chip> parseChip(std::string_view text) noexcept;
std::string_view stageName(BootStage stage) noexcept;

}  // namespace rpiboot
