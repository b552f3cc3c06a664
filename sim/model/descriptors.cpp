#include "virtualpi/descriptors.hpp"

#include <algorithm>
#include <array>

#include "rpiboot/core/error.hpp"

namespace virtualpi {
namespace {

// Chip facts of docs/protocol.md §2.1, kept apart from the host's tables so
// the model cannot inherit a host bug.
struct ChipFacts {
    std::uint16_t productId;
    bool newRom;  // 2711/2712: ROM serial string at index 3, second stage index 4
};

ChipFacts factsOf(rpiboot::Chip chip) {
    switch (chip) {
        case rpiboot::Chip::Bcm2835:
            return {0x2763, false};
        case rpiboot::Chip::Bcm2837:
            return {0x2764, false};
        case rpiboot::Chip::Bcm2711:
            return {0x2711, true};
        case rpiboot::Chip::Bcm2712:
            return {0x2712, true};
    }
    return {0x2763, false};
}

constexpr std::uint8_t kManufacturerIndex = 1;
constexpr std::uint8_t kProductIndex = 2;
constexpr std::uint8_t kRomSerialIndexNew = 3;
constexpr std::uint8_t kSecondStageSerialIndexOld = 1;
constexpr std::uint8_t kSecondStageSerialIndexNew = 4;
constexpr std::uint16_t kHighSpeedBulkPacket = 512;

void putLe16(std::vector<std::uint8_t>& out, std::uint16_t value) {
    out.push_back(static_cast<std::uint8_t>(value & 0xff));
    out.push_back(static_cast<std::uint8_t>(value >> 8));
}

std::uint16_t le16(const std::vector<std::uint8_t>& bytes, std::size_t at) {
    if (at + 1 >= bytes.size()) {
        return 0;
    }
    return static_cast<std::uint16_t>(bytes[at] | (bytes[at + 1] << 8));
}

struct DeviceFields {
    std::uint16_t vendorId = 0x0a5c;
    std::uint16_t productId = 0;
    std::uint16_t bcdDevice = 0;
    std::uint8_t serialIndex = 0;
};

std::vector<std::uint8_t> deviceDescriptor(const DeviceFields& f) {
    // Fixed size: filled in place rather than grown, which also keeps GCC 12
    // at -O3 from warning about the vector's growth (stringop-overread).
    const auto lo = [](std::uint16_t v) { return static_cast<std::uint8_t>(v & 0xff); };
    const auto hi = [](std::uint16_t v) { return static_cast<std::uint8_t>(v >> 8); };
    const std::array<std::uint8_t, 18> d{18,
                                         kDescriptorDevice,
                                         0x00,
                                         0x02,  // bcdUSB 2.0
                                         0,
                                         0,
                                         0,
                                         64,  // class/subclass/protocol, bMaxPacketSize0
                                         lo(f.vendorId),
                                         hi(f.vendorId),
                                         lo(f.productId),
                                         hi(f.productId),
                                         lo(f.bcdDevice),
                                         hi(f.bcdDevice),
                                         kManufacturerIndex,
                                         kProductIndex,
                                         f.serialIndex,
                                         1};
    return {d.begin(), d.end()};
}

struct InterfaceFields {
    std::uint8_t number = 0;
    std::uint8_t cls = 0xff;
    std::uint8_t subclass = 0;
    std::uint8_t protocol = 0;
    // In the order they appear.
    std::vector<std::uint8_t> endpoints;
};

void appendInterface(std::vector<std::uint8_t>& out, const InterfaceFields& i) {
    out.insert(out.end(),
               {9, kDescriptorInterface, i.number, 0, static_cast<std::uint8_t>(i.endpoints.size()),
                i.cls, i.subclass, i.protocol, 0});
    for (std::uint8_t address : i.endpoints) {
        out.insert(out.end(), {7, kDescriptorEndpoint, address, 0x02});  // bulk
        putLe16(out, kHighSpeedBulkPacket);
        out.push_back(0);  // bInterval
    }
}

struct ConfigFields {
    std::uint8_t configurationString = 0;
    std::uint8_t attributes = 0xC0;  // self-powered (docs/protocol.md §12.1)
    std::uint8_t maxPower = 0x32;    // 100 mA
};

// Builds the configuration; `declared` overrides wTotalLength/bNumInterfaces
// of the header (for the ROM quirk).
std::vector<std::uint8_t> configuration(const ConfigFields& c,
                                        const std::vector<InterfaceFields>& interfaces,
                                        std::uint16_t declaredLength = 0,
                                        std::uint8_t declaredInterfaces = 0) {
    std::vector<std::uint8_t> body;
    for (const auto& i : interfaces) {
        appendInterface(body, i);
    }
    const auto total = static_cast<std::uint16_t>(9 + body.size());
    std::vector<std::uint8_t> out{9, kDescriptorConfiguration};
    putLe16(out, declaredLength != 0 ? declaredLength : total);
    out.push_back(declaredInterfaces != 0 ? declaredInterfaces
                                          : static_cast<std::uint8_t>(interfaces.size()));
    out.insert(out.end(), {1, c.configurationString, c.attributes, c.maxPower});
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

InterfaceFields vendorInterface(std::uint8_t number, std::uint8_t out, std::uint8_t in) {
    return {number, 0xff, 0, 0, {out, in}};
}

DescriptorSet finish(std::vector<std::uint8_t> device, std::vector<std::uint8_t> config,
                     std::map<std::uint8_t, std::string> strings) {
    DescriptorSet set;
    set.device = std::move(device);
    set.configuration = std::move(config);
    set.advertisedTotalLength = le16(set.configuration, 2);
    set.strings = std::move(strings);
    return set;
}

std::string checkedSerial(std::string_view serial) {
    return serial.empty() ? std::string("00000000") : std::string(serial);
}

}  // namespace

std::vector<std::uint8_t> DescriptorSet::configurationRead(std::uint16_t wLength) const {
    const std::size_t n = std::min<std::size_t>(wLength, configuration.size());
    return {configuration.begin(), configuration.begin() + static_cast<std::ptrdiff_t>(n)};
}

std::vector<std::uint8_t> DescriptorSet::stringDescriptor(std::uint8_t index) const {
    if (index == 0) {
        std::vector<std::uint8_t> d{4, kDescriptorString};
        putLe16(d, languageId);
        return d;
    }
    const auto it = strings.find(index);
    if (it == strings.end()) {
        return {};
    }
    // ASCII text in UTF-16LE; at most 126 characters fit a descriptor.
    const std::size_t chars = std::min<std::size_t>(it->second.size(), 126);
    std::vector<std::uint8_t> d{static_cast<std::uint8_t>(2 + 2 * chars), kDescriptorString};
    for (std::size_t i = 0; i < chars; ++i) {
        d.push_back(static_cast<std::uint8_t>(it->second[i]));
        d.push_back(0);
    }
    return d;
}

std::uint16_t DescriptorSet::vendorId() const {
    return le16(device, 8);
}
std::uint16_t DescriptorSet::productId() const {
    return le16(device, 10);
}
std::uint8_t DescriptorSet::serialNumberIndex() const {
    return device.size() > 16 ? device[16] : 0;
}

namespace {
// Walks the configuration bytes; calls fn(type, offset) for each descriptor.
template <typename Fn>
void walk(const std::vector<std::uint8_t>& config, Fn fn) {
    std::size_t at = 0;
    while (at + 2 <= config.size()) {
        const std::size_t length = config[at];
        if (length < 2 || at + length > config.size()) {
            return;
        }
        fn(config[at + 1], at);
        at += length;
    }
}
}  // namespace

std::uint8_t DescriptorSet::interfaceCount() const {
    std::uint8_t count = 0;
    walk(configuration, [&](std::uint8_t type, std::size_t) {
        if (type == kDescriptorInterface) {
            ++count;
        }
    });
    return count;
}

std::string DescriptorSet::serialString() const {
    const auto it = strings.find(serialNumberIndex());
    return serialNumberIndex() == 0 || it == strings.end() ? std::string() : it->second;
}

rpiboot::UsbDescriptorSummary DescriptorSet::summary() const {
    rpiboot::UsbDescriptorSummary s;
    s.vendorId = vendorId();
    s.productId = productId();
    s.serialNumberIndex = serialNumberIndex();
    s.interfaceCount = interfaceCount();
    return s;
}

std::uint8_t DescriptorSet::vendorBulkOutEndpoint() const {
    std::uint8_t found = 0;
    bool inVendor = false;
    walk(configuration, [&](std::uint8_t type, std::size_t at) {
        if (type == kDescriptorInterface) {
            inVendor = at + 5 < configuration.size() && configuration[at + 5] == 0xff;
        } else if (type == kDescriptorEndpoint && inVendor && found == 0 &&
                   at + 2 < configuration.size() && (configuration[at + 2] & 0x80) == 0) {
            found = configuration[at + 2];
        }
    });
    return found;
}

std::vector<std::uint8_t> DescriptorSet::bulkEndpoints() const {
    std::vector<std::uint8_t> out;
    walk(configuration, [&](std::uint8_t type, std::size_t at) {
        if (type == kDescriptorEndpoint && at + 3 < configuration.size() &&
            (configuration[at + 3] & 0x03) == 0x02) {
            out.push_back(configuration[at + 2]);
        }
    });
    return out;
}

std::vector<DescriptorSet::StorageInterface> DescriptorSet::storageInterfaces() const {
    std::vector<StorageInterface> out;
    bool inStorage = false;
    walk(configuration, [&](std::uint8_t type, std::size_t at) {
        if (type == kDescriptorInterface && at + 5 < configuration.size()) {
            inStorage = configuration[at + 5] == 0x08;
            if (inStorage) {
                out.push_back({configuration[at + 2], 0, 0});
            }
        } else if (type == kDescriptorEndpoint && inStorage && at + 3 < configuration.size() &&
                   (configuration[at + 3] & 0x03) == 0x02) {
            const std::uint8_t address = configuration[at + 2];
            ((address & 0x80) != 0 ? out.back().in : out.back().out) = address;
        }
    });
    return out;
}

std::string romProductString(rpiboot::Chip chip) {
    switch (chip) {
        case rpiboot::Chip::Bcm2835:
            return "BCM2835 Boot";  // inferred: not documented (docs/protocol.md §15)
        case rpiboot::Chip::Bcm2837:
            return "BCM2710 Boot";
        case rpiboot::Chip::Bcm2711:
            return "BCM2711 Boot";
        case rpiboot::Chip::Bcm2712:
            return "BCM2712 Boot";
    }
    return "Boot";
}

DescriptorSet romDescriptors(rpiboot::Chip chip, std::string_view serial, bool configQuirk) {
    const ChipFacts facts = factsOf(chip);
    DeviceFields d;
    d.productId = facts.productId;
    d.serialIndex = facts.newRom ? kRomSerialIndexNew : 0;
    std::map<std::uint8_t, std::string> strings{{kManufacturerIndex, "Broadcom"},
                                                {kProductIndex, romProductString(chip)}};
    if (facts.newRom) {
        strings[kRomSerialIndexNew] = checkedSerial(serial);
    }
    // The quirk: the header announces two interfaces (55 bytes) but only the
    // first 32 bytes exist (docs/protocol.md §12.3).
    auto config = configQuirk ? configuration({}, {vendorInterface(0, 0x01, 0x82)}, 55, 2)
                              : configuration({}, {vendorInterface(0, 0x01, 0x82)});
    return finish(deviceDescriptor(d), std::move(config), std::move(strings));
}

DescriptorSet secondStageDescriptors(rpiboot::Chip chip, std::string_view serial,
                                     const SecondStageShape& shape) {
    const ChipFacts facts = factsOf(chip);
    DeviceFields d;
    d.productId =
        shape.productId >= 0 ? static_cast<std::uint16_t>(shape.productId) : facts.productId;
    d.serialIndex = shape.serialNumberIndex >= 0
                        ? static_cast<std::uint8_t>(shape.serialNumberIndex)
                        : (facts.newRom ? kSecondStageSerialIndexNew : kSecondStageSerialIndexOld);
    const int interfaces =
        shape.interfaceCount >= 0 ? shape.interfaceCount : (chip == rpiboot::Chip::Bcm2837 ? 2 : 1);
    if (interfaces != 1 && interfaces != 2) {
        throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                             "virtual board: a second stage has 1 or 2 interfaces, not " +
                                 std::to_string(interfaces));
    }
    // The 2835/2837 loader reports "BCM2710 Boot" (docs/protocol.md §12.2).
    std::map<std::uint8_t, std::string> strings{
        {kManufacturerIndex, "Broadcom"},
        {kProductIndex, facts.newRom ? romProductString(chip) : std::string("BCM2710 Boot")}};
    // Index 1 or 2 would overwrite the manufacturer/product text: on a real
    // 2835/2837 the serial index 1 simply points at "Broadcom".
    if (d.serialIndex > kProductIndex) {
        strings[d.serialIndex] = checkedSerial(serial);
    }
    std::vector<InterfaceFields> list;
    if (interfaces == 2) {
        // Interface 0 mass storage, interface 1 the vendor interface (docs/protocol.md §12.2).
        // The template's 64-byte packets are raised to 512, the only legal
        // bulk size at high speed.
        list.push_back({0, 0x08, 0x06, 0x50, {0x82, 0x01}});
        list.push_back(vendorInterface(1, 0x03, 0x84));
    } else {
        list.push_back(vendorInterface(0, 0x01, 0x82));
    }
    return finish(deviceDescriptor(d), configuration({}, list), std::move(strings));
}

DescriptorSet massStorageGadgetDescriptors(std::string_view serial16,
                                           const std::vector<std::string>& disks) {
    if (disks.empty() || disks.size() > 15) {
        throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                             "virtual board: the mass-storage gadget needs 1 to 15 disks");
    }
    DeviceFields d;
    d.productId = 0x0104;
    d.bcdDevice = 0x0100;
    d.serialIndex = 3;
    std::vector<InterfaceFields> list;
    for (std::size_t i = 0; i < disks.size(); ++i) {
        const auto n = static_cast<std::uint8_t>(i);
        list.push_back(
            {n,
             0x08,
             0x06,
             0x50,
             {static_cast<std::uint8_t>(0x81 + n), static_cast<std::uint8_t>(0x01 + n)}});
    }
    ConfigFields c;
    c.configurationString = 4;
    c.attributes = 0x80;  // bus-powered
    c.maxPower = 125;     // 250 mA
    return finish(deviceDescriptor(d), configuration(c, list),
                  {{kManufacturerIndex, "Raspberry Pi"},
                   {kProductIndex, "Raspberry Pi multi-function USB device"},
                   {3, std::string(serial16)},
                   {4, "Config 1: ECM network"}});
}

