// USB descriptors of the virtual Raspberry Pi, as real byte arrays
// (docs/protocol.md §12, §12.4).
//
// One DescriptorSet describes one enumeration of a board: the ROM, the second
// stage, or the identity the board takes after booting (mass-storage gadget).
// A USB/IP front-end serves these bytes to a real kernel, so they must be
// well-formed; this module only builds and reads descriptors, it never moves
// protocol data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "rpiboot/core/device.hpp"

namespace virtualpi {

inline constexpr std::uint8_t kDescriptorDevice = 1;
inline constexpr std::uint8_t kDescriptorConfiguration = 2;
inline constexpr std::uint8_t kDescriptorString = 3;
inline constexpr std::uint8_t kDescriptorInterface = 4;
inline constexpr std::uint8_t kDescriptorEndpoint = 5;
inline constexpr std::uint16_t kLanguageEnglishUs = 0x0409;

struct DescriptorSet {
    // The 18-byte device descriptor.
    std::vector<std::uint8_t> device;
    // The configuration descriptor with every interface and endpoint, exactly
    // as the device returns it for a full read.
    std::vector<std::uint8_t> configuration;
    // wTotalLength as written in the configuration header. Equals
    // configuration.size() except with the ROM "55/32" quirk (docs/protocol.md §12.3), where the
    // header claims 55 bytes but a full read returns only 32.
    std::uint16_t advertisedTotalLength = 0;
    // String descriptors by index (index 0, the language list, is implicit).
    std::map<std::uint8_t, std::string> strings;
    std::uint16_t languageId = kLanguageEnglishUs;

    // What GET_DESCRIPTOR(CONFIGURATION) returns for a request of wLength
    // bytes: the header with advertisedTotalLength, truncated to what the
    // device holds and to wLength.
    std::vector<std::uint8_t> configurationRead(std::uint16_t wLength) const;
    // The bytes of string descriptor `index` (UTF-16LE; index 0 is the
    // language list). Empty when the device has no such string (it stalls).
    std::vector<std::uint8_t> stringDescriptor(std::uint8_t index) const;

    std::uint16_t vendorId() const;
    std::uint16_t productId() const;
    std::uint8_t serialNumberIndex() const;
    // Interfaces actually present in the returned configuration bytes (what
    // libusb reports as bNumInterfaces, docs/protocol.md §12.3).
    std::uint8_t interfaceCount() const;
    // The string at iSerialNumber, or "" when the index is 0 or unknown.
    std::string serialString() const;
    // vid, pid, serial index, interface count as the host sees them.
    rpiboot::UsbDescriptorSummary summary() const;
    // OUT endpoint of the vendor (class 0xFF) interface: 0x01 with one
    // interface, 0x03 for the two-interface 2837 second stage; 0 if none.
    std::uint8_t vendorBulkOutEndpoint() const;
    // Every bulk endpoint address in the configuration.
    std::vector<std::uint8_t> bulkEndpoints() const;
    // Mass-storage (class 8) interfaces: number, bulk IN and bulk OUT address.
    struct StorageInterface {
        std::uint8_t number = 0;
        std::uint8_t in = 0;
        std::uint8_t out = 0;
    };
    std::vector<StorageInterface> storageInterfaces() const;
};

// Overrides of the second stage's shape; unset fields follow docs/protocol.md §12.2.
struct SecondStageShape {
    int serialNumberIndex = -1;  // -1: 1 on 2835/2837, 4 on 2711/2712
    int interfaceCount = -1;     // -1: 2 on BCM2837 (0x2764), else 1
    int productId = -1;          // -1: same PID as the ROM
};

// ROM: PID per chip, iSerialNumber 0 (2835/2837) or 3 (2711/2712, with
// `serial`, 8 hex digits), one vendor interface with EP 0x01 OUT / 0x82 IN.
// `configQuirk` reproduces the 55/32 configuration length quirk.
DescriptorSet romDescriptors(rpiboot::Chip chip, std::string_view serial, bool configQuirk = false);
// Second stage: iSerialNumber 1 (2835/2837) or 4 (2711/2712). The BCM2837
// form has two interfaces: 0 mass storage (0x82 IN, 0x01 OUT), 1 vendor (0x84
// IN, 0x03 OUT). On 2835/2837 index 1 is also iManufacturer, so the serial
// string reads "Broadcom", as on real boards.
DescriptorSet secondStageDescriptors(rpiboot::Chip chip, std::string_view serial,
                                     const SecondStageShape& shape = {});
// Linux mass-storage gadget of mass-storage-gadget64 (docs/protocol.md §12.4): 0a5c:0104,
// bcdDevice 0x0100, one mass-storage interface per disk, serial 16 hex digits.
DescriptorSet massStorageGadgetDescriptors(std::string_view serial16,
                                           const std::vector<std::string>& disks);
// A plain USB disk (not a Raspberry Pi): one mass-storage interface (class 8,
// SCSI, Bulk-Only) with EP 0x81 IN / 0x01 OUT, self-powered.
DescriptorSet usbDiskDescriptors(std::uint16_t vendorId, std::uint16_t productId,
                                 std::string_view manufacturer, std::string_view product,
                                 std::string_view serial);
// Any other identity: one vendor interface (EP 0x01 OUT / 0x82 IN).
DescriptorSet customDescriptors(std::uint16_t vendorId, std::uint16_t productId,
                                std::string_view manufacturer, std::string_view product,
                                std::string_view serial);

// "BCM2711 Boot", "BCM2712 Boot", "BCM2710 Boot" (0x2764 and the 2835/2837
// second stage), "BCM2835 Boot" (0x2763 ROM, inferred).
std::string romProductString(rpiboot::Chip chip);

}  // namespace virtualpi
