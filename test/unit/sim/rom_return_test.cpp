// Final kind "rom": a board that resets into its boot ROM after a successful
// run (recovery.bin with recovery_reboot=1), and runs its scenario again only
// if a host boots it there, a bounded number of times.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "board_spec.hpp"
#include "rpiboot/core/error.hpp"
#include "tiny_host.hpp"
#include "virtualpi/builtin_scenarios.hpp"
#include "virtualpi/scenario_builder.hpp"
#include "virtualpi/virtual_bus.hpp"

namespace virtualpi {
namespace {

using namespace rpiboot::test;
using rpiboot::Chip;

const Bytes kBootcode = pattern(3000, 7);
const Bytes kImage = pattern(5000, 3);

// A 2711 that takes a loader, asks for one file and ends; back in its ROM
// `returns` times.
Scenario returning(unsigned returns, Timing timing = {}) {
    return ScenarioBuilder(Chip::Bcm2711)
        .serial("5eed0001")
        .file("pieeprom.bin")
        .endWithEmptyName()
        .returnToRomAfterBoot(returns)
        .timing(timing)
        .build();
}

// The next ROM enumeration at `port` other than `after` (a device id).
SimDeviceInfo nextRom(VirtualBus& bus, const std::string& port, std::uint64_t after = 0) {
    auto info = bus.waitForDevice(
        [&](const SimDeviceInfo& d) {
            return d.portPath == port && d.stage == Stage::Rom && d.deviceId > after;
        },
        10s);
    if (!info) {
        throw std::runtime_error("no ROM enumeration at " + port);
    }
    return *info;
}

// Boots the ROM enumeration `rom` and serves its second stage; returns the
// second stage's device id.
std::uint64_t bootAndServe(VirtualBus& bus, const SimDeviceInfo& rom, const Bytes& image = kImage) {
    {
        auto t = bus.open(rom.deviceId);
        EXPECT_EQ(TinyHost(*t).boot(kBootcode), 0u);
    }
    auto second = bus.waitForDevice(
        [&](const SimDeviceInfo& d) {
            return d.portPath == rom.portPath && d.stage == Stage::SecondStage &&
                   d.deviceId > rom.deviceId;
        },
        10s);
    if (!second) {
        throw std::runtime_error("no second stage after the ROM");
    }
    auto t = bus.open(second->deviceId);
    EXPECT_EQ(TinyHost(*t).serve({{"pieeprom.bin", image}}).end, "empty-name");
    return second->deviceId;
}

TEST(VirtualPiRomReturn, ComesBackAsItsRomOnTheSamePortAndWaitsForAHost) {
    VirtualBus bus;
    const std::string port = bus.plug({returning(1), "1-1.2", ""});
    const SimDeviceInfo rom = nextRom(bus, port);
    const std::uint64_t second = bootAndServe(bus, rom);

    const SimDeviceInfo back = nextRom(bus, port, second);
    EXPECT_EQ(back.serial, "5eed0001");
    EXPECT_EQ(back.summary.productId, rom.summary.productId);
    EXPECT_EQ(back.summary.serialNumberIndex, 3);  // the ROM's, not the second stage's
    const auto board = bus.board(port);
    EXPECT_EQ(board->waitForOutcome(10s), Outcome::Succeeded) << board->record().reason;

    // Nobody boots it: it stays in its ROM, booted once.
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(board->stage(), Stage::Rom);
    const BoardRecord r = board->record();
    EXPECT_EQ(r.boots, 1u);
    EXPECT_EQ(r.runs, 1u);
    EXPECT_EQ(r.returnsToRom, 1u);
    EXPECT_EQ(r.enumerations, 3u);
    EXPECT_EQ(r.romAttempts.size(), 1u);
    const nlohmann::json j = recordToJson(r);
    EXPECT_EQ(j.at("boots"), 1);
    EXPECT_EQ(j.at("runs"), 1);
    EXPECT_EQ(j.at("returnsToRom"), 1);
}

TEST(VirtualPiRomReturn, BootedAgainItRunsTheWholeScenarioAgainThenStaysOff) {
    VirtualBus bus;
    const std::string port = bus.plug({returning(1), "", ""});
    const std::uint64_t second = bootAndServe(bus, nextRom(bus, port));
    const SimDeviceInfo back = nextRom(bus, port, second);
    const std::uint64_t again = bootAndServe(bus, back);

    const auto board = bus.board(port);
    // No return left: off the bus for good.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    const auto noReturnLeft = [&] {
        const BoardRecord r = board->record();
        return !r.log.empty() &&
               r.log.back().find("no return to the ROM left") != std::string::npos;
    };
    while (!noReturnLeft()) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline);
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(board->stage(), Stage::Off);
    EXPECT_FALSE(bus.deviceAt(port).has_value());
    EXPECT_FALSE(
        bus.waitForDevice([&](const SimDeviceInfo& d) { return d.deviceId > again; }, 100ms));
    const BoardRecord r = board->record();
    EXPECT_EQ(r.outcome, Outcome::Succeeded) << r.reason;
    EXPECT_EQ(r.boots, 2u);
    EXPECT_EQ(r.runs, 2u);
    EXPECT_EQ(r.returnsToRom, 1u);
    EXPECT_EQ(r.romAttempts.size(), 2u);
    ASSERT_EQ(r.files.size(), 2u);  // the file was asked for again
    EXPECT_EQ(r.files[1].name, "pieeprom.bin");
    EXPECT_TRUE(r.files[1].complete);
}

