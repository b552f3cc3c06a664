#include "standard_requests.hpp"

#include <gtest/gtest.h>

namespace usbip {
namespace {

using virtualpi::SetupPacket;

SetupPacket get(std::uint8_t type, std::uint8_t index, std::uint16_t length) {
    return {0x80, kRequestGetDescriptor, static_cast<std::uint16_t>((type << 8) | index),
            virtualpi::kLanguageEnglishUs, length};
}

TEST(StandardRequests, ConfigurationHeaderReadGivesNineBytesWithTheTotalLength) {
    const auto d = virtualpi::romDescriptors(rpiboot::Chip::Bcm2711, "1a2b3c4d");
    const auto a = answerGetDescriptor(d, get(virtualpi::kDescriptorConfiguration, 0, 9));
    ASSERT_TRUE(a);
    ASSERT_EQ(a->data.size(), 9u);
    EXPECT_EQ(a->data[2] | (a->data[3] << 8), d.configuration.size());
}

TEST(StandardRequests, RomWithTheQuirkClaims55ButReturns32Bytes) {
    const auto d = virtualpi::romDescriptors(rpiboot::Chip::Bcm2711, "1a2b3c4d", true);
    const auto a = answerGetDescriptor(d, get(virtualpi::kDescriptorConfiguration, 0, 255));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->data.size(), 32u);
    EXPECT_EQ(a->data[2] | (a->data[3] << 8), 55);
}

TEST(StandardRequests, SerialStringIsUtf16OfTheBoardSerial) {
    const auto d = virtualpi::romDescriptors(rpiboot::Chip::Bcm2711, "1a2b3c4d");
    const auto a =
        answerGetDescriptor(d, get(virtualpi::kDescriptorString, d.serialNumberIndex(), 255));
    ASSERT_TRUE(a);
    ASSERT_EQ(a->data.size(), 2u + 16u);
    EXPECT_EQ(a->data[2], '1');
    EXPECT_EQ(a->data[3], 0);
    EXPECT_EQ(a->data[16], 'd');
}

TEST(StandardRequests, LanguageListIsStringZero) {
    const auto d = virtualpi::romDescriptors(rpiboot::Chip::Bcm2711, "1a2b3c4d");
    const auto a = answerGetDescriptor(d, get(virtualpi::kDescriptorString, 0, 255));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->data, (std::vector<std::uint8_t>{4, 3, 0x09, 0x04}));
}

TEST(StandardRequests, DeviceQualifierMirrorsTheDeviceDescriptor) {
    const auto d = virtualpi::romDescriptors(rpiboot::Chip::Bcm2711, "1a2b3c4d");
    const auto a = answerGetDescriptor(d, get(kDescriptorDeviceQualifier, 0, 10));
    ASSERT_TRUE(a);
    ASSERT_EQ(a->data.size(), 10u);
    EXPECT_EQ(a->data[2], d.device[2]);
    EXPECT_EQ(a->data[7], d.device[7]);
    EXPECT_EQ(a->data[8], 1);
}

TEST(StandardRequests, UnknownDescriptorTypesAndIndexesStall) {
    const auto d = virtualpi::romDescriptors(rpiboot::Chip::Bcm2711, "1a2b3c4d");
    EXPECT_TRUE(answerGetDescriptor(d, get(0x0f, 0, 5))->stall);  // BOS
    EXPECT_TRUE(answerGetDescriptor(d, get(virtualpi::kDescriptorConfiguration, 1, 9))->stall);
    EXPECT_TRUE(answerGetDescriptor(d, get(virtualpi::kDescriptorString, 99, 255))->stall);
}

TEST(StandardRequests, OtherRequestsAreLeftToTheBoard) {
    const auto d = virtualpi::romDescriptors(rpiboot::Chip::Bcm2711, "1a2b3c4d");
    EXPECT_FALSE(answerGetDescriptor(d, {0x00, 9, 1, 0, 0}));       // SET_CONFIGURATION
    EXPECT_FALSE(answerGetDescriptor(d, {0x02, 1, 0, 1, 0}));       // CLEAR_FEATURE halt
    EXPECT_FALSE(answerGetDescriptor(d, {0xc0, 6, 0x100, 0, 18}));  // vendor, not standard
}

}  // namespace
}  // namespace usbip
