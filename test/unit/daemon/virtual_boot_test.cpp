// The daemon's machinery for real, in-process: sd-event loop, registry,
// worker threads and the virtual bus, booting virtual boards from the real
// fixture firmware. Checks what the boards received, not just what we say.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "active_config.hpp"
#include "board_registry.hpp"
#include "event_loop.hpp"
#include "journal.hpp"
#include "registry_fakes.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/image/eeprom_image.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot_test/daemon_process.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "rpiboot_test/synthetic_eeprom.hpp"
#include "stage_worker.hpp"
#include "virtual/virtual_source.hpp"
#include "virtualpi/builtin_scenarios.hpp"
#include "virtualpi/scenario_builder.hpp"

namespace rpibootd {
namespace {

using std::chrono::milliseconds;

// Guards against a hang only; never part of what a test asserts.
constexpr milliseconds kSafetyLimit{60000};

std::string fixtureHash(const std::string& name) {
    return virtualpi::readSha256Sums(std::filesystem::path(RPIBOOT_FIXTURES_DIR) / "SHA256SUMS")
        .at(name);
}

class VirtualBootTest : public ::testing::Test {
  protected:
    VirtualBootTest() : log_(LogTargets{false, false, 0}) {
        firmware_ = rpiboot::test::prepareFirmware(scratch_.path() / "firmware");
    }

    // Configuration: built-in profiles plus `extraProfiles`, firmware from the tree.
    void configure(const std::string& daemonJson = "",
                   const std::vector<rpiboot::ProfileText>& extraProfiles = {}) {
        rpiboot::DaemonConfig daemon = daemonJson.empty()
                                           ? rpiboot::defaultDaemonConfig()
                                           : rpiboot::parseDaemonConfig(daemonJson, "test.json");
        daemon.profilesDir.clear();
        daemon.firmwareDir = firmware_;
        auto profiles = builtinProfiles();
        profiles.insert(profiles.end(), extraProfiles.begin(), extraProfiles.end());
        config_ = activate(rpiboot::buildConfiguration(std::move(daemon), profiles),
                           std::make_shared<rpiboot::FileCache>(), &log_);
    }

    // Plugs `boards`, runs the loop until `until` holds (and `linger` longer),
    // then shuts down as the daemon does. Returns false when the safety limit
    // stopped it.
    bool run(std::vector<virtualpi::BoardSpec> boards,
             const std::function<bool(const BoardRegistry&)>& until,
             milliseconds linger = milliseconds(0)) {
        if (!config_) {
            configure();
        }
        EventLoop& loop = loop_;
        ThreadStageLauncher launcher(loop, log_);
        registry_.emplace(BoardRegistry::Environment{launcher, loop, log_, [] { return 1U; }},
                          config_);
        registry_->setStatusSink(&sink_);
        std::unique_ptr<Timer> lingering;
        registry_->setCountsListener([&](const RegistryCounts&) {
            if (lingering || !until(*registry_)) {
                return;
            }
            if (linger.count() == 0) {
                loop.exit(0);
            } else {
                lingering = loop.after(linger, [&loop] { loop.exit(0); });
            }
        });
        source_ = std::make_unique<VirtualSource>(loop, log_, std::move(boards));
        source_->start(*registry_);
        const auto safety = loop.after(kSafetyLimit, [&loop] { loop.exit(1); });
        const int status = loop.run();
        // What each board received, before shutdown unplugs them. The host
        // may finish a session a moment before the board's own thread has
        // recorded its verdict, so give each board a moment to settle.
        for (const auto& port : source_->bus()->ports()) {
            auto board = source_->bus()->board(port);
            board->waitForOutcome(std::chrono::seconds(2));
            records_[port] = board->record();
        }
        registry_->shutDown();
        source_->unplugAll();
        launcher.stopAll();
        return status == 0;
    }

    const virtualpi::BoardRecord& record(const std::string& port) const {
        return records_.at(port);
    }

