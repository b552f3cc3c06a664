#include "rpiboot/core/device.hpp"

#include <gtest/gtest.h>

namespace rpiboot {
namespace {

TEST(Identify, RomStageIsSerialIndexZeroOrThree) {
    auto rom2835 = identifyDevice({0x0a5c, 0x2763, 0, 1});
    ASSERT_TRUE(rom2835);
    EXPECT_EQ(rom2835->chip, Chip::Bcm2835);
    EXPECT_EQ(rom2835->stage, BootStage::Rom);
    auto rom2711 = identifyDevice({0x0a5c, 0x2711, 3, 1});
    ASSERT_TRUE(rom2711);
    EXPECT_EQ(rom2711->stage, BootStage::Rom);
    EXPECT_EQ(rom2711->chip, Chip::Bcm2711);
}

TEST(Identify, AnyOtherSerialIndexIsSecondStage) {
    for (int index : {1, 2, 4, 5, 255}) {
        auto id = identifyDevice({0x0a5c, 0x2712, static_cast<std::uint8_t>(index), 1});
        ASSERT_TRUE(id);
        EXPECT_EQ(id->stage, BootStage::SecondStage) << index;
    }
}

TEST(Identify, TwoInterfacesUseInterfaceOneWithEndpointsThreeAndFour) {
    auto id = identifyDevice({0x0a5c, 0x2764, 1, 2});
    ASSERT_TRUE(id);
    EXPECT_EQ(id->chip, Chip::Bcm2837);
    EXPECT_EQ(id->interface.interfaceNumber, 1);
    EXPECT_EQ(id->interface.outEndpoint, 0x03);
    EXPECT_EQ(id->interface.inEndpoint, 0x84);
    auto one = identifyDevice({0x0a5c, 0x2764, 1, 1});
    ASSERT_TRUE(one);
    EXPECT_EQ(one->interface.interfaceNumber, 0);
    EXPECT_EQ(one->interface.outEndpoint, 0x01);
}

TEST(Identify, IgnoresOtherDevices) {
    EXPECT_FALSE(identifyDevice({0x0a5c, 0x0104, 3, 1}));  // the gadget a booted board becomes
    EXPECT_FALSE(identifyDevice({0x1d6b, 0x2711, 3, 1}));
    EXPECT_FALSE(isBootDevice(0x0a5c, 0x2765));
    EXPECT_TRUE(isBootDevice(0x0a5c, 0x2712));
}

TEST(Chips, FoldersAndLoaders) {
    EXPECT_EQ(chipFolder(Chip::Bcm2835), "2710");
    EXPECT_EQ(chipFolder(Chip::Bcm2837), "2710");
    EXPECT_EQ(chipFolder(Chip::Bcm2711), "2711");
    EXPECT_EQ(chipFolder(Chip::Bcm2712), "2712");
    EXPECT_EQ(bootcodeFileName(Chip::Bcm2837), "bootcode.bin");
    EXPECT_EQ(bootcodeFileName(Chip::Bcm2711), "bootcode4.bin");
    EXPECT_EQ(bootcodeFileName(Chip::Bcm2712), "bootcode5.bin");
    EXPECT_TRUE(isBootcodeFileName("bootcode5.bin"));
    EXPECT_FALSE(isBootcodeFileName("start4.elf"));
}

TEST(Chips, NumbersReadBackByParseChip) {
    EXPECT_EQ(chipNumber(Chip::Bcm2835), "2835");
    EXPECT_EQ(chipNumber(Chip::Bcm2837), "2837");
    EXPECT_EQ(chipNumber(Chip::Bcm2711), "2711");
    EXPECT_EQ(chipNumber(Chip::Bcm2712), "2712");
    for (Chip chip : {Chip::Bcm2835, Chip::Bcm2837, Chip::Bcm2711, Chip::Bcm2712}) {
        EXPECT_EQ(parseChip(chipNumber(chip)), chip);
        EXPECT_EQ("BCM" + std::string(chipNumber(chip)), chipName(chip));
    }
}

TEST(Chips, ParseAcceptsCommonSpellings) {
    EXPECT_EQ(parseChip("2711"), Chip::Bcm2711);
    EXPECT_EQ(parseChip("BCM2712"), Chip::Bcm2712);
    EXPECT_EQ(parseChip("bcm2837"), Chip::Bcm2837);
    EXPECT_EQ(parseChip("0x2763"), Chip::Bcm2835);
    EXPECT_FALSE(parseChip("2713"));
    EXPECT_FALSE(parseChip(""));
    for (Chip chip : {Chip::Bcm2835, Chip::Bcm2837, Chip::Bcm2711, Chip::Bcm2712}) {
        EXPECT_EQ(chipFromProductId(productIdOf(chip)), chip);
    }
}

}  // namespace
}  // namespace rpiboot
