// Scenario JSON, builder and built-in profiles (docs/protocol.md §7).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "rpiboot/core/error.hpp"
#include "virtualpi/builtin_scenarios.hpp"
#include "virtualpi/scenario_builder.hpp"

namespace virtualpi {
namespace {

using rpiboot::Chip;

std::vector<std::string> names(const Scenario& s) {
    std::vector<std::string> out;
    for (const Step& step : s.steps) {
        out.push_back(std::string(stepKindName(step.kind)) + ":" + step.name +
                      (step.optional ? "?" : ""));
    }
    return out;
}

TEST(VirtualPiScenario, ParsesStepsFaultsTimingAndFinalIdentity) {
    const Scenario s = parseScenario(R"({
        "name": "cm4", "chip": "bcm2711", "serial": "af04b2da",
        "rom": {"sha256": "796487521D9834111bf089bf24528c77d6c6f89a49ab9e89c514d70f16cce694",
                "returnCodes": [5, 0]},
        "steps": [
            "mcb.bin",
            {"kind": "file", "name": "config.txt", "optional": true, "delayMs": 3},
            {"kind": "file", "name": "boot.img", "fault": {"kind": "disconnect", "afterBytes": 100}},
            {"kind": "metadata", "key": "FACTORY_UUID", "value": "001000911006186073", "c40": true},
            {"kind": "raw", "command": 7, "nameHex": "41ff", "pad": 65, "reply": "none"},
            {"kind": "done"}
        ],
        "final": {"kind": "mass-storage-gadget", "disks": ["mmcblk0", "sda"]},
        "timing": {"romResetDelayMs": 10, "hostTimeoutMs": 2000},
        "bulkBytesPerSecond": 40000000
    })");
    EXPECT_EQ(s.chip, Chip::Bcm2711);
    EXPECT_EQ(s.rom.bootcodeName, "bootcode4.bin");
    EXPECT_EQ(*s.rom.bootcodeSha256,
              "796487521d9834111bf089bf24528c77d6c6f89a49ab9e89c514d70f16cce694");
    EXPECT_EQ(s.rom.returnCodes, (std::vector<std::uint32_t>{5, 0}));
    ASSERT_EQ(s.steps.size(), 6u);
    EXPECT_EQ(s.steps[0].name, "mcb.bin");
    EXPECT_TRUE(s.steps[1].optional);
    EXPECT_EQ(s.steps[1].delay.count(), 3);
    EXPECT_EQ(s.steps[2].fault.kind, FaultKind::Disconnect);
    EXPECT_EQ(s.steps[2].fault.at, FaultPoint::Data);
    EXPECT_EQ(s.steps[2].fault.afterBytes, 100u);
    EXPECT_TRUE(s.steps[3].c40);
    EXPECT_EQ(s.steps[4].name, std::string("A\xff"));
    EXPECT_EQ(s.steps[4].pad, 65);
    EXPECT_EQ(s.steps[5].command, kCommandDone);
    EXPECT_EQ(s.steps[5].name, "done");
    EXPECT_EQ(s.final.disks.size(), 2u);
    EXPECT_EQ(s.timing.hostTimeout.count(), 2000);
    EXPECT_EQ(s.bulkBytesPerSecond, 40000000u);
}

TEST(VirtualPiScenario, JsonRoundTripKeepsEverything) {
    const Scenario original = builtinScenario(Chip::Bcm2712, Profile::Recovery);
    const Scenario copy = scenarioFromJson(scenarioToJson(original));
    EXPECT_EQ(scenarioToJson(copy), scenarioToJson(original));
    EXPECT_EQ(names(copy), names(original));
}

TEST(VirtualPiScenario, RejectsUnknownFieldsAndMisplacedFaults) {
    EXPECT_THROW(parseScenario(R"({"chip": "2711", "stpes": []})"), rpiboot::Error);
    EXPECT_THROW(parseScenario(R"({"chip": "2999"})"), rpiboot::Error);
    EXPECT_THROW(parseScenario(R"({"chip": "2711", "steps": [{"name": "a", "sha256": "12"}]})"),
                 rpiboot::Error);
    EXPECT_THROW(parseScenario(R"({"chip": "2711", "rom": {"fault": {"kind": "silence",
                 "at": "request"}}})"),
                 rpiboot::Error);
    EXPECT_THROW(parseScenario(R"({"chip": "2711", "steps": [{"name": "a", "fault":
                 {"kind": "stall-bulk", "at": "reply"}}]})"),
                 rpiboot::Error);
    try {
        parseScenario(R"({"chip": "2711", "steps": [{"kind": "fiel"}]})");
        FAIL();
    } catch (const rpiboot::Error& e) {
        EXPECT_NE(std::string(e.what()).find("steps[0].kind"), std::string::npos) << e.what();
    }
}

