// The virtual ROM stage (docs/protocol.md §4) driven by a tiny host over the fake
// transport.
#include <gtest/gtest.h>

#include "tiny_host.hpp"
#include "virtualpi/scenario_builder.hpp"
#include "virtualpi/virtual_bus.hpp"

namespace virtualpi {
namespace {

using namespace rpiboot::test;
using rpiboot::Chip;

const std::string kBootcode4Sha =
    "796487521d9834111bf089bf24528c77d6c6f89a49ab9e89c514d70f16cce694";

SimDeviceInfo waitStage(VirtualBus& bus, const std::string& port, Stage stage) {
    auto info = bus.waitForDevice(
        [&](const SimDeviceInfo& d) { return d.portPath == port && d.stage == stage; }, 10s);
    if (!info) {
        throw std::runtime_error(std::string("no ") + stageName(stage) + " device at " + port);
    }
    return *info;
}

TEST(VirtualPiRom, AcceptsBootcodeAndReturnsAsSecondStage) {
    VirtualBus bus;
    const Scenario s = ScenarioBuilder(Chip::Bcm2711)
                           .serial("af04b2da")
                           .bootcode("bootcode4.bin", kBootcode4Sha)
                           .endWithEmptyName()
                           .build();
    const std::string port = bus.plug({s, "1-1.3", ""});
    const SimDeviceInfo rom = waitStage(bus, port, Stage::Rom);
    EXPECT_EQ(rom.summary.productId, 0x2711);
    EXPECT_EQ(rom.summary.serialNumberIndex, 3);
    EXPECT_EQ(rom.serial, "af04b2da");

    const Bytes bootcode = readFixture("2711/bootcode4.bin");
    ASSERT_EQ(bootcode.size(), 105984u);
    {
        auto t = bus.open(rom.deviceId);
        EXPECT_EQ(TinyHost(*t).boot(bootcode), 0u);
    }
    const SimDeviceInfo second = waitStage(bus, port, Stage::SecondStage);
    EXPECT_EQ(second.summary.serialNumberIndex, 4);
    EXPECT_EQ(second.serial, "af04b2da");
    EXPECT_NE(second.deviceId, rom.deviceId);
    auto t = bus.open(second.deviceId);
    EXPECT_EQ(TinyHost(*t).serve({}).end, "empty-name");

    const auto board = bus.board(port);
    ASSERT_EQ(board->waitForOutcome(10s), Outcome::Succeeded) << board->record().reason;
    const BoardRecord r = board->record();
    ASSERT_EQ(r.romAttempts.size(), 1u);
    EXPECT_TRUE(r.romAttempts[0].accepted);
    EXPECT_EQ(r.romAttempts[0].announcedLength, 105984u);
    EXPECT_EQ(r.romAttempts[0].bootcodeSha256, kBootcode4Sha);
    EXPECT_EQ(r.romAttempts[0].signatureHex, std::string(40, '0'));
    EXPECT_EQ(r.enumerations, 2u);
}

TEST(VirtualPiRom, RejectsBootcodeWhoseLengthDiffersFromTheBootMessage) {
    VirtualBus bus;
    const std::string port = bus.plug({ScenarioBuilder(Chip::Bcm2835).build(), "", ""});
    const SimDeviceInfo rom = waitStage(bus, port, Stage::Rom);
    EXPECT_EQ(rom.summary.serialNumberIndex, 0);
    auto t = bus.open(rom.deviceId);
    TinyHost host(*t);
    const Bytes code = pattern(5000);
    EXPECT_EQ(host.boot(code, 5001), 0xffffffffu);
    EXPECT_EQ(bus.board(port)->stage(), Stage::Rom);
    // The ROM waits for another attempt on the same enumeration.
    EXPECT_EQ(host.boot(code), 0u);
    // No steps: the second stage comes and goes at once.
    EXPECT_EQ(bus.board(port)->waitForOutcome(10s), Outcome::Succeeded);
    const BoardRecord r = bus.board(port)->record();
    EXPECT_EQ(r.enumerations, 2u);
    ASSERT_EQ(r.romAttempts.size(), 2u);
    EXPECT_FALSE(r.romAttempts[0].accepted);
    EXPECT_NE(r.romAttempts[0].reason.find("announced 5001"), std::string::npos);
    EXPECT_TRUE(r.romAttempts[1].accepted);
}

TEST(VirtualPiRom, RejectsBootcodeWithTheWrongHashOrSignature) {
    VirtualBus bus;
    const Bytes signature = pattern(20, 7);
    const std::string port =
        bus.plug({ScenarioBuilder(Chip::Bcm2837)
                      .bootcode("bootcode.bin", std::string(64, 'a'))
                      .bootSignature("0102030405060708090a0b0c0d0e0f1011121314")
                      .build(),
                  "", ""});
    auto t = bus.open(waitStage(bus, port, Stage::Rom).deviceId);
    EXPECT_EQ(TinyHost(*t).boot(pattern(100), 100, signature), 0xffffffffu);
    const BoardRecord r = bus.board(port)->record();
    ASSERT_EQ(r.romAttempts.size(), 1u);
    EXPECT_NE(r.romAttempts[0].reason.find("SHA-256"), std::string::npos);
}

TEST(VirtualPiRom, AnswersTheConfiguredReturnCodesInOrder) {
    VirtualBus bus;
    const std::string port =
        bus.plug({ScenarioBuilder(Chip::Bcm2712).romReturnCodes({5, 0}).build(), "", ""});
    auto t = bus.open(waitStage(bus, port, Stage::Rom).deviceId);
    TinyHost host(*t);
    EXPECT_EQ(host.boot(pattern(64)), 5u);
    EXPECT_EQ(host.boot(pattern(64)), 0u);
    EXPECT_EQ(bus.board(port)->waitForOutcome(10s), Outcome::Succeeded);
    EXPECT_EQ(bus.board(port)->record().romAttempts.size(), 2u);
}

TEST(VirtualPiRom, NaksTheStatusReadUntilItHasAnUpload) {
    VirtualBus bus;
    const std::string port = bus.plug({ScenarioBuilder(Chip::Bcm2711).build(), "", ""});
    auto t = bus.open(waitStage(bus, port, Stage::Rom).deviceId);
    try {
        TinyHost(*t).read(4, 20ms);
        FAIL() << "the ROM answered before anything was uploaded";
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::Timeout);
    }
}

TEST(VirtualPiRom, BootcodeInOddPacketisationIsAccepted) {
    VirtualBus bus;
    const std::string port = bus.plug({ScenarioBuilder(Chip::Bcm2711).build(), "", ""});
    auto t = bus.open(waitStage(bus, port, Stage::Rom).deviceId);
    TinyHost host(*t);
    Bytes message(24, 0);
    const Bytes code = pattern(70001);
    message[0] = static_cast<std::uint8_t>(code.size());
    message[1] = static_cast<std::uint8_t>(code.size() >> 8);
    message[2] = static_cast<std::uint8_t>(code.size() >> 16);
    host.write(message, 5);
    host.write(code, 4097);
    EXPECT_EQ(host.read(4), (Bytes{0, 0, 0, 0}));
}

TEST(VirtualPiRom, DisconnectFaultDuringBootcodeLeavesTheBus) {
    VirtualBus bus;
    const std::string port =
        bus.plug({ScenarioBuilder(Chip::Bcm2711)
                      .romFault({FaultKind::Disconnect, FaultPoint::Bootcode, 40000})
                      .build(),
                  "", ""});
    auto t = bus.open(waitStage(bus, port, Stage::Rom).deviceId);
    try {
        TinyHost(*t).boot(pattern(100000));
        FAIL() << "the upload went through a disconnect";
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::DeviceGone) << e.what();
    }
    EXPECT_THROW(TinyHost(*t).read(4), rpiboot::Error);
    const auto board = bus.board(port);
    EXPECT_EQ(board->waitForOutcome(10s), Outcome::Failed);
    EXPECT_EQ(board->stage(), Stage::Off);
    const BoardRecord r = board->record();
    ASSERT_EQ(r.romAttempts.size(), 1u);
    EXPECT_EQ(r.romAttempts[0].bootcodeLength, 40000u);
    EXPECT_FALSE(r.romAttempts[0].accepted);
}

TEST(VirtualPiRom, StallFaultOnStatusSurfacesAsStall) {
    VirtualBus bus;
    const std::string port =
        bus.plug({ScenarioBuilder(Chip::Bcm2711)
                      .romFault({FaultKind::StallControl, FaultPoint::Status, 0})
                      .build(),
                  "", ""});
    auto t = bus.open(waitStage(bus, port, Stage::Rom).deviceId);
    try {
        TinyHost(*t).boot(pattern(100));
        FAIL();
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::Stall) << e.what();
    }
}

}  // namespace
}  // namespace virtualpi
