// The command line and the --virtual SPEC: what is accepted, what is refused and why.
#include "options.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rpiboot/core/error.hpp"
#include "virtual/virtual_source.hpp"

namespace rpibootd {
namespace {

ParsedOptions parse(std::vector<std::string> args) {
    args.insert(args.begin(), "rpibootd");
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    return parseOptions(static_cast<int>(args.size()), argv.data());
}

TEST(Options, DefaultsServeTheSystemBusWithUdevAndTheDefaultConfig) {
    const ParsedOptions p = parse({});
    ASSERT_EQ(p.error, "");
    EXPECT_EQ(p.options.bus, "system");
    EXPECT_TRUE(p.options.udev);
    EXPECT_EQ(p.options.configFile, kDefaultConfigFile);
    EXPECT_FALSE(p.options.configGiven);
    EXPECT_EQ(p.options.verbosity, 0);
}

TEST(Options, ReadsEveryOption) {
    const ParsedOptions p = parse({"-c", "/tmp/r.json", "--bus", "session", "-vv", "--virtual",
                                   "2711:4", "--virtual", "2712", "--no-udev", "--firmware-dir",
                                   "/fw", "--profiles-dir", "/pr", "--exit-when-done"});
    ASSERT_EQ(p.error, "");
    EXPECT_EQ(p.options.configFile, "/tmp/r.json");
    EXPECT_TRUE(p.options.configGiven);
    EXPECT_EQ(p.options.bus, "session");
    EXPECT_EQ(p.options.verbosity, 2);
    EXPECT_EQ(p.options.virtualSpecs, (std::vector<std::string>{"2711:4", "2712"}));
    EXPECT_FALSE(p.options.udev);
    EXPECT_EQ(p.options.firmwareDir, std::filesystem::path("/fw"));
    EXPECT_EQ(p.options.profilesDir, std::filesystem::path("/pr"));
    EXPECT_TRUE(p.options.exitWhenDone);
}

TEST(Options, BulkTransfersInFlightIsANumberFromOneTo64) {
    EXPECT_FALSE(parse({}).options.bulkTransfersInFlight.has_value());
    EXPECT_EQ(parse({"--bulk-transfers-in-flight", "1"}).options.bulkTransfersInFlight, 1u);
    EXPECT_EQ(parse({"--bulk-transfers-in-flight=64"}).options.bulkTransfersInFlight, 64u);
    for (const char* bad : {"0", "65", "two", "4x", ""}) {
        const ParsedOptions p = parse({"--bulk-transfers-in-flight", bad});
        EXPECT_EQ(p.error, "--bulk-transfers-in-flight needs a number from 1 to 64") << bad;
    }
}

TEST(Options, VirtualControlAloneIsSomethingToBoot) {
    const ParsedOptions p = parse({"--no-udev", "--virtual-control", "/run/rpibootd-virtual"});
    ASSERT_EQ(p.error, "");
    EXPECT_EQ(p.options.virtualControl, std::filesystem::path("/run/rpibootd-virtual"));
    EXPECT_TRUE(p.options.virtualSpecs.empty());
}

TEST(Options, BusAcceptsAnAddress) {
    const ParsedOptions p = parse({"--bus=unix:path=/run/test/bus"});
    ASSERT_EQ(p.error, "");
    EXPECT_EQ(p.options.bus, "unix:path=/run/test/bus");
}

TEST(Options, MistakesAreExplained) {
    EXPECT_EQ(parse({"--frobnicate"}).error, "unknown option --frobnicate");
    EXPECT_EQ(parse({"--config"}).error, "option --config needs a value");
    EXPECT_EQ(parse({"extra"}).error, "unexpected argument \"extra\"");
    EXPECT_EQ(parse({"--no-udev"}).error,
              "--no-udev without --virtual or --virtual-control leaves nothing to boot");
    EXPECT_EQ(parse({"--virtual-control="}).error, "--virtual-control needs a socket path");
    EXPECT_EQ(parse({"--exit-when-done"}).error,
              "--exit-when-done needs --virtual boards to wait for");
}

TEST(VirtualSpec, ChipAndCountGiveThatManyBoardsWithTheChipsUsualProfile) {
    const auto boards = parseVirtualSpec("2711:4,2712:2,2837:2");
    ASSERT_EQ(boards.size(), 8U);
    EXPECT_EQ(boards[0].scenario.chip, rpiboot::Chip::Bcm2711);
    EXPECT_EQ(boards[0].scenario.name, "msd-2711");
    EXPECT_EQ(boards[4].scenario.chip, rpiboot::Chip::Bcm2712);
    EXPECT_EQ(boards[4].scenario.name, "mass-storage-gadget-2712");
    EXPECT_EQ(boards[7].scenario.chip, rpiboot::Chip::Bcm2837);
    EXPECT_TRUE(boards[7].portPath.empty()) << "the bus picks ports";
}

TEST(VirtualSpec, ProfileCanBeNamed) {
    const auto boards = parseVirtualSpec("2711:1:recovery,bcm2711:2:mass-storage-gadget");
    ASSERT_EQ(boards.size(), 3U);
    EXPECT_EQ(boards[0].scenario.name, "recovery-2711");
    EXPECT_EQ(boards[2].scenario.name, "mass-storage-gadget-2711");
}

std::string specError(const std::string& spec) {
    try {
        parseVirtualSpec(spec);
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::InvalidArgument);
        return e.what();
    }
    ADD_FAILURE() << spec << " was accepted";
    return {};
}

TEST(VirtualSpec, MistakesNameTheItem) {
    EXPECT_EQ(specError("2711:4,2799:1"),
              "--virtual item \"2799:1\": \"2799\" is not a chip (2835, 2837, 2711, 2712) or a "
              "scenario file (.json)");
    EXPECT_EQ(specError("2711:0"),
              "--virtual item \"2711:0\": \"0\" is not a board count from 1 to 256");
    EXPECT_EQ(specError("2711:x"),
              "--virtual item \"2711:x\": \"x\" is not a board count from 1 to 256");
    EXPECT_EQ(specError("2711:1:flash"),
              "--virtual item \"2711:1:flash\": \"flash\" is not msd, mass-storage-gadget or "
              "recovery");
    EXPECT_EQ(specError("2711,,2712"), "--virtual item \"\": empty item (stray comma?)");
    EXPECT_NE(specError("2712:1:msd").find("--virtual item \"2712:1:msd\": "), std::string::npos);
    EXPECT_NE(specError("/nonexistent/board.json").find("/nonexistent/board.json"),
              std::string::npos);
}

}  // namespace
}  // namespace rpibootd