    rpiboot::test::ScratchDir scratch_;
    std::filesystem::path firmware_;
    Logger log_;
    std::shared_ptr<const ActiveConfig> config_;
    rpiboot::test::RecordingSink sink_;
    EventLoop loop_;
    std::optional<BoardRegistry> registry_;
    std::unique_ptr<VirtualSource> source_;
    std::map<std::string, virtualpi::BoardRecord> records_;
};

bool allSettled(const BoardRegistry& r, std::size_t boards) {
    const auto c = r.counts();
    return c.done + c.failed == boards && c.inFlight == 0;
}

TEST_F(VirtualBootTest, BootsEveryChipFromTheRealFirmwareWithTheRightBytes) {
    auto hashes =
        virtualpi::readSha256Sums(std::filesystem::path(RPIBOOT_FIXTURES_DIR) / "SHA256SUMS");
    hashes.erase("config.txt");  // two different files of that name in the fixtures
    auto boards = parseVirtualSpec("2711:2,2712:1,2837:1,2835:1");
    for (auto& b : boards) {
        b.scenario.expectHashes(hashes);
    }
    ASSERT_TRUE(run(boards, [](const BoardRegistry& r) { return allSettled(r, 5); }));
    for (const auto& status : registry_->boards()) {
        EXPECT_EQ(status.stage, kStageDone) << status.port << ": " << status.lastError;
        EXPECT_EQ(status.bootCount, 1U) << status.port;
        EXPECT_GT(status.filesServed, 0U) << status.port;
        const auto& rec = record(status.port);
        EXPECT_EQ(rec.outcome, virtualpi::Outcome::Succeeded) << status.port << ": " << rec.reason;
    }
    const auto& pi4 = record("1-1");
    ASSERT_FALSE(pi4.romAttempts.empty());
    EXPECT_EQ(pi4.romAttempts[0].bootcodeSha256, fixtureHash("bootcode4.bin"));
    ASSERT_NE(pi4.file("start4.elf"), nullptr);
    EXPECT_EQ(pi4.file("start4.elf")->sha256, fixtureHash("start.elf"));
    const auto& pi3 = record("1-4");
    EXPECT_EQ(pi3.romAttempts.at(0).bootcodeSha256, fixtureHash("bootcode.bin"));
    const auto& pi5 = record("1-3");
    ASSERT_NE(pi5.file("boot.img"), nullptr);
    EXPECT_EQ(pi5.file("boot.img")->sha256, fixtureHash("boot-secure-msd.img"));
    EXPECT_EQ(sink_.finished.size(), 5U);
}

TEST_F(VirtualBootTest, EmptyFirmwareDirectoryBootsFromTheEmbeddedSet) {
    firmware_ = scratch_.mkdir("nothing-installed");
    configure();
    ASSERT_TRUE(run(parseVirtualSpec("2711:1,2837:1,2835:1"),
                    [](const BoardRegistry& r) { return allSettled(r, 3); }));
    for (const auto& status : registry_->boards()) {
        EXPECT_EQ(status.stage, kStageDone) << status.port << ": " << status.lastError;
        EXPECT_EQ(record(status.port).outcome, virtualpi::Outcome::Succeeded)
            << status.port << ": " << record(status.port).reason;
    }
    const auto& pi4 = record("1-1");
    ASSERT_FALSE(pi4.romAttempts.empty());
    EXPECT_EQ(pi4.romAttempts[0].bootcodeSha256, fixtureHash("bootcode4.bin"));
    ASSERT_NE(pi4.file("start4.elf"), nullptr);
    EXPECT_EQ(pi4.file("start4.elf")->sha256, fixtureHash("start.elf"));
    for (const char* port : {"1-2", "1-3"}) {
        const auto& pi = record(port);
        ASSERT_FALSE(pi.romAttempts.empty()) << port;
        EXPECT_EQ(pi.romAttempts[0].bootcodeSha256, fixtureHash("bootcode.bin")) << port;
        ASSERT_NE(pi.file("start.elf"), nullptr) << port;
        EXPECT_EQ(pi.file("start.elf")->sha256, fixtureHash("start.elf")) << port;
    }
}

TEST_F(VirtualBootTest, StuckBoardDoesNotDelayTheOthers) {
    // One board goes silent in its second stage (as if flashing for ten
    // minutes); two others must finish meanwhile.
    const auto stuck = virtualpi::ScenarioBuilder(rpiboot::Chip::Bcm2711)
                           .name("stuck")
                           .bootcode("bootcode4.bin")
                           .pause(std::chrono::minutes(10))
                           .endWithEmptyName()
                           .build();
    std::vector<virtualpi::BoardSpec> boards{{stuck, "1-1", {}}};
    for (auto& b : parseVirtualSpec("2711:2")) {
        boards.push_back(b);
    }
    ASSERT_TRUE(run(boards, [](const BoardRegistry& r) { return r.counts().done == 2; }));
    EXPECT_EQ(registry_->board("1-1")->status().stage, kStageServingFiles);
    EXPECT_EQ(registry_->board("1-2")->status().stage, kStageDone);
    EXPECT_EQ(registry_->board("1-3")->status().stage, kStageDone);
    // Shutting down (done by run()) ended the stuck session rather than waiting ten minutes.
}

TEST_F(VirtualBootTest, MetadataGoesIntoStatusAndIntoTheProfilesDirectory) {
    const auto metaDir = scratch_.path() / "metadata";
    configure(R"({"default_profile": "meta"})",
              {{"test:meta", R"({"name": "meta", "firmware": {"root": "msd"},
                                 "metadata": {"dir": ")" +
                                 metaDir.string() + R"("}})"}});
    const auto scenario = virtualpi::ScenarioBuilder(rpiboot::Chip::Bcm2711)
                              .name("meta")
                              .serial("af04b2da")
                              .bootcode("bootcode4.bin")
                              .metadata("MAC_ADDR", "d8:3a:dd:01:02:03")
                              .metadata("EEPROM_VERSION", "1712345678")
                              .file("start4.elf")
                              .endWithEmptyName()
                              .build();
    ASSERT_TRUE(
        run({{scenario, "2-1", {}}}, [](const BoardRegistry& r) { return allSettled(r, 1); }));
    const BoardStatus& s = registry_->board("2-1")->status();
    EXPECT_EQ(s.stage, kStageDone) << s.lastError;
    EXPECT_EQ(s.serial, "af04b2da");
    EXPECT_EQ(s.metadata.at("MAC_ADDR"), "d8:3a:dd:01:02:03");
    EXPECT_EQ(s.metadata.at("EEPROM_VERSION"), "1712345678");
    std::ifstream in(metaDir / "af04b2da.json");
    ASSERT_TRUE(in) << "no metadata file";
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_NE(text.str().find("\"MAC_ADDR\": \"d8:3a:dd:01:02:03\""), std::string::npos)
        << text.str();
}

TEST_F(VirtualBootTest, MissingBootcodeFailsTheBoardWithTheReason) {
    configure(R"({"default_profile": "recovery"})");  // recovery/ has no bootcode4.bin
    ASSERT_TRUE(
        run(parseVirtualSpec("2711:1"), [](const BoardRegistry& r) { return allSettled(r, 1); }));
    const BoardStatus& s = registry_->board("1-1")->status();
    EXPECT_EQ(s.stage, kStageFailed);
    EXPECT_NE(s.lastError.find("bootcode4.bin for BCM2711 not found"), std::string::npos)
        << s.lastError;
}

TEST_F(VirtualBootTest, RecoveryBoardGetsTheEepromBuiltAtLoadAndReportsItsMetadata) {
    // recovery/ holds the base image and boot.conf; "." supplies bootcode4.bin.
    configure(R"({"default_profile": "rec"})",
              {{"test:rec", R"({"name": "rec", "firmware": {"root": "recovery", "fallback": ["."]},
                                "eeprom": {"image": "pieeprom.original.bin",
                                           "config": "boot.conf"}})"}});
    std::ifstream conf(firmware_ / "recovery/boot.conf", std::ios::binary);
    std::stringstream bootConf;
    bootConf << conf.rdbuf();
    const rpiboot::RecoveryEeprom expected =
        rpiboot::buildRecoveryEeprom(rpiboot::test::makeEeprom2711(), "base", bootConf.str(), 0);
    const std::string expectedHash = rpiboot::sha256Hex(expected.image);

    auto boards = parseVirtualSpec("2711:1:recovery");
    boards[0].scenario.expectSha256("pieeprom.bin", expectedHash);
    ASSERT_TRUE(run(boards, [](const BoardRegistry& r) { return allSettled(r, 1); }));
    const BoardStatus& s = registry_->board("1-1")->status();
    EXPECT_EQ(s.stage, kStageDone) << s.lastError;
    const auto& rec = record("1-1");
    EXPECT_EQ(rec.outcome, virtualpi::Outcome::Succeeded) << rec.reason;
    ASSERT_NE(rec.file("pieeprom.bin"), nullptr);
    EXPECT_EQ(rec.file("pieeprom.bin")->hashMatches, std::optional<bool>(true));
    ASSERT_NE(rec.file("pieeprom.sig"), nullptr);
    EXPECT_TRUE(rec.file("pieeprom.sig")->complete);
    // What the board reported lands in its record (the D-Bus Metadata property).
    EXPECT_EQ(s.metadata.at("EEPROM_HASH"), expectedHash);
    EXPECT_EQ(s.metadata.at("EEPROM_UPDATE"), "success");
    EXPECT_EQ(s.metadata.at("MAC_ADDR"), "d8:3a:dd:05:ee:78");
    EXPECT_EQ(s.metadata.count("USER_SERIAL_NUM"), 1U);
}

// A recovery board whose report does not match what was served (another image
// in its EEPROM, or a failed update) ends failed with the reason, not done.
TEST_F(VirtualBootTest, RecoveryBoardReportingAnotherEepromHashOrAFailedUpdateFails) {
    configure(R"({"default_profile": "rec"})",
              {{"test:rec", R"({"name": "rec", "firmware": {"root": "recovery", "fallback": ["."]},
                                "eeprom": {"image": "pieeprom.original.bin",
                                           "config": "boot.conf"}})"}});
    auto boards = parseVirtualSpec("2711:2:recovery");
    for (auto& step : boards[0].scenario.steps) {
        if (step.kind == virtualpi::StepKind::Metadata && step.name == "EEPROM_HASH") {
            step.value = std::string(64, '0');
        }
    }
    for (auto& step : boards[1].scenario.steps) {
        if (step.kind == virtualpi::StepKind::Metadata && step.name == "EEPROM_UPDATE") {
            step.value = "failed";
        }
    }
    ASSERT_TRUE(run(boards, [](const BoardRegistry& r) { return allSettled(r, 2); }));

    const BoardStatus& wrongHash = registry_->board("1-1")->status();
    EXPECT_EQ(wrongHash.stage, kStageFailed);
    EXPECT_NE(wrongHash.lastError.find("EEPROM_HASH"), std::string::npos) << wrongHash.lastError;
    EXPECT_NE(wrongHash.lastError.find("the EEPROM does not hold the image that was served"),
              std::string::npos)
        << wrongHash.lastError;
    EXPECT_EQ(wrongHash.metadata.at("EEPROM_HASH"), std::string(64, '0'));  // still shown

    const BoardStatus& failedUpdate = registry_->board("1-2")->status();
    EXPECT_EQ(failedUpdate.stage, kStageFailed);
    EXPECT_NE(failedUpdate.lastError.find("EEPROM_UPDATE=failed"), std::string::npos)
        << failedUpdate.lastError;
    EXPECT_NE(failedUpdate.lastError.find("the EEPROM was not updated"), std::string::npos)
        << failedUpdate.lastError;
}

// recovery_reboot=1 with the boot jumper still fitted: after flashing, the
// board resets into its ROM on the same port. Under the recovery default
// (after_success "once") it is not flashed again; a profile with "boot-again"
// flashes it a second time, which shows the board would have taken it.
TEST_F(VirtualBootTest, RecoveryBoardBackInItsRomIsFlashedOnlyOnce) {
    const std::string eeprom = R"("firmware": {"root": "recovery", "fallback": ["."]},
                                  "eeprom": {"image": "pieeprom.original.bin",
                                             "config": "boot.conf"}})";
    configure(R"({"rules": [{"port": "1-1", "profile": "rec"},
                            {"port": "1-2", "profile": "again"}]})",
              {{"test:rec", R"({"name": "rec", )" + eeprom},
               {"test:again", R"({"name": "again", "after_success": "boot-again", )" + eeprom}});
    auto boards = parseVirtualSpec("2711:2:recovery");
    for (auto& b : boards) {
        b.scenario.final.kind = virtualpi::FinalKind::Rom;
        b.scenario.final.returns = 1;
    }
    const auto stage = [](const BoardRegistry& r, const std::string& port) {
        const Board* b = r.board(port);
        return b == nullptr ? std::string() : b->status().stage;
    };
    // Once the control board is done a second time, a while longer for the
    // other one to be (not) booted again.
    ASSERT_TRUE(run(
        boards,
        [&](const BoardRegistry& r) {
            return stage(r, "1-1") == kStageDone && stage(r, "1-2") == kStageDone &&
                   r.board("1-2")->status().bootCount == 2U;
        },
        milliseconds(1000)));

