#include "board_spec.hpp"

#include <gtest/gtest.h>

#include "rpiboot/core/error.hpp"

namespace usbip {
namespace {

const std::string kHash(64, 'a');

TEST(BoardSpec, ChipProfileWithCountSerialAndExpectation) {
    const auto s = parseBoardSpec("2711:msd*3,serial=1A2B3C4D,expect=failed");
    EXPECT_EQ(s.count, 3u);
    EXPECT_EQ(s.serial, "1a2b3c4d");
    EXPECT_TRUE(s.expectFailure);
    EXPECT_EQ(s.scenario.chip, rpiboot::Chip::Bcm2711);
    EXPECT_EQ(s.scenario.name, "msd-2711");
}

TEST(BoardSpec, UnplugPutsADisconnectFaultOnThatFilesData) {
    const auto spec = parseBoardSpec("2711:msd,unplug=start4.elf@100000");
    const auto s = boardScenario(spec, "00000001", {});
    const auto it = std::find_if(s.steps.begin(), s.steps.end(),
                                 [](const auto& step) { return step.name == "start4.elf"; });
    ASSERT_NE(it, s.steps.end());
    EXPECT_EQ(it->fault.kind, virtualpi::FaultKind::Disconnect);
    EXPECT_EQ(it->fault.at, virtualpi::FaultPoint::Data);
    EXPECT_EQ(it->fault.afterBytes, 100000u);
}

TEST(BoardSpec, UnplugOfTheBootcodeStrikesTheRomUpload) {
    const auto spec = parseBoardSpec("2711:msd,unplug=bootcode4.bin@10");
    const auto s = boardScenario(spec, "00000001", {});
    EXPECT_EQ(s.rom.fault.kind, virtualpi::FaultKind::Disconnect);
    EXPECT_EQ(s.rom.fault.at, virtualpi::FaultPoint::Bootcode);
}

TEST(BoardSpec, UnplugOfAFileTheScenarioNeverReadsIsRefused) {
    const auto spec = parseBoardSpec("2711:msd,unplug=kernel8.img@1");
    EXPECT_THROW(boardScenario(spec, "00000001", {}), rpiboot::Error);
}

TEST(BoardSpec, HashesApplyGlobalThenPerBoard) {
    const auto spec = parseBoardSpec("2711:msd,sha256=start4.elf:" + kHash);
    const auto s = boardScenario(
        spec, "00000001",
        {{"start4.elf", std::string(64, 'b')}, {"bootcode4.bin", std::string(64, 'c')}});
    EXPECT_EQ(s.rom.bootcodeSha256, std::string(64, 'c'));
    for (const auto& step : s.steps) {
        if (step.name == "start4.elf") {
            EXPECT_EQ(step.sha256, kHash);
        }
    }
    EXPECT_EQ(s.serial, "00000001");
}

TEST(BoardSpec, ConfigQuirkReachesTheRomScript) {
    const auto spec = parseBoardSpec("2711:msd,quirk=config");
    EXPECT_TRUE(boardScenario(spec, "00000001", {}).rom.configQuirk);
    EXPECT_FALSE(boardScenario(parseBoardSpec("2711:msd"), "00000001", {}).rom.configQuirk);
}

TEST(BoardSpec, TwoInterface2837AndGadget2712AreKnownProfiles) {
    EXPECT_EQ(parseBoardSpec("2837:msd").scenario.chip, rpiboot::Chip::Bcm2837);
    const auto g = parseBoardSpec("2712:mass-storage-gadget");
    EXPECT_EQ(g.scenario.final.kind, virtualpi::FinalKind::MassStorageGadget);
}

TEST(BoardSpec, MistakesAreRefusedWithTheSpecInTheMessage) {
    for (const char* text :
         {"2711", "2711:nonsense", "9999:msd", "2711:msd*0", "2711:msd,colour=red",
          "2711:msd,serial=xyz", "2711:msd,unplug=start4.elf", "2711:msd*2,port=3",
          "2711:msd,sha256=a:b", "2711:msd,expect=maybe", "2711:msd,quirk=yes"}) {
        try {
            parseBoardSpec(text);
            ADD_FAILURE() << text << " was accepted";
        } catch (const rpiboot::Error& e) {
            EXPECT_EQ(e.code(), rpiboot::Errc::InvalidArgument) << text;
            EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
        }
    }
}

TEST(BoardSpec, SerialsCountUpFromTheBase) {
    EXPECT_EQ(serialPlus("7e570001", 0), "7e570001");
    EXPECT_EQ(serialPlus("7e5700ff", 1), "7e570100");
    EXPECT_EQ(serialPlus("1", 2), "00000003");
    EXPECT_THROW(serialPlus("123456789", 0), rpiboot::Error);
}

}  // namespace
}  // namespace usbip
