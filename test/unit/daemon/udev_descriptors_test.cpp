// Reading a device's identity from the sysfs `descriptors` blob, as udev gives it.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "rpiboot/core/device.hpp"
#include "udev_watcher.hpp"

namespace rpibootd {
namespace {

std::vector<std::uint8_t> deviceDescriptor(std::uint8_t serialIndex) {
    return {18, 1, 0x00, 0x02, 0, 0, 0, 64, 0x5c, 0x0a, 0x11, 0x27, 0, 0, 1, 2, serialIndex, 1};
}

void appendConfiguration(std::vector<std::uint8_t>& raw, std::uint16_t totalLength,
                         std::uint8_t numInterfaces) {
    raw.insert(raw.end(),
               {9, 2, static_cast<std::uint8_t>(totalLength & 0xff),
                static_cast<std::uint8_t>(totalLength >> 8), numInterfaces, 1, 0, 0xC0, 0x32});
}

void appendInterface(std::vector<std::uint8_t>& raw, std::uint8_t number, std::uint8_t klass) {
    raw.insert(raw.end(), {9, 4, number, 0, 2, klass, 0, 0, 0});
    raw.insert(raw.end(), {7, 5, 0x01, 2, 0x00, 0x02, 0});
    raw.insert(raw.end(), {7, 5, 0x82, 2, 0x00, 0x02, 0});
}

TEST(UdevDescriptors, RomWithSerialIndexThreeIsTheRomStage) {
    auto raw = deviceDescriptor(3);
    appendConfiguration(raw, 32, 1);
    appendInterface(raw, 0, 0xff);
    const auto s = summaryFromDescriptors(0x0a5c, 0x2711, raw);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->serialNumberIndex, 3);
    EXPECT_EQ(s->interfaceCount, 1);
    const auto id = rpiboot::identifyDevice(*s);
    ASSERT_TRUE(id);
    EXPECT_EQ(id->stage, rpiboot::BootStage::Rom);
}

TEST(UdevDescriptors, RomClaimingTwoInterfacesButDeliveringOneCountsOne) {
    // docs/protocol.md §12.3: header says 55 bytes and 2 interfaces, the ROM
    // returns 32 bytes; the host must use interface 0 / EP 0x01.
    auto raw = deviceDescriptor(3);
    appendConfiguration(raw, 55, 2);
    appendInterface(raw, 0, 0xff);
    const auto s = summaryFromDescriptors(0x0a5c, 0x2711, raw);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->interfaceCount, 1);
    EXPECT_EQ(rpiboot::identifyDevice(*s)->interface.outEndpoint, 0x01);
}

TEST(UdevDescriptors, Bcm2837SecondStageWithTwoInterfacesUsesTheVendorOne) {
    auto raw = deviceDescriptor(1);
    appendConfiguration(raw, 55, 2);
    appendInterface(raw, 0, 0x08);
    appendInterface(raw, 1, 0xff);
    const auto s = summaryFromDescriptors(0x0a5c, 0x2764, raw);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->interfaceCount, 2);
    const auto id = rpiboot::identifyDevice(*s);
    ASSERT_TRUE(id);
    EXPECT_EQ(id->stage, rpiboot::BootStage::SecondStage);
    EXPECT_EQ(id->interface.interfaceNumber, 1);
}

TEST(UdevDescriptors, TruncatedOrMalformedBlobsAreHandled) {
    EXPECT_FALSE(summaryFromDescriptors(0x0a5c, 0x2711, std::vector<std::uint8_t>(10, 0)));
    auto raw = deviceDescriptor(4);
    raw.insert(raw.end(), {0, 2, 0, 0});  // a zero-length descriptor must not loop forever
    const auto s = summaryFromDescriptors(0x0a5c, 0x2711, raw);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->serialNumberIndex, 4);
    EXPECT_EQ(s->interfaceCount, 1);
}

}  // namespace
}  // namespace rpibootd