    const BoardStatus& once = registry_->board("1-1")->status();
    EXPECT_EQ(once.stage, kStageDone) << once.lastError;
    EXPECT_EQ(once.bootCount, 1U);
    EXPECT_EQ(record("1-1").returnsToRom, 1U) << "the board never came back: nothing was tested";
    EXPECT_EQ(record("1-1").stage, virtualpi::Stage::Rom);
    EXPECT_EQ(record("1-1").boots, 1U) << "flashed again";
    EXPECT_EQ(record("1-1").runs, 1U);

    const BoardStatus& again = registry_->board("1-2")->status();
    EXPECT_EQ(again.stage, kStageDone) << again.lastError;
    EXPECT_EQ(record("1-2").boots, 2U);
    EXPECT_EQ(record("1-2").runs, 2U);
    EXPECT_EQ(record("1-2").outcome, virtualpi::Outcome::Succeeded) << record("1-2").reason;
}

// Secure-boot provisioning through the daemon: the board's own reports decide
// the outcome, and the reason is what D-Bus shows as the board's last error.
TEST_F(VirtualBootTest, ProvisioningSucceedsOnlyWhenTheBoardReportsTheKeyProgrammed) {
    const auto key = scratch_.path() / "private.pem";
    ASSERT_EQ(std::system(("openssl genrsa -out '" + key.string() + "' 2048 2>/dev/null").c_str()),
              0);
    configure(
        R"({"rules": [{"port": "1-1", "profile": "lock"}, {"port": "1-2", "profile": "lock"}]})",
        {{"test:lock", R"({"name": "lock", "firmware": {"root": "recovery", "fallback": ["."]},
                                 "eeprom": {"image": "pieeprom.original.bin", "config": "boot.conf",
                                            "signing_key": ")" +
                           key.string() + R"(", "program_pubkey": true}})"}});
    auto boards = parseVirtualSpec("2711:2:recovery");
    // The second board is locked to another key already.
    boards[1].scenario.secureBoot.otpKeyHash = std::string(64, 'a');
    ASSERT_TRUE(run(boards, [](const BoardRegistry& r) { return allSettled(r, 2); }));

    const BoardStatus& good = registry_->board("1-1")->status();
    EXPECT_EQ(good.stage, kStageDone) << good.lastError;
    EXPECT_EQ(good.metadata.at("SECURE_BOOT_PROVISION"), "success");
    EXPECT_EQ(record("1-1").secureBoot.otpKeyHash, good.metadata.at("CUSTOMER_KEY_HASH"));

    const BoardStatus& bad = registry_->board("1-2")->status();
    EXPECT_EQ(bad.stage, kStageFailed);
    EXPECT_NE(bad.lastError.find("SECURE_BOOT_PROVISION=failed"), std::string::npos)
        << bad.lastError;
    EXPECT_NE(bad.lastError.find("the customer key was not programmed"), std::string::npos)
        << bad.lastError;
    EXPECT_EQ(bad.metadata.at("SECURE_BOOT_PROVISION"), "failed");  // still shown
    EXPECT_EQ(record("1-2").secureBoot.otpKeyHash, std::string(64, 'a'));
}

// pubkey.bin of a PEM key, from `openssl rsa -modulus` (modulus and 65537, little-endian).
std::string pubkeyBinHex(const std::filesystem::path& pem, const std::filesystem::path& scratch) {
    const auto out = scratch / "modulus.txt";
    EXPECT_EQ(std::system(("openssl rsa -in '" + pem.string() + "' -noout -modulus > '" +
                           out.string() + "' 2>/dev/null")
                              .c_str()),
              0);
    std::ifstream in(out);
    std::string line;
    std::getline(in, line);
    line = line.substr(line.find('=') + 1, 512);
    std::string hex;
    for (std::size_t i = line.size(); i >= 2; i -= 2) {
        hex += line.substr(i - 2, 2);
    }
    for (char& c : hex) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return hex + "0100010000000000";
}

// A locked BCM2711 boots the signed gadget only with boot.sig made with the key
// in its OTP; with another key it stops after boot.img and the daemon reports
// the board failed (the reason in its LastError).
TEST_F(VirtualBootTest, LockedBoardBootsTheSignedGadgetOnlyWithItsKey) {
    const auto key = scratch_.path() / "private.pem";
    const auto other = scratch_.path() / "other.pem";
    for (const auto& k : {key, other}) {
        ASSERT_EQ(
            std::system(("openssl genrsa -out '" + k.string() + "' 2048 2>/dev/null").c_str()), 0);
    }
    auto profile = [](const std::string& name, const std::filesystem::path& k) {
        return rpiboot::ProfileText{
            "test:" + name,
            R"({"name": ")" + name +
                R"(", "firmware": {"root": "mass-storage-gadget64", "fallback": ["."]},
                "sign_boot_image": {"image": "boot.img", "signing_key": ")" +
                k.string() + R"("}, "timeouts": {"request_ms": 300}})"};
    };
    configure(
        R"({"rules": [{"port": "1-1", "profile": "right"}, {"port": "1-2", "profile": "wrong"}]})",
        {profile("right", key), profile("wrong", other)});
    virtualpi::BuiltinOptions options;
    options.secureBoot = true;
    auto boards = parseVirtualSpec("2711:2:mass-storage-gadget");
    const std::string pubkey = pubkeyBinHex(key, scratch_.path());
    for (auto& b : boards) {
        b.scenario = virtualpi::builtinScenario(rpiboot::Chip::Bcm2711,
                                                virtualpi::Profile::MassStorageGadget, options);
        b.scenario.secureBoot.eepromPubkey = pubkey;
        b.scenario.secureBoot.otpKeyHash = rpiboot::sha256Hex(rpiboot::fromHex(pubkey, "pubkey"));
    }
    ASSERT_TRUE(run(boards, [](const BoardRegistry& r) { return allSettled(r, 2); }));

    const BoardStatus& good = registry_->board("1-1")->status();
    EXPECT_EQ(good.stage, kStageDone) << good.lastError;
    EXPECT_EQ(record("1-1").outcome, virtualpi::Outcome::Succeeded) << record("1-1").reason;

    const BoardStatus& bad = registry_->board("1-2")->status();
    EXPECT_EQ(bad.stage, kStageFailed);
    EXPECT_FALSE(bad.lastError.empty());
    EXPECT_NE(record("1-2").reason.find("refused boot.img: boot.sig: its rsa2048 signature does "
                                        "not verify"),
              std::string::npos)
        << record("1-2").reason;
}

