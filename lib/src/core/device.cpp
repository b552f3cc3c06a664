#include "rpiboot/core/device.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace rpiboot {
namespace {

// docs/protocol.md §2.1: boot-mode product IDs.
constexpr std::uint16_t kPid2835 = 0x2763;
constexpr std::uint16_t kPid2837 = 0x2764;
constexpr std::uint16_t kPid2711 = 0x2711;
constexpr std::uint16_t kPid2712 = 0x2712;

// docs/protocol.md §2.2: iSerialNumber index 0 or 3 means the boot ROM.
bool isRomSerialIndex(std::uint8_t index) {
    return index == 0 || index == 3;
}

std::string lowered(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

}  // namespace

std::optional<Chip> chipFromProductId(std::uint16_t productId) noexcept {
    switch (productId) {
        case kPid2835:
            return Chip::Bcm2835;
        case kPid2837:
            return Chip::Bcm2837;
        case kPid2711:
            return Chip::Bcm2711;
        case kPid2712:
            return Chip::Bcm2712;
        default:
            return std::nullopt;
    }
}

std::uint16_t productIdOf(Chip chip) noexcept {
    switch (chip) {
        case Chip::Bcm2835:
            return kPid2835;
        case Chip::Bcm2837:
            return kPid2837;
        case Chip::Bcm2711:
            return kPid2711;
        case Chip::Bcm2712:
            return kPid2712;
    }
    return 0;
}

bool isBootDevice(std::uint16_t vendorId, std::uint16_t productId) noexcept {
    return vendorId == kBroadcomVendorId && chipFromProductId(productId).has_value();
}

std::optional<DeviceIdentity> identifyDevice(const UsbDescriptorSummary& descriptor) noexcept {
    if (descriptor.vendorId != kBroadcomVendorId) {
        return std::nullopt;
    }
    auto chip = chipFromProductId(descriptor.productId);
    if (!chip) {
        return std::nullopt;
    }
    DeviceIdentity identity;
    identity.chip = *chip;
    identity.stage =
        isRomSerialIndex(descriptor.serialNumberIndex) ? BootStage::Rom : BootStage::SecondStage;
    // docs/protocol.md §2.3: with two interfaces the first is mass storage and the
    // protocol runs on interface 1, bulk OUT 3 / IN 4.
    if (descriptor.interfaceCount == 1) {
        identity.interface = BulkInterface{0, 0x01, 0x82};
    } else {
        identity.interface = BulkInterface{1, 0x03, 0x84};
    }
    return identity;
}

std::string_view chipName(Chip chip) noexcept {
    switch (chip) {
        case Chip::Bcm2835:
            return "BCM2835";
        case Chip::Bcm2837:
            return "BCM2837";
        case Chip::Bcm2711:
            return "BCM2711";
        case Chip::Bcm2712:
            return "BCM2712";
    }
    return "unknown";
}

std::string_view chipNumber(Chip chip) noexcept {
    switch (chip) {
        case Chip::Bcm2835:
            return "2835";
        case Chip::Bcm2837:
            return "2837";
        case Chip::Bcm2711:
            return "2711";
        case Chip::Bcm2712:
            return "2712";
    }
    return "?";
}

std::string_view chipFolder(Chip chip) noexcept {
    switch (chip) {
        case Chip::Bcm2835:
        case Chip::Bcm2837:
            return "2710";
        case Chip::Bcm2711:
            return "2711";
        case Chip::Bcm2712:
            return "2712";
    }
    return "2710";
}

std::string_view bootcodeFileName(Chip chip) noexcept {
    switch (chip) {
        case Chip::Bcm2835:
        case Chip::Bcm2837:
            return "bootcode.bin";
        case Chip::Bcm2711:
            return "bootcode4.bin";
        case Chip::Bcm2712:
            return "bootcode5.bin";
    }
    return "bootcode.bin";
}

bool isBootcodeFileName(std::string_view name) noexcept {
    return name == "bootcode.bin" || name == "bootcode4.bin" || name == "bootcode5.bin";
}

std::optional<Chip> parseChip(std::string_view text) noexcept {
    std::string t = lowered(text);
    if (t.rfind("bcm", 0) == 0) {
        t.erase(0, 3);
    } else if (t.rfind("0x", 0) == 0) {
        t.erase(0, 2);
    }
    static constexpr std::array<std::pair<std::string_view, Chip>, 9> kNames{{
        {"2835", Chip::Bcm2835},
        {"2836", Chip::Bcm2837},
        {"2837", Chip::Bcm2837},
        {"2710", Chip::Bcm2837},
        {"2763", Chip::Bcm2835},
        {"2764", Chip::Bcm2837},
        {"2711", Chip::Bcm2711},
        {"2712", Chip::Bcm2712},
        {"2838", Chip::Bcm2711},
    }};
    for (const auto& [name, chip] : kNames) {
        if (t == name) {
            return chip;
        }
    }
    return std::nullopt;
}

std::string_view stageName(BootStage stage) noexcept {
    return stage == BootStage::Rom ? "rom" : "second-stage";
}

}  // namespace rpiboot