DescriptorSet usbDiskDescriptors(std::uint16_t vendorId, std::uint16_t productId,
                                 std::string_view manufacturer, std::string_view product,
                                 std::string_view serial) {
    DeviceFields d;
    d.vendorId = vendorId;
    d.productId = productId;
    d.bcdDevice = 0x0100;
    d.serialIndex = serial.empty() ? 0 : 3;
    std::map<std::uint8_t, std::string> strings{{kManufacturerIndex, std::string(manufacturer)},
                                                {kProductIndex, std::string(product)}};
    if (!serial.empty()) {
        strings[3] = std::string(serial);
    }
    return finish(deviceDescriptor(d), configuration({}, {{0, 0x08, 0x06, 0x50, {0x81, 0x01}}}),
                  std::move(strings));
}

DescriptorSet customDescriptors(std::uint16_t vendorId, std::uint16_t productId,
                                std::string_view manufacturer, std::string_view product,
                                std::string_view serial) {
    DeviceFields d;
    d.vendorId = vendorId;
    d.productId = productId;
    d.serialIndex = serial.empty() ? 0 : 3;
    std::map<std::uint8_t, std::string> strings{{kManufacturerIndex, std::string(manufacturer)},
                                                {kProductIndex, std::string(product)}};
    if (!serial.empty()) {
        strings[3] = std::string(serial);
    }
    return finish(deviceDescriptor(d), configuration({}, {vendorInterface(0, 0x01, 0x82)}),
                  std::move(strings));
}

}  // namespace virtualpi