TEST_F(VirtualBootTest, ProfileInUseWhoseEepromCannotBeBuiltFailsTheLoad) {
    std::filesystem::remove(firmware_ / "recovery/pieeprom.original.bin");
    try {
        configure(R"({"default_profile": "recovery"})");
        ADD_FAILURE() << "a configuration whose default profile cannot build pieeprom.bin loaded";
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::NotFound);
        EXPECT_NE(std::string(e.what()).find("profile recovery: no base EEPROM image at"),
                  std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("built-in:recovery"), std::string::npos) << e.what();
    }
    // Unused, it is only unavailable: the rest of the configuration loads.
    EXPECT_NO_THROW(configure(R"({"default_profile": "msd"})"));
}

TEST_F(VirtualBootTest, ProfileWithoutFirmwareFailsItsBoardsButNotOthers) {
    configure(R"({"rules": [{"port": "1-1", "profile": "nofw"}]})",
              {{"test:nofw", R"({"name": "nofw", "firmware": {"root": "absent"}})"}});
    ASSERT_TRUE(
        run(parseVirtualSpec("2711:2"), [](const BoardRegistry& r) { return allSettled(r, 2); }));
    const BoardStatus& s = registry_->board("1-1")->status();
    EXPECT_EQ(s.stage, kStageFailed);
    EXPECT_NE(s.lastError.find("profile nofw"), std::string::npos) << s.lastError;
    EXPECT_EQ(registry_->board("1-2")->status().stage, kStageDone);
}

