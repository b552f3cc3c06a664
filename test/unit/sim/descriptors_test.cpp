// Descriptor bytes of the virtual boards against docs/protocol.md §12.
#include "virtualpi/descriptors.hpp"

#include <gtest/gtest.h>

namespace virtualpi {
namespace {

using Bytes = std::vector<std::uint8_t>;
using rpiboot::Chip;

const Bytes kOneVendorInterfaceConfig{
    0x09, 0x02, 0x20, 0x00, 0x01, 0x01, 0x00, 0xC0, 0x32,  // config: 32 bytes, 1 interface
    0x09, 0x04, 0x00, 0x00, 0x02, 0xFF, 0x00, 0x00, 0x00,  // interface 0, vendor class
    0x07, 0x05, 0x01, 0x02, 0x00, 0x02, 0x00,              // EP 0x01 bulk OUT, 512
    0x07, 0x05, 0x82, 0x02, 0x00, 0x02, 0x00};             // EP 0x82 bulk IN, 512

TEST(VirtualPiDescriptors, Bcm2711RomHasSerialIndexThreeAndOneVendorInterface) {
    const DescriptorSet d = romDescriptors(Chip::Bcm2711, "af04b2da");
    EXPECT_EQ(d.device, (Bytes{0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x40, 0x5C, 0x0A, 0x11,
                               0x27, 0x00, 0x00, 0x01, 0x02, 0x03, 0x01}));
    EXPECT_EQ(d.configuration, kOneVendorInterfaceConfig);
    EXPECT_EQ(d.serialString(), "af04b2da");
    EXPECT_EQ(d.strings.at(1), "Broadcom");
    EXPECT_EQ(d.strings.at(2), "BCM2711 Boot");
    EXPECT_EQ(d.vendorBulkOutEndpoint(), 0x01);
}

TEST(VirtualPiDescriptors, Bcm2712SecondStageUsesSerialIndexFourWithTheRomSerial) {
    const DescriptorSet d = secondStageDescriptors(Chip::Bcm2712, "becc6523");
    EXPECT_EQ(d.productId(), 0x2712);
    EXPECT_EQ(d.serialNumberIndex(), 4);
    EXPECT_EQ(d.serialString(), "becc6523");
    EXPECT_EQ(d.strings.at(2), "BCM2712 Boot");
    EXPECT_EQ(d.configuration, kOneVendorInterfaceConfig);
    EXPECT_EQ(d.summary().interfaceCount, 1);
}

TEST(VirtualPiDescriptors, OldRomsHaveNoSerialString) {
    for (Chip chip : {Chip::Bcm2835, Chip::Bcm2837}) {
        const DescriptorSet d = romDescriptors(chip, "12345678");
        EXPECT_EQ(d.serialNumberIndex(), 0);
        EXPECT_EQ(d.serialString(), "");
        EXPECT_EQ(d.configuration, kOneVendorInterfaceConfig);
    }
    EXPECT_EQ(romDescriptors(Chip::Bcm2835, "").productId(), 0x2763);
    EXPECT_EQ(romDescriptors(Chip::Bcm2837, "").productId(), 0x2764);
    EXPECT_EQ(romDescriptors(Chip::Bcm2837, "").strings.at(2), "BCM2710 Boot");
}

TEST(VirtualPiDescriptors, Bcm2837SecondStageHasMassStorageThenVendorInterface) {
    const DescriptorSet d = secondStageDescriptors(Chip::Bcm2837, "00000000");
    EXPECT_EQ(d.productId(), 0x2764);
    EXPECT_EQ(d.serialNumberIndex(), 1);
    // Index 1 is also iManufacturer: the serial string reads "Broadcom".
    EXPECT_EQ(d.serialString(), "Broadcom");
    EXPECT_EQ(d.configuration, (Bytes{0x09, 0x02, 0x37, 0x00, 0x02, 0x01, 0x00, 0xC0, 0x32,  //
                                      0x09, 0x04, 0x00, 0x00, 0x02, 0x08, 0x06, 0x50, 0x00,  //
                                      0x07, 0x05, 0x82, 0x02, 0x00, 0x02, 0x00,              //
                                      0x07, 0x05, 0x01, 0x02, 0x00, 0x02, 0x00,              //
                                      0x09, 0x04, 0x01, 0x00, 0x02, 0xFF, 0x00, 0x00, 0x00,  //
                                      0x07, 0x05, 0x03, 0x02, 0x00, 0x02, 0x00,              //
                                      0x07, 0x05, 0x84, 0x02, 0x00, 0x02, 0x00}));
    EXPECT_EQ(d.summary().interfaceCount, 2);
    EXPECT_EQ(d.vendorBulkOutEndpoint(), 0x03);
}

TEST(VirtualPiDescriptors, Bcm2835SecondStageHasOneInterfaceAndSerialIndexOne) {
    const DescriptorSet d = secondStageDescriptors(Chip::Bcm2835, "");
    EXPECT_EQ(d.productId(), 0x2763);
    EXPECT_EQ(d.serialNumberIndex(), 1);
    EXPECT_EQ(d.interfaceCount(), 1);
}

TEST(VirtualPiDescriptors, RomQuirkAdvertises55BytesButDelivers32) {
    const DescriptorSet d = romDescriptors(Chip::Bcm2711, "af04b2da", true);
    EXPECT_EQ(d.advertisedTotalLength, 55);
    const Bytes header = d.configurationRead(9);
    EXPECT_EQ(header, (Bytes{0x09, 0x02, 0x37, 0x00, 0x02, 0x01, 0x00, 0xC0, 0x32}));
    EXPECT_EQ(d.configurationRead(55).size(), 32u);
    EXPECT_EQ(d.interfaceCount(), 1);  // what libusb reports
}

TEST(VirtualPiDescriptors, StringDescriptorsAreUtf16WithEnglishLanguage) {
    const DescriptorSet d = romDescriptors(Chip::Bcm2712, "becc6523");
    EXPECT_EQ(d.stringDescriptor(0), (Bytes{0x04, 0x03, 0x09, 0x04}));
    EXPECT_EQ(d.stringDescriptor(1),
              (Bytes{18, 0x03, 'B', 0, 'r', 0, 'o', 0, 'a', 0, 'd', 0, 'c', 0, 'o', 0, 'm', 0}));
    EXPECT_TRUE(d.stringDescriptor(9).empty());
}

TEST(VirtualPiDescriptors, MassStorageGadgetIs0104WithOneInterfacePerDisk) {
    const DescriptorSet d =
        massStorageGadgetDescriptors("10000000b29d2da0", {"mmcblk0", "nvme0n1"});
    EXPECT_EQ(d.vendorId(), 0x0a5c);
    EXPECT_EQ(d.productId(), 0x0104);
    EXPECT_EQ(d.device[12], 0x00);  // bcdDevice 0x0100
    EXPECT_EQ(d.device[13], 0x01);
    EXPECT_EQ(d.serialString(), "10000000b29d2da0");
    EXPECT_EQ(d.interfaceCount(), 2);
    EXPECT_EQ(d.configuration[8], 125);       // 250 mA
    EXPECT_EQ(d.vendorBulkOutEndpoint(), 0);  // no boot protocol any more
}

}  // namespace
}  // namespace virtualpi