TEST(VirtualPiRomReturn, ReturnsAreBoundedForAHostThatBootsItEveryTime) {
    VirtualBus bus;
    const std::string port = bus.plug({returning(2), "", ""});
    std::uint64_t last = 0;
    for (int i = 0; i < 3; ++i) {
        last = bootAndServe(bus, nextRom(bus, port, last));
    }
    EXPECT_FALSE(bus.waitForDevice(
        [&](const SimDeviceInfo& d) { return d.portPath == port && d.deviceId > last; }, 300ms));
    const BoardRecord r = bus.board(port)->record();
    EXPECT_EQ(r.boots, 3u);
    EXPECT_EQ(r.runs, 3u);
    EXPECT_EQ(r.returnsToRom, 2u);
    EXPECT_EQ(r.outcome, Outcome::Succeeded) << r.reason;
}

TEST(VirtualPiRomReturn, AReturnedRomIgnoresTheHostTimeout) {
    Timing timing;
    timing.hostTimeout = 50ms;
    VirtualBus bus;
    const std::string port = bus.plug({returning(1, timing), "", ""});
    const std::uint64_t second = bootAndServe(bus, nextRom(bus, port));
    nextRom(bus, port, second);
    std::this_thread::sleep_for(300ms);
    const auto board = bus.board(port);
    EXPECT_EQ(board->stage(), Stage::Rom);
    EXPECT_EQ(board->outcome(), Outcome::Succeeded) << board->record().reason;
}

TEST(VirtualPiRomReturn, AFailedRunAfterAReturnFailsTheBoard) {
    VirtualBus bus;
    const std::string port = bus.plug({returning(1), "", ""});
    const std::uint64_t second = bootAndServe(bus, nextRom(bus, port));
    const SimDeviceInfo back = nextRom(bus, port, second);
    {
        auto t = bus.open(back.deviceId);
        EXPECT_EQ(TinyHost(*t).boot(kBootcode), 0u);
    }
    auto again = bus.waitForDevice(
        [&](const SimDeviceInfo& d) {
            return d.stage == Stage::SecondStage && d.deviceId > back.deviceId;
        },
        10s);
    ASSERT_TRUE(again);
    {
        auto t = bus.open(again->deviceId);
        EXPECT_EQ(TinyHost(*t).serve({}).end, "empty-name");  // pieeprom.bin missing
    }
    const auto board = bus.board(port);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (board->outcome() != Outcome::Failed) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << board->record().reason;
        std::this_thread::sleep_for(10ms);
    }
    const BoardRecord r = board->record();
    EXPECT_NE(r.reason.find("run 2: required file pieeprom.bin is missing"), std::string::npos)
        << r.reason;
    EXPECT_EQ(r.returnsToRom, 1u) << "a failed run does not return";
    EXPECT_EQ(board->stage(), Stage::Off);
}