// Forwards a source's events to the registry and keeps what it was told.
class ForwardingEvents final : public DeviceEvents {
  public:
    explicit ForwardingEvents(DeviceEvents& to) : to_(to) {}
    void deviceAdded(const DeviceInfo& device) override {
        added.push_back(device);
        to_.deviceAdded(device);
    }
    void deviceRemoved(const std::string& id) override { to_.deviceRemoved(id); }
    std::vector<DeviceInfo> added;

  private:
    DeviceEvents& to_;
};

// The source reports boot-mode devices only, already identified: what a
// board becomes after booting (here the 0a5c:0104 mass-storage gadget) never
// reaches the registry.
TEST_F(VirtualBootTest, DeviceABoardBecomesAfterBootingIsNotReported) {
    configure();
    ThreadStageLauncher launcher(loop_, log_);
    registry_.emplace(BoardRegistry::Environment{launcher, loop_, log_, [] { return 1U; }},
                      config_);
    registry_->setStatusSink(&sink_);
    ForwardingEvents events(*registry_);
    source_ = std::make_unique<VirtualSource>(loop_, log_, parseVirtualSpec("2712"));
    source_->start(events);
    // Poll until the gadget is on the bus and the board's session has ended
    // (the board may re-enumerate before its worker's "finished" reaches the
    // loop: the last reply goes out first), then let the gadget's Added event
    // be handled.
    std::unique_ptr<Timer> poll;
    std::function<void()> check = [&] {
        const auto present = source_->bus()->deviceAt("1-1");
        const auto* board = registry_->board("1-1");
        if (present && present->summary.productId == 0x0104 && board != nullptr &&
            board->status().stage == kStageDone) {
            source_->bus()->flushEvents();
            loop_.post([this] { loop_.exit(0); });
            return;
        }
        poll = loop_.after(milliseconds(10), check);
    };
    poll = loop_.after(milliseconds(10), check);
    const auto safety = loop_.after(kSafetyLimit, [this] { loop_.exit(1); });
    const int status = loop_.run();
    registry_->shutDown();
    source_->unplugAll();
    launcher.stopAll();

    ASSERT_EQ(status, 0) << "the board never became a gadget with its session done";
    ASSERT_EQ(events.added.size(), 2U);
    EXPECT_EQ(events.added[0].identity.stage, rpiboot::BootStage::Rom);
    EXPECT_EQ(events.added[1].identity.stage, rpiboot::BootStage::SecondStage);
    EXPECT_EQ(events.added[1].identity.chip, rpiboot::Chip::Bcm2712);
    EXPECT_EQ(registry_->counts().boards, 1U);
    EXPECT_EQ(registry_->board("1-1")->status().stage, kStageDone);
    EXPECT_EQ(registry_->board("1-1")->status().bootCount, 1U);
}

