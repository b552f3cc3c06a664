// Hostile or broken boards, driven through the real engine: every case ends
// with a clear answer or error, nothing outside the firmware root is served,
// and the host never crashes.
#include "rpiboot_test/boot_harness.hpp"
#include "virtualpi/scenario_builder.hpp"

namespace rpiboot::test {
namespace {

using virtualpi::Fault;
using virtualpi::FaultKind;
using virtualpi::FaultPoint;
using virtualpi::Outcome;
using virtualpi::ScenarioBuilder;

class HostileBoard : public ::testing::Test {
  protected:
    HostileBoard() {
        fs::create_directories(root_.path() / "boot");
        fs::create_directories(root_.path() / "secret");
        write("boot/config.txt", "arm_64bit=1\n");
        write("boot/empty.txt", "");
        write("boot/big.bin", std::string(200000, 'x'));
        write("secret/key.pem", "PRIVATE");
        fs::create_symlink("../secret/key.pem", root_.path() / "boot/leak.pem");
        FirmwareSetConfig config;
        config.root = root_.path() / "boot";
        firmware_ = std::make_unique<FirmwareSet>(config, std::make_shared<FileCache>());
    }

    void write(const std::string& rel, const std::string& text) {
        std::ofstream(root_.path() / rel, std::ios::binary) << text;
    }

    // Runs a board that starts in its second stage with `scenario`.
    HostResult serve(virtualpi::Scenario scenario) {
        port_ = bus_.plug({std::move(scenario), "1-2", {}});
        return serveBoard(bus_, port_, *firmware_);
    }
    virtualpi::BoardRecord record() {
        auto board = bus_.board(port_);
        board->waitForOutcome(std::chrono::seconds(10));
        return board->record();
    }

    ScratchDir root_;
    std::unique_ptr<FirmwareSet> firmware_;
    virtualpi::VirtualBus bus_;
    std::string port_;
};

TEST_F(HostileBoard, TraversalAbsoluteAndEscapingSymlinkNamesAreAnsweredAsMissing) {
    auto scenario = ScenarioBuilder(Chip::Bcm2711)
                        .startInSecondStage()
                        .optionalFile("../secret/key.pem")
                        .optionalFile("/etc/passwd")
                        .optionalFile("leak.pem")
                        .optionalFile("sub/../../secret/key.pem")
                        .file("config.txt")
                        .endWithEmptyName()
                        .build();
    HostResult host = serve(scenario);
    EXPECT_EQ(host.error, "");
    ASSERT_TRUE(host.files);
    EXPECT_EQ(host.files->filesServed, 1U);
    const auto r = record();
    EXPECT_EQ(r.outcome, Outcome::Succeeded) << r.reason;
    for (const char* name :
         {"../secret/key.pem", "/etc/passwd", "leak.pem", "sub/../../secret/key.pem"}) {
        const auto* file = r.file(name);
        ASSERT_NE(file, nullptr) << name;
        EXPECT_TRUE(file->missing) << name << " was served";
        EXPECT_EQ(file->receivedBytes, 0U) << name;
    }
    EXPECT_EQ(r.file("config.txt")->sha256, sha256Hex("arm_64bit=1\n"));
}

TEST_F(HostileBoard, NameWithoutNulIsRefusedAndTheSessionGoesOn) {
    auto scenario = ScenarioBuilder(Chip::Bcm2712)
                        .startInSecondStage()
                        .raw(0, "config.txt", 'A')
                        .file("config.txt")
                        .endWithEmptyName()
                        .build();
    HostResult host = serve(scenario);
    EXPECT_EQ(host.error, "");
    const auto r = record();
    EXPECT_EQ(r.outcome, Outcome::Succeeded) << r.reason;
    ASSERT_FALSE(r.requests.empty());
    ASSERT_TRUE(r.requests[0].reply);
    EXPECT_EQ(*r.requests[0].reply, 0U);
}

TEST_F(HostileBoard, UnknownCommandEndsTheSessionWithAProtocolError) {
    auto scenario = ScenarioBuilder(Chip::Bcm2711)
                        .startInSecondStage()
                        .raw(7, "config.txt", 0, virtualpi::RawReply::None)
                        .endWithEmptyName()
                        .build();
    HostResult host = serve(scenario);
    EXPECT_NE(host.error.find("unknown command 7"), std::string::npos) << host.error;
}

TEST_F(HostileBoard, ZeroSizeAndMissingFilesAreAnsweredWithLengthZero) {
    auto scenario = ScenarioBuilder(Chip::Bcm2711)
                        .startInSecondStage()
                        .optionalFile("empty.txt")
                        .optionalFile("nothere.bin")
                        .endWithDone()
                        .build();
    HostResult host = serve(scenario);
    EXPECT_EQ(host.error, "");
    ASSERT_TRUE(host.files);
    EXPECT_EQ(host.files->end, SessionEnd::DoneCommand);
    const auto r = record();
    EXPECT_TRUE(r.file("empty.txt")->missing);
    EXPECT_TRUE(r.file("nothere.bin")->missing);
}

TEST_F(HostileBoard, BoardVanishingMidFileIsReportedAsDeviceGone) {
    Fault fault;
    fault.kind = FaultKind::Disconnect;
    fault.at = FaultPoint::Data;
    fault.afterBytes = 40000;
    auto scenario = ScenarioBuilder(Chip::Bcm2711)
                        .startInSecondStage()
                        .file("big.bin")
                        .withFault(fault)
                        .endWithEmptyName()
                        .build();
    HostResult host = serve(scenario);
    EXPECT_FALSE(host.error.empty());
    const auto r = record();
    EXPECT_EQ(r.outcome, Outcome::Failed);
    const auto* file = r.file("big.bin");
    ASSERT_NE(file, nullptr);
    EXPECT_FALSE(file->complete);
    EXPECT_LT(file->receivedBytes, 200000U);
}

TEST_F(HostileBoard, MetadataIsCollectedFromAHostileBoardWithoutTrustingIt) {
    auto scenario = ScenarioBuilder(Chip::Bcm2712)
                        .startInSecondStage()
                        .metadata("MAC_ADDR", "2c:cf:67:70:76:f3")
                        .metadataC40("FACTORY_UUID", "001000911006186073")
                        .metadataWithoutValue("EEPROM_UPDATE")
                        .metadata("QUOTE", "a\"b")
                        .endWithEmptyName()
                        .build();
    HostResult host = serve(scenario);
    ASSERT_TRUE(host.files) << host.error;
    EXPECT_EQ(host.files->metadata.at("MAC_ADDR"), "2c:cf:67:70:76:f3");
    EXPECT_EQ(host.files->metadata.at("FACTORY_UUID"), "001000911006186073");
    EXPECT_EQ(host.files->metadata.count("EEPROM_UPDATE"), 0U);
    EXPECT_EQ(host.files->metadataErrors.size(), 1U);
    EXPECT_NE(rpiboot::renderMetadataJson(host.files->metadata).find("\"a\\\"b\""),
              std::string::npos);
}

TEST_F(HostileBoard, RomReturnCodeErrorIsReported) {
    auto scenario = ScenarioBuilder(Chip::Bcm2711).romReturnCodes({0x5}).file("config.txt").build();
    write("boot/bootcode4.bin", std::string(1000, 'b'));
    HostResult host = serve(scenario);
    EXPECT_NE(host.error.find("return code 0x5"), std::string::npos) << host.error;
}

}  // namespace
}  // namespace rpiboot::test