TEST(VirtualPiRomReturn, AFailedFirstRunDoesNotReturn) {
    VirtualBus bus;
    const std::string port = bus.plug({returning(1), "", ""});
    const SimDeviceInfo rom = nextRom(bus, port);
    {
        auto t = bus.open(rom.deviceId);
        EXPECT_EQ(TinyHost(*t).boot(kBootcode), 0u);
    }
    auto second = bus.waitForDevice(
        [&](const SimDeviceInfo& d) { return d.stage == Stage::SecondStage; }, 10s);
    ASSERT_TRUE(second);
    {
        auto t = bus.open(second->deviceId);
        EXPECT_EQ(TinyHost(*t).serve({}).end, "empty-name");
    }
    const auto board = bus.board(port);
    EXPECT_EQ(board->waitForOutcome(10s), Outcome::Failed);
    EXPECT_FALSE(bus.waitForDevice(
        [&](const SimDeviceInfo& d) { return d.deviceId > second->deviceId; }, 200ms));
    EXPECT_EQ(board->record().returnsToRom, 0u);
    EXPECT_EQ(board->record().boots, 1u);
}

TEST(VirtualPiRomReturn, ScenarioJsonCarriesTheReturns) {
    const Scenario s = parseScenario(R"({"name": "r", "chip": "2712", "steps": ["pieeprom.bin"],
                                         "final": {"kind": "rom", "returns": 3}})");
    EXPECT_EQ(s.final.kind, FinalKind::Rom);
    EXPECT_EQ(s.final.returns, 3u);
    const nlohmann::json j = scenarioToJson(s);
    EXPECT_EQ(j.at("final"), (nlohmann::json{{"kind", "rom"}, {"returns", 3}}));
    const Scenario again = scenarioFromJson(j);
    EXPECT_EQ(again.final.kind, FinalKind::Rom);
    EXPECT_EQ(again.final.returns, 3u);
    EXPECT_EQ(parseScenario(R"({"chip": "2711", "final": {"kind": "rom"}})").final.returns, 1u);
}

TEST(VirtualPiRomReturn, ScenarioJsonRefusesUnboundedOrSenselessReturns) {
    for (const char* text :
         {R"({"chip": "2711", "final": {"kind": "rom", "returns": 0}})",
          R"({"chip": "2711", "final": {"kind": "rom", "returns": 101}})",
          R"({"chip": "2711", "startStage": "final", "final": {"kind": "rom"}})"}) {
        EXPECT_THROW(parseScenario(text), rpiboot::Error) << text;
    }
}

TEST(VirtualPiRomReturn, BoardSpecReturnsMakesTheRecoveryBoardComeBack) {
    const usbip::BoardSpec spec = usbip::parseBoardSpec("2711:recovery,returns=2");
    EXPECT_EQ(spec.scenario.final.kind, FinalKind::Rom);
    EXPECT_EQ(spec.scenario.final.returns, 2u);
    EXPECT_EQ(spec.scenario.startStage, StartStage::Rom);
    for (const char* text :
         {"2711:recovery,returns=0", "2711:recovery,returns=x", "2711:recovery,returns=101",
          "2712:mass-storage-gadget,returns=1", "2712:mass-storage-gadget,start=final,returns=1"}) {
        EXPECT_THROW(usbip::parseBoardSpec(text), rpiboot::Error) << text;
    }
}

}  // namespace
}  // namespace virtualpi