// What a session posted, and when.
class TimedStageEvents final : public StageEvents {
  public:
    struct Seen {
        std::chrono::steady_clock::time_point at;
        StageProgress progress;
    };
    void stageProgress(std::uint64_t, const StageProgress& p) override {
        seen.push_back({std::chrono::steady_clock::now(), p});
    }
    void stageMetadata(std::uint64_t, const std::string&, const std::string&) override {}
    void stageFinished(std::uint64_t, const StageResult&) override {}
    std::vector<Seen> seen;
};

// Keeps the first device a source reports and stops the loop.
class FirstDevice final : public DeviceEvents {
  public:
    explicit FirstDevice(EventLoop& loop) : loop_(loop) {}
    void deviceAdded(const DeviceInfo& d) override {
        if (!device) {
            device = d;
            loop_.exit(0);
        }
    }
    void deviceRemoved(const std::string&) override {}
    std::optional<DeviceInfo> device;

  private:
    EventLoop& loop_;
};

// The worker is the one place progress is rate-limited: within a file, a
// progress event follows the previous one by at least 100 ms, except the
// last chunk; the file's start and end are always reported.
TEST_F(VirtualBootTest, WorkerReportsProgressAtMostEveryHundredMillisecondsPlusFileBoundaries) {
    configure();
    auto boards = parseVirtualSpec("2711");
    boards[0].scenario.bulkBytesPerSecond = 300'000;  // bootcode4.bin: about 350 ms
    FirstDevice first(loop_);
    source_ = std::make_unique<VirtualSource>(loop_, log_, boards);
    source_->start(first);
    const auto safety = loop_.after(kSafetyLimit, [this] { loop_.exit(1); });
    ASSERT_EQ(loop_.run(), 0);
    ASSERT_TRUE(first.device);

    StageRequest request;
    request.session = 1;
    request.device = *first.device;
    request.stage = first.device->identity.stage;
    request.board =
        rpiboot::BoardContext{rpiboot::Chip::Bcm2711, first.device->port, first.device->serial};
    request.profile =
        config_->select({rpiboot::Chip::Bcm2711, first.device->port, first.device->serial}).profile;
    TimedStageEvents events;
    const auto post = [&events](std::function<void(StageEvents&)> event) { event(events); };
    const StageResult result = runStageSession(request, std::stop_token(), post, log_);
    source_->unplugAll();

    ASSERT_TRUE(result.ok) << result.error;
    const auto& seen = events.seen;
    ASSERT_GE(seen.size(), 3U);
    EXPECT_EQ(seen.front().progress.kind, StageProgress::Kind::Started);
    EXPECT_EQ(seen.back().progress.kind, StageProgress::Kind::Finished);
    EXPECT_EQ(seen.back().progress.sent, 105984U);
    for (std::size_t i = 1; i + 1 < seen.size(); ++i) {
        const auto& p = seen[i].progress;
        EXPECT_EQ(p.kind, StageProgress::Kind::Progress);
        if (p.sent < p.total) {
            EXPECT_GE(seen[i].at - seen[i - 1].at, milliseconds(95))
                << "progress " << i << " (" << p.sent << " of " << p.total << ") came too soon";
        }
    }
}