TEST(VirtualPiScenario, BuiltinMsdOn2711ProbesOptionalFilesAroundStart4) {
    const Scenario s = builtinScenario(Chip::Bcm2711, Profile::Msd);
    EXPECT_EQ(s.rom.bootcodeName, "bootcode4.bin");
    EXPECT_EQ(names(s),
              (std::vector<std::string>{"file:config.txt?", "file:pieeprom.sig?", "file:start4.elf",
                                        "file:fixup4.dat?", "empty-name:"}));
    EXPECT_EQ(builtinScenario(Chip::Bcm2837, Profile::Msd).rom.bootcodeName, "bootcode.bin");
    EXPECT_THROW(builtinScenario(Chip::Bcm2712, Profile::Msd), rpiboot::Error);
}

TEST(VirtualPiScenario, BuiltinGadgetOn2712InterleavesRp1Firmware) {
    BuiltinOptions o;
    o.secureBoot = true;
    const Scenario s = builtinScenario(Chip::Bcm2712, Profile::MassStorageGadget, o);
    EXPECT_EQ(names(s),
              (std::vector<std::string>{
                  "file:mcb.bin", "file:memsys00.bin", "file:memsys01.bin", "file:rp1c0fw1.bin?",
                  "file:memsys02.bin", "file:rp1c0fw2.bin?", "file:memsys03.bin", "file:bootmain",
                  "file:config.txt", "file:boot.img", "file:boot.sig?", "empty-name:"}));
    EXPECT_EQ(s.final.kind, FinalKind::MassStorageGadget);
    const Scenario cm4 = builtinScenario(Chip::Bcm2711, Profile::MassStorageGadget);
    EXPECT_EQ(cm4.steps.size(), 14u);  // mcb, memsys00..08, bootmain, config, boot.img, end
}

TEST(VirtualPiScenario, BuiltinRecoveryOn2712EndsWithC40FactoryUuid) {
    const Scenario s = builtinScenario(Chip::Bcm2712, Profile::Recovery);
    EXPECT_EQ(s.rom.bootcodeName, "bootcode5.bin");
    EXPECT_EQ(s.steps[1].name, "pieeprom.sig");
    EXPECT_EQ(s.steps[2].name, "pieeprom.bin");
    const Step& uuid = s.steps[s.steps.size() - 2];
    EXPECT_EQ(uuid.name, "FACTORY_UUID");
    EXPECT_TRUE(uuid.c40);
}

TEST(VirtualPiScenario, ExpectedHashesComeFromTheFixtureList) {
    const auto sums = readSha256Sums(std::string(RPIBOOT_FIXTURES_DIR) + "/SHA256SUMS");
    ASSERT_EQ(sums.at("start.elf"),
              "018604971f79ff695d2b13342309e2d7f8b776e6e187d070f4b1d76b96f336df");
    Scenario s = builtinScenario(Chip::Bcm2837, Profile::Msd);
    s.expectHashes(sums);
    EXPECT_EQ(*s.rom.bootcodeSha256, sums.at("bootcode.bin"));
    EXPECT_EQ(*s.steps[0].sha256, sums.at("start.elf"));
}

TEST(VirtualPiScenario, BuilderModifiesTheLastStep) {
    const Scenario s = ScenarioBuilder(Chip::Bcm2711)
                           .file("a")
                           .withFault({FaultKind::StallBulk, FaultPoint::Data, 10})
                           .repeated(3)
                           .endWithDone()
                           .build();
    EXPECT_EQ(s.steps[0].fault.kind, FaultKind::StallBulk);
    EXPECT_EQ(s.steps[0].repeat, 3u);
    EXPECT_EQ(s.steps[1].command, kCommandDone);
}

}  // namespace
}  // namespace virtualpi

namespace virtualpi {
namespace {

TEST(ScenarioSecureBoot, JsonCarriesTheBoardsOtpAndEepromKey) {
    const std::string key(528, 'a');
    const Scenario s =
        parseScenario(R"({"chip": "2712", "secureBoot": {"otpKeyHash": ")" + std::string(64, 'B') +
                      R"(", "eepromPubkey": ")" + key + R"(", "jtagLocked": true}})");
    EXPECT_TRUE(s.secureBoot.locked());
    EXPECT_EQ(s.secureBoot.otpKeyHash, std::string(64, 'b'));
    EXPECT_EQ(s.secureBoot.eepromPubkey, key);
    EXPECT_TRUE(s.secureBoot.jtagLocked);
    EXPECT_FALSE(s.secureBoot.devkeyRevoked);
    const Scenario back = scenarioFromJson(scenarioToJson(s));
    EXPECT_EQ(back.secureBoot.otpKeyHash, s.secureBoot.otpKeyHash);
    EXPECT_EQ(back.secureBoot.eepromPubkey, key);
    EXPECT_TRUE(back.secureBoot.jtagLocked);
    EXPECT_FALSE(parseScenario(R"({"chip": "2711"})").secureBoot.locked());
    EXPECT_THROW(parseScenario(R"({"chip": "2711", "secureBoot": {"eepromPubkey": "abc"}})"),
                 rpiboot::Error);
    EXPECT_THROW(parseScenario(R"({"chip": "2711", "secureBoot": {"otp": "00"}})"), rpiboot::Error);
}

}  // namespace
}  // namespace virtualpi
