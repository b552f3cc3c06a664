// Vhci against a fake sysfs tree laid out like Debian 6.1's vhci-hcd.
#include "vhci.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "rpiboot/core/error.hpp"

namespace usbip {
namespace {

namespace fs = std::filesystem;

const char* const kStatus61 =
    "hub port sta spd dev      sockfd local_busid\n"
    "hs  0000 006 003 00010002 000005 1-1\n"
    "hs  0001 004 000 00000000 000000 0-0\n"
    "hs  0002 004 000 00000000 000000 0-0\n"
    "ss  0003 004 000 00000000 000000 0-0\n"
    "ss  0004 004 000 00000000 000000 0-0\n"
    "ss  0005 004 000 00000000 000000 0-0\n";

void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

std::string read(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

class FakeSysfs : public ::testing::Test {
  protected:
    void SetUp() override {
        dir = fs::temp_directory_path() / ("usbip-vhci-" + std::to_string(::getpid()));
        fs::remove_all(dir);
        const fs::path c0 = dir / "vhci_hcd.0";
        write(c0 / "nports", "12\n");
        write(c0 / "attach", "");
        write(c0 / "detach", "");
        write(c0 / "status", kStatus61);
        write(c0 / "status.1",
              "hub port sta spd dev      sockfd local_busid\n"
              "hs  0006 004 000 00000000 000000 0-0\n"
              "hs  0007 004 000 00000000 000000 0-0\n"
              "hs  0008 004 000 00000000 000000 0-0\n"
              "ss  0009 004 000 00000000 000000 0-0\n"
              "ss  0010 004 000 00000000 000000 0-0\n"
              "ss  0011 004 000 00000000 000000 0-0\n");
        write(c0 / "usb1" / "speed", "480\n");
        write(c0 / "usb2" / "speed", "5000\n");
        write(dir / "vhci_hcd.1" / "usb3" / "speed", "480\n");
        write(dir / "vhci_hcd.1" / "usb4" / "speed", "5000\n");
    }
    void TearDown() override { fs::remove_all(dir); }

    fs::path dir;
};

TEST(VhciStatus, ParsesTheHubColumnAndTheAttachedDevice) {
    const auto ports = parseVhciStatus(kStatus61, 6);
    ASSERT_EQ(ports.size(), 6u);
    EXPECT_EQ(ports[0].state, 6);
    EXPECT_EQ(ports[0].busId, "1-1");
    EXPECT_TRUE(ports[2].highSpeed);
    EXPECT_FALSE(ports[3].highSpeed);
    EXPECT_EQ(ports[3].rootPort, 0u) << "SuperSpeed ports count from 0 on their own hub";
}

TEST(VhciStatus, ParsesTheOlderFormWithoutHubColumn) {
    const auto ports = parseVhciStatus(
        "port sta spd dev      socket           local_busid\n"
        "0000 004 000 00000000 0000000000000000 0-0\n"
        "0001 004 000 00000000 0000000000000000 0-0\n",
        2);
    ASSERT_EQ(ports.size(), 2u);
    EXPECT_TRUE(ports[0].highSpeed);
    EXPECT_FALSE(ports[1].highSpeed);
}

TEST_F(FakeSysfs, FreeHighSpeedPortsSkipUsedAndSuperSpeedPorts) {
    const Vhci v(dir);
    EXPECT_EQ(v.freeHighSpeedPorts(), (std::vector<unsigned>{1, 2, 6, 7, 8}));
}

TEST_F(FakeSysfs, PortPathUsesTheUsb2RootHubOfThePortsController) {
    const Vhci v(dir);
    EXPECT_EQ(v.portPath(2), "1-3");
    EXPECT_EQ(v.portPath(7), "3-2");
}

TEST_F(FakeSysfs, AttachAndDetachWriteTheKernelsLineFormat) {
    const Vhci v(dir);
    v.attach(7, 12, 0x10002, 3);
    EXPECT_EQ(read(dir / "vhci_hcd.0" / "attach"), "7 12 65538 3");
    EXPECT_TRUE(v.detach(7));
    EXPECT_EQ(read(dir / "vhci_hcd.0" / "detach"), "7");
}

TEST_F(FakeSysfs, WaitUntilFreeSeesAFreePortAtOnceAndGivesUpOnABusyOne) {
    const Vhci v(dir);
    EXPECT_TRUE(v.waitUntilFree(1, std::chrono::milliseconds(0)));
    EXPECT_FALSE(v.waitUntilFree(0, std::chrono::milliseconds(20)));
}

TEST(Vhci, MissingControllerSaysTheModuleIsNotLoaded) {
    try {
        Vhci v("/nonexistent-platform");
        FAIL() << "constructed without a controller";
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::NotFound);
        EXPECT_NE(std::string(e.what()).find("vhci-hcd"), std::string::npos);
    }
}

}  // namespace
}  // namespace usbip