TEST(EventLoop, WorkPostedFromAnotherThreadRunsOnTheLoop) {
    EventLoop loop;
    std::thread::id ranOn;
    std::thread poster([&] {
        loop.post([&] {
            ranOn = std::this_thread::get_id();
            loop.exit(7);
        });
    });
    EXPECT_EQ(loop.run(), 7);
    poster.join();
    EXPECT_EQ(ranOn, std::this_thread::get_id());
}

// Deferred work (progress) from another thread: the first wakes the loop,
// a burst after it does not, nothing is lost and the order with ordinary
// posts is kept.
TEST(EventLoop, DeferredWorkInABurstWakesTheLoopOnceAndKeepsItsOrder) {
    EventLoop loop;
    std::vector<int> ran;
    std::uint64_t wakeUpsBeforeTheLast = 0;
    std::thread poster([&] {
        for (int i = 0; i < 1000; ++i) {
            loop.postDeferred([&ran, i] { ran.push_back(i); });
        }
        wakeUpsBeforeTheLast = loop.wakeUps();
        loop.post([&] {
            ran.push_back(1000);
            loop.exit(0);
        });
    });
    const auto safety = loop.after(std::chrono::seconds(10), [&] { loop.exit(1); });
    EXPECT_EQ(loop.run(), 0);
    poster.join();
    ASSERT_EQ(ran.size(), 1001U);
    for (int i = 0; i <= 1000; ++i) {
        EXPECT_EQ(ran[static_cast<std::size_t>(i)], i);
    }
    // One wake-up per deferral window (100 ms); 1000 posts take far less.
    EXPECT_LE(wakeUpsBeforeTheLast, 3U);
    EXPECT_GE(wakeUpsBeforeTheLast, 1U);
}

// Deferred work with nothing after it still runs, when its window ends.
TEST(EventLoop, DeferredWorkRunsWhenItsWindowEndsWithoutAnotherPost) {
    EventLoop loop;
    int ran = 0;
    std::thread poster([&] {
        loop.postDeferred([&] { ++ran; });  // wakes the loop, opens a window
        loop.postDeferred([&] { ++ran; });  // waits for the window's end
        loop.postDeferred([&] {
            ++ran;
            loop.exit(0);
        });
    });
    const auto safety = loop.after(std::chrono::seconds(10), [&] { loop.exit(1); });
    EXPECT_EQ(loop.run(), 0) << "deferred work never ran";
    poster.join();
    EXPECT_EQ(ran, 3);
}

TEST(EventLoop, CancelledTimerNeverFiresAndArmedOneDoes) {
    EventLoop loop;
    bool cancelledFired = false;
    auto cancelled = loop.after(milliseconds(0), [&] { cancelledFired = true; });
    cancelled.reset();
    auto armed = loop.after(milliseconds(1), [&] { loop.exit(3); });
    EXPECT_EQ(loop.run(), 3);
    EXPECT_FALSE(cancelledFired);
}

}  // namespace
}  // namespace rpibootd
