// The board record across re-enumerations, driven by fake device, worker and
// timer events: what the registry publishes and which sessions it starts.
#include "board_registry.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "journal.hpp"
#include "registry_fakes.hpp"

namespace rpibootd {
namespace {

using rpiboot::BootStage;
using rpiboot::SessionEnd;
using rpiboot::test::ManualTimers;
using rpiboot::test::RecordingLauncher;
using rpiboot::test::RecordingSink;
using std::chrono::milliseconds;

constexpr milliseconds kReenumerate{10000};
constexpr milliseconds kForget{60000};

DeviceInfo device(const std::string& id, const std::string& port, std::uint16_t pid,
                  std::uint8_t serialIndex, const std::string& serial,
                  std::uint8_t interfaces = 1) {
    DeviceInfo d;
    d.id = id;
    d.port = port;
    d.identity = *rpiboot::identifyDevice({0x0a5c, pid, serialIndex, interfaces});
    d.serial = serial;
    return d;
}

DeviceInfo rom2711(const std::string& id, const std::string& port,
                   const std::string& serial = "af04b2da") {
    return device(id, port, 0x2711, 3, serial);
}
DeviceInfo second2711(const std::string& id, const std::string& port,
                      const std::string& serial = "af04b2da") {
    return device(id, port, 0x2711, 4, serial);
}

StageResult romOk() {
    StageResult r;
    r.stage = BootStage::Rom;
    r.ok = true;
    r.bytesSent = 105984;
    return r;
}

StageResult filesOk(SessionEnd end, std::uint32_t files) {
    StageResult r;
    r.stage = BootStage::SecondStage;
    r.ok = true;
    r.sessionEnd = end;
    r.filesServed = files;
    return r;
}

StageResult failure(BootStage stage, rpiboot::Errc errc, const std::string& why) {
    StageResult r;
    r.stage = stage;
    r.errc = errc;
    r.error = why;
    return r;
}

class RegistryTest : public ::testing::Test {
  protected:
    RegistryTest()
        : log_(LogTargets{false, false, 0}),
          registry_(
              BoardRegistry::Environment{launcher_, timers_, log_, [this] { return ++clock_; }},
              rpiboot::test::testConfig()) {
        registry_.setStatusSink(&sink_);
    }

    std::uint64_t lastSession() const { return launcher_.launched.back().session; }
    const BoardStatus& status(const std::string& port) const {
        return registry_.board(port)->status();
    }
    // Serves `files` files in the session, as the worker would report them.
    void serveFiles(std::uint64_t session, int files) {
        for (int i = 0; i < files; ++i) {
            const std::string name = "file" + std::to_string(i);
            registry_.stageProgress(session, {name, 0, 100, StageProgress::Kind::Started});
            registry_.stageProgress(session, {name, 100, 100, StageProgress::Kind::Finished});
        }
    }
    // ROM at 1-1 accepted the bootcode and left the bus.
    void romStageDone() {
        registry_.deviceAdded(rom2711("rom", "1-1"));
        registry_.stageFinished(lastSession(), romOk());
        registry_.deviceRemoved("rom");
    }

    std::uint64_t clock_ = 1000;
    ManualTimers timers_;
    RecordingLauncher launcher_;
    RecordingSink sink_;
    Logger log_;
    BoardRegistry registry_;
};

TEST_F(RegistryTest, RomDeviceStartsABootcodeSessionWithTheSelectedProfile) {
    registry_.deviceAdded(rom2711("rom", "1-1"));
    ASSERT_EQ(launcher_.launched.size(), 1U);
    const StageRequest& r = launcher_.launched[0];
    EXPECT_EQ(r.stage, BootStage::Rom);
    EXPECT_EQ(r.device.id, "rom");
    EXPECT_EQ(r.board.chip, rpiboot::Chip::Bcm2711);
    EXPECT_EQ(r.board.portPath, "1-1");
    EXPECT_EQ(r.board.serial, "af04b2da");
    EXPECT_EQ(r.profile->profile.name, "msd");
    EXPECT_EQ(sink_.events, (std::vector<std::string>{"added 1-1 sending-bootcode"}));
    const BoardStatus& s = status("1-1");
    EXPECT_EQ(s.chip, "BCM2711");
    EXPECT_EQ(s.serial, "af04b2da");
    EXPECT_EQ(s.profile, "msd");
    EXPECT_EQ(s.bootCount, 1U);
    EXPECT_NE(s.startedUsec, 0U);
}

TEST_F(RegistryTest, Bcm2712GetsTheGadgetProfileByTheBuiltInRule) {
    registry_.deviceAdded(device("rom", "2-3", 0x2712, 3, "becc6523"));
    ASSERT_EQ(launcher_.launched.size(), 1U);
    EXPECT_EQ(launcher_.launched[0].profile->profile.name, "mass-storage-gadget");
    EXPECT_EQ(status("2-3").profile, "mass-storage-gadget");
}

TEST_F(RegistryTest, AcceptedBootcodeWaitsForTheBoardWithATimeout) {
    registry_.deviceAdded(rom2711("rom", "1-1"));
    registry_.stageFinished(lastSession(), romOk());
    EXPECT_EQ(status("1-1").stage, kStageWaiting);
    EXPECT_EQ(timers_.armed(), (std::vector<milliseconds>{kReenumerate}));
    EXPECT_TRUE(launcher_.reaped.count(launcher_.launched[0].session));
    // The ROM leaving the bus is expected here, not a disconnect.
    registry_.deviceRemoved("rom");
    EXPECT_EQ(status("1-1").stage, kStageWaiting);
    EXPECT_TRUE(sink_.finished.empty());
}

TEST_F(RegistryTest, SecondStageOnTheSamePortContinuesTheSameRecord) {
    romStageDone();
    registry_.deviceAdded(second2711("second", "1-1"));
    ASSERT_EQ(launcher_.launched.size(), 2U);
    EXPECT_EQ(launcher_.launched[1].stage, BootStage::SecondStage);
    EXPECT_EQ(launcher_.launched[1].board.serial, "af04b2da");
    EXPECT_TRUE(timers_.armed().empty()) << "re-enumeration timeout still armed";
    const BoardStatus& s = status("1-1");
    EXPECT_EQ(s.stage, kStageServingFiles);
    EXPECT_EQ(s.bootCount, 1U);
    EXPECT_EQ(sink_.events,
              (std::vector<std::string>{"added 1-1 sending-bootcode", "stage 1-1 waiting",
                                        "stage 1-1 serving-files"}));
}

TEST_F(RegistryTest, SessionEndingAfterFilesWereServedIsDone) {
    romStageDone();
    registry_.deviceAdded(second2711("second", "1-1"));
    const auto session = lastSession();
    serveFiles(session, 3);
    registry_.stageMetadata(session, "MAC_ADDR", "d8:3a:dd:01:02:03");
    registry_.stageFinished(session, filesOk(SessionEnd::DeviceGone, 3));
    registry_.deviceRemoved("second");
    const BoardStatus& s = status("1-1");
    EXPECT_EQ(s.stage, kStageDone);
    EXPECT_EQ(s.filesServed, 3U);
    EXPECT_EQ(s.metadata.at("MAC_ADDR"), "d8:3a:dd:01:02:03");
    EXPECT_NE(s.finishedUsec, 0U);
    ASSERT_EQ(sink_.finished.size(), 1U);
    EXPECT_TRUE(sink_.finished[0].success);
    EXPECT_NE(sink_.finished[0].message.find("3 file(s)"), std::string::npos);
    EXPECT_TRUE(timers_.armed().empty()) << "a done board is not forgotten";
}

TEST_F(RegistryTest, EmptyNameEndsTheSessionAsDone) {
    registry_.deviceAdded(device("second", "1-4", 0x2763, 1, "Broadcom"));
    registry_.stageFinished(lastSession(), filesOk(SessionEnd::EmptyName, 0));
    EXPECT_EQ(status("1-4").stage, kStageDone);
}

TEST_F(RegistryTest, BoardLeavingBeforeAnyFileWasServedFailed) {
    romStageDone();
    registry_.deviceAdded(second2711("second", "1-1"));
    registry_.stageFinished(lastSession(), filesOk(SessionEnd::DeviceGone, 0));
    EXPECT_EQ(status("1-1").stage, kStageFailed);
    EXPECT_EQ(status("1-1").lastError, "the board left the bus before it was served any file");
    ASSERT_EQ(sink_.finished.size(), 1U);
    EXPECT_FALSE(sink_.finished[0].success);
}

TEST_F(RegistryTest, BoardNotComingBackAfterBootcodeFailsWithAReason) {
    romStageDone();
    ASSERT_TRUE(timers_.fire(kReenumerate));
    const BoardStatus& s = status("1-1");
    EXPECT_EQ(s.stage, kStageFailed);
    EXPECT_EQ(s.lastError, "the board did not come back after bootcode within 10000 ms");
    ASSERT_EQ(sink_.finished.size(), 1U);
    EXPECT_FALSE(sink_.finished[0].success);
    EXPECT_EQ(sink_.finished[0].message, s.lastError);
    // The record goes away later, with a DeviceRemoved.
    ASSERT_TRUE(timers_.fire(kForget));
    EXPECT_EQ(registry_.board("1-1"), nullptr);
    EXPECT_EQ(sink_.events.back(), "removed 1-1");
}

TEST_F(RegistryTest, ReenumerationTimeoutUsesTheProfilesValue) {
    registry_.setConfiguration(rpiboot::test::testConfig(R"({"default_profile": "recovery"})"));
    registry_.deviceAdded(rom2711("rom", "1-1"));
    registry_.stageFinished(lastSession(), romOk());
    EXPECT_EQ(timers_.armed(), (std::vector<milliseconds>{registry_.configuration()
                                                              .configuration()
                                                              .profiles.at("recovery")
                                                              .timeouts.reenumerate}));
}

TEST_F(RegistryTest, FailureBetweenFilesNamesNoFile) {
    romStageDone();
    registry_.deviceAdded(second2711("second", "1-1"));
    const auto session = lastSession();
    registry_.stageProgress(session, {"start4.elf", 0, 1000, StageProgress::Kind::Started});
    registry_.stageProgress(session, {"start4.elf", 1000, 1000, StageProgress::Kind::Finished});
    registry_.stageFinished(session, failure(BootStage::SecondStage, rpiboot::Errc::Timeout,
                                             "control IN (260 bytes) timed out"));
    EXPECT_EQ(status("1-1").lastError, "second stage failed: control IN (260 bytes) timed out");
}

TEST_F(RegistryTest, DisconnectMidFileIsAFailureNotADisconnect) {
    romStageDone();
    registry_.deviceAdded(second2711("second", "1-1"));
    const auto session = lastSession();
    registry_.stageProgress(session, {"boot.img", 0, 30000000, StageProgress::Kind::Started});
    registry_.stageProgress(session, {"boot.img", 16384, 30000000, StageProgress::Kind::Progress});
    registry_.deviceRemoved("second");
    EXPECT_EQ(status("1-1").stage, kStageServingFiles) << "the worker's outcome decides";
    registry_.stageFinished(session, failure(BootStage::SecondStage, rpiboot::Errc::DeviceGone,
                                             "bulk OUT failed: the device left the bus"));
    const BoardStatus& s = status("1-1");
    EXPECT_EQ(s.stage, kStageFailed);
    EXPECT_EQ(s.lastError,
              "second stage failed while sending boot.img (30000000 bytes): bulk OUT "
              "failed: the device left the bus");
    EXPECT_EQ(timers_.armed(), (std::vector<milliseconds>{kForget}));
}

// A failure stays the board's last word: whether the USB removal arrives
// before or after the worker's verdict must not change what D-Bus reports.
TEST_F(RegistryTest, FailedBoardUnpluggedLaterStaysFailedWithItsError) {
    registry_.deviceAdded(rom2711("rom", "1-1"));
    registry_.stageFinished(lastSession(), failure(BootStage::Rom, rpiboot::Errc::Protocol,
                                                   "the ROM answered 0xffffffff"));
    EXPECT_EQ(status("1-1").stage, kStageFailed);
    registry_.deviceRemoved("rom");
    EXPECT_EQ(status("1-1").stage, kStageFailed);
    EXPECT_EQ(status("1-1").lastError, "ROM stage failed: the ROM answered 0xffffffff");
    ASSERT_TRUE(timers_.fire(kForget));
    EXPECT_EQ(sink_.events.back(), "removed 1-1");
    EXPECT_TRUE(registry_.boards().empty());
}

TEST_F(RegistryTest, BoardReturningBeforeItIsForgottenKeepsItsRecordAndCountsTheBoot) {
    registry_.deviceAdded(rom2711("rom1", "1-1"));
    registry_.stageFinished(lastSession(), failure(BootStage::Rom, rpiboot::Errc::Timeout, "x"));
    registry_.deviceRemoved("rom1");
    registry_.deviceAdded(rom2711("rom2", "1-1"));
    EXPECT_TRUE(timers_.armed().empty()) << "forget timer not cancelled";
    const BoardStatus& s = status("1-1");
    EXPECT_EQ(s.stage, kStageSendingBootcode);
    EXPECT_EQ(s.bootCount, 2U);
    EXPECT_TRUE(s.lastError.empty()) << "the previous boot's error was kept";
    EXPECT_EQ(std::count(sink_.events.begin(), sink_.events.end(), "added 1-1 sending-bootcode"),
              1);
}

TEST_F(RegistryTest, SecondStageArrivingBeforeTheRomOutcomeStartsRightAfterIt) {
    registry_.deviceAdded(rom2711("rom", "1-1"));
    const auto romSession = lastSession();
    registry_.deviceRemoved("rom");
    registry_.deviceAdded(second2711("second", "1-1"));
    EXPECT_EQ(launcher_.launched.size(), 1U) << "started while the ROM session was running";
    registry_.stageFinished(romSession, romOk());
    ASSERT_EQ(launcher_.launched.size(), 2U);
    EXPECT_EQ(launcher_.launched[1].device.id, "second");
    EXPECT_EQ(status("1-1").stage, kStageServingFiles);
    EXPECT_TRUE(timers_.armed().empty());
}

TEST_F(RegistryTest, SecondStageOnAnotherPortIsFollowedByItsSerial) {
    romStageDone();
    registry_.deviceAdded(second2711("second", "1-2"));
    EXPECT_EQ(registry_.board("1-1"), nullptr);
    ASSERT_NE(registry_.board("1-2"), nullptr);
    const BoardStatus& s = status("1-2");
    EXPECT_EQ(s.stage, kStageServingFiles);
    EXPECT_EQ(s.bootCount, 1U);
    EXPECT_EQ(s.serial, "af04b2da");
    EXPECT_EQ(launcher_.launched.back().board.portPath, "1-2");
    EXPECT_TRUE(timers_.armed().empty());
    EXPECT_EQ(sink_.events, (std::vector<std::string>{
                                "added 1-1 sending-bootcode", "stage 1-1 waiting", "removed 1-1",
                                "added 1-2 waiting", "stage 1-2 serving-files"}));
}

TEST_F(RegistryTest, SecondStageWithoutASeenRomStageStartsAFreshRecord) {
    registry_.deviceAdded(second2711("second", "3-1", "0badc0de"));
    ASSERT_EQ(launcher_.launched.size(), 1U);
    EXPECT_EQ(launcher_.launched[0].stage, BootStage::SecondStage);
    const BoardStatus& s = status("3-1");
    EXPECT_EQ(s.stage, kStageServingFiles);
    EXPECT_EQ(s.bootCount, 0U) << "no ROM stage was seen";
    EXPECT_EQ(s.serial, "0badc0de");
}

TEST_F(RegistryTest, Bcm2835SecondStageSerialStringIsNotTakenForTheBoardSerial) {
    registry_.deviceAdded(device("second", "1-5", 0x2763, 1, "Broadcom"));
    EXPECT_EQ(status("1-5").serial, "");
}

TEST_F(RegistryTest, ReloadDoesNotChangeTheProfileOfABoardAlreadyStarted) {
    registry_.deviceAdded(rom2711("rom", "1-1"));
    registry_.stageFinished(lastSession(), romOk());
    registry_.setConfiguration(rpiboot::test::testConfig(R"({"default_profile": "recovery"})"));
    registry_.deviceAdded(second2711("second", "1-1"));
    EXPECT_EQ(launcher_.launched.back().profile->profile.name, "msd");
    EXPECT_EQ(status("1-1").profile, "msd");
    registry_.deviceAdded(rom2711("other", "1-9", "12345678"));
    EXPECT_EQ(launcher_.launched.back().profile->profile.name, "recovery");
}

TEST_F(RegistryTest, ProgressPublishesOnlyTheFieldsThatChanged) {
    registry_.deviceAdded(second2711("second", "1-1"));
    const auto session = lastSession();
    sink_.changes.clear();
    registry_.stageProgress(session, {"boot.img", 0, 1000, StageProgress::Kind::Started});
    registry_.stageProgress(session, {"boot.img", 500, 1000, StageProgress::Kind::Progress});
    registry_.stageProgress(session, {"boot.img", 1000, 1000, StageProgress::Kind::Finished});
    ASSERT_EQ(sink_.changes.size(), 3U);
    EXPECT_EQ(sink_.changes[0], std::uint32_t{kFieldCurrentFile | kFieldBytesTotal});
    EXPECT_EQ(sink_.changes[1], std::uint32_t{kFieldBytesSent});
    EXPECT_EQ(sink_.changes[2], std::uint32_t{kFieldBytesSent | kFieldFilesServed});
    EXPECT_EQ(status("1-1").currentFile, "boot.img");
}

TEST_F(RegistryTest, BootcodeTransferIsNotCountedAsAServedFile) {
    registry_.deviceAdded(rom2711("rom", "1-1"));
    const auto session = lastSession();
    registry_.stageProgress(session, {"bootcode4.bin", 0, 100, StageProgress::Kind::Started});
    registry_.stageProgress(session, {"bootcode4.bin", 100, 100, StageProgress::Kind::Finished});
    EXPECT_EQ(status("1-1").filesServed, 0U);
    EXPECT_EQ(status("1-1").currentFile, "bootcode4.bin");
}

TEST_F(RegistryTest, EventsOfUnknownSessionsAndDevicesAreIgnored) {
    registry_.deviceRemoved("never-seen");
    registry_.stageProgress(99, {"x", 1, 2, StageProgress::Kind::Progress});
    registry_.stageFinished(99, romOk());
    EXPECT_TRUE(sink_.events.empty());
}

TEST_F(RegistryTest, ManyBoardsProgressIndependently) {
    registry_.deviceAdded(rom2711("a", "1-1", "aaaaaaaa"));
    const auto a = lastSession();
    registry_.deviceAdded(rom2711("b", "1-2", "bbbbbbbb"));
    const auto b = lastSession();
    registry_.stageFinished(b, romOk());
    EXPECT_EQ(status("1-1").stage, kStageSendingBootcode) << "board a waits on nobody";
    EXPECT_EQ(status("1-2").stage, kStageWaiting);
    registry_.stageFinished(a, failure(BootStage::Rom, rpiboot::Errc::Timeout, "stuck"));
    EXPECT_EQ(status("1-2").stage, kStageWaiting);
    const RegistryCounts c = registry_.counts();
    EXPECT_EQ(c.boards, 2U);
    EXPECT_EQ(c.inFlight, 1U);
    EXPECT_EQ(c.failed, 1U);
}

TEST_F(RegistryTest, ShutdownIgnoresLateOutcomes) {
    registry_.deviceAdded(rom2711("rom", "1-1"));
    registry_.shutDown();
    registry_.stageFinished(lastSession(), romOk());
    EXPECT_EQ(status("1-1").stage, kStageSendingBootcode);
    EXPECT_TRUE(launcher_.reaped.count(lastSession()));
}

TEST_F(RegistryTest, ListsPublishedBoardsAndTheProfilesOfItsConfiguration) {
    registry_.deviceAdded(rom2711("rom", "1-1"));
    ASSERT_EQ(registry_.boards().size(), 1U);
    EXPECT_EQ(registry_.boards()[0].port, "1-1");
    EXPECT_EQ(registry_.configuration().profileNames(),
              (std::vector<std::string>{"eeprom-erase", "mass-storage-gadget", "msd", "recovery",
                                        "secure-boot-msd", "secure-boot-recovery",
                                        "secure-boot-recovery5"}));
}

}  // namespace
}  // namespace rpibootd

namespace rpibootd {
namespace {

using rpiboot::BootStage;
using std::chrono::milliseconds;

// Profiles with two retries (1 s back-off, doubling) and a 300 s deadline.
class RetryTest : public ::testing::Test {
  protected:
    explicit RetryTest(const std::string& daemonJson = "")
        : log_(LogTargets{false, false, 0}),
          registry_(
              BoardRegistry::Environment{launcher_, timers_, log_, [this] { return ++clock_; }},
              rpiboot::test::testConfig(daemonJson, 2, kDeadline)) {
        registry_.setStatusSink(&sink_);
    }

    static constexpr milliseconds kDeadline{300000};
    std::uint64_t lastSession() const { return launcher_.launched.back().session; }
    const BoardStatus& status(const std::string& port) const {
        return registry_.board(port)->status();
    }
    static DeviceInfo rom(const std::string& id, const std::string& port) {
        DeviceInfo d;
        d.id = id;
        d.port = port;
        d.identity = *rpiboot::identifyDevice({0x0a5c, 0x2711, 3, 1});
        d.serial = "af04b2da";
        return d;
    }
    static StageResult failed(rpiboot::Errc errc, const std::string& why) {
        StageResult r;
        r.stage = BootStage::Rom;
        r.errc = errc;
        r.error = why;
        return r;
    }
    static StageResult romOk() {
        StageResult r;
        r.stage = BootStage::Rom;
        r.ok = true;
        return r;
    }

    std::uint64_t clock_ = 1000;
    rpiboot::test::ManualTimers timers_;
    rpiboot::test::RecordingLauncher launcher_;
    rpiboot::test::RecordingSink sink_;
    Logger log_;
    BoardRegistry registry_;
};

TEST_F(RetryTest, StallIsRetriedAfterTheBackoffOnTheSameEnumerationAndCountsAsAnAttempt) {
    registry_.deviceAdded(rom("rom", "1-1"));
    registry_.stageFinished(lastSession(), failed(rpiboot::Errc::Stall, "endpoint stalled"));

    EXPECT_EQ(status("1-1").stage, kStageWaiting);
    EXPECT_EQ(status("1-1").lastError,
              "attempt 1 of 3 failed: ROM stage failed: endpoint stalled; trying again in 1 s");
    EXPECT_TRUE(sink_.finished.empty()) << "BootFinished is for the boot, not the attempt";
    EXPECT_EQ(registry_.counts().inFlight, 1U) << "between attempts the boot is still on";
    ASSERT_TRUE(timers_.fire(milliseconds(1000)));

    ASSERT_EQ(launcher_.launched.size(), 2U);
    EXPECT_EQ(launcher_.launched[1].device.id, "rom");
    EXPECT_EQ(status("1-1").bootCount, 2U);
    EXPECT_EQ(status("1-1").stage, kStageSendingBootcode);
    registry_.stageFinished(lastSession(), romOk());
    EXPECT_EQ(status("1-1").stage, kStageWaiting);
    EXPECT_TRUE(sink_.finished.empty());
}

TEST_F(RetryTest, RetriesRunOutAndTheBootFailsOnceWithTheLastReason) {
    registry_.deviceAdded(rom("rom", "1-1"));
    registry_.stageFinished(lastSession(), failed(rpiboot::Errc::Timeout, "no answer"));
    ASSERT_TRUE(timers_.fire(milliseconds(1000)));
    registry_.stageFinished(lastSession(), failed(rpiboot::Errc::Timeout, "no answer"));
    EXPECT_NE(status("1-1").lastError.find("trying again in 2 s"), std::string::npos)
        << "the back-off doubles";
    ASSERT_TRUE(timers_.fire(milliseconds(2000)));
    registry_.stageFinished(lastSession(), failed(rpiboot::Errc::Timeout, "no answer"));

    EXPECT_EQ(launcher_.launched.size(), 3U);
    EXPECT_EQ(status("1-1").stage, kStageFailed);
    EXPECT_EQ(status("1-1").bootCount, 3U);
    EXPECT_EQ(status("1-1").lastError, "ROM stage failed: no answer (attempt 3 of 3)");
    ASSERT_EQ(sink_.finished.size(), 1U);
    EXPECT_FALSE(sink_.finished[0].success);
}

TEST_F(RetryTest, FailureThatIsNotTransientIsNotRetried) {
    registry_.deviceAdded(rom("rom", "1-1"));
    registry_.stageFinished(lastSession(),
                            failed(rpiboot::Errc::NotFound, "bootcode4.bin is missing"));
    EXPECT_EQ(status("1-1").stage, kStageFailed);
    EXPECT_EQ(sink_.finished.size(), 1U);
    EXPECT_FALSE(timers_.fire(milliseconds(1000)));
    EXPECT_EQ(launcher_.launched.size(), 1U);
}

TEST_F(RetryTest, BoardThatVanishedIsRetriedWhenItComesBackOnTheSamePort) {
    registry_.deviceAdded(rom("rom", "1-1"));
    registry_.deviceRemoved("rom");
    registry_.stageFinished(lastSession(), failed(rpiboot::Errc::DeviceGone, "left the bus"));
    EXPECT_EQ(status("1-1").stage, kStageWaiting);
    ASSERT_TRUE(timers_.fire(milliseconds(1000)));
    EXPECT_EQ(launcher_.launched.size(), 1U) << "nothing to open until it is back";

    registry_.deviceAdded(rom("rom-again", "1-1"));
    ASSERT_EQ(launcher_.launched.size(), 2U);
    EXPECT_EQ(launcher_.launched[1].device.id, "rom-again");
    EXPECT_EQ(status("1-1").bootCount, 2U);
    EXPECT_TRUE(sink_.finished.empty());
}

TEST_F(RetryTest, BoardThatDoesNotComeBackFailsAfterTheReenumerationTimeout) {
    registry_.deviceAdded(rom("rom", "1-1"));
    registry_.deviceRemoved("rom");
    registry_.stageFinished(lastSession(), failed(rpiboot::Errc::DeviceGone, "left the bus"));
    ASSERT_TRUE(timers_.fire(milliseconds(1000)));
    ASSERT_TRUE(timers_.fire(milliseconds(10000)));
    EXPECT_EQ(status("1-1").stage, kStageFailed);
    EXPECT_EQ(status("1-1").lastError,
              "the board did not come back on port 1-1 within 10 s for attempt 2; attempt 1 "
              "failed: ROM stage failed: left the bus");
    EXPECT_EQ(sink_.finished.size(), 1U);
}

TEST_F(RetryTest, DeadlineEndsTheBootBetweenAttempts) {
    registry_.deviceAdded(rom("rom", "1-1"));
    registry_.stageFinished(lastSession(), failed(rpiboot::Errc::Stall, "endpoint stalled"));
    ASSERT_TRUE(timers_.fire(kDeadline));
    EXPECT_EQ(status("1-1").stage, kStageFailed);
    EXPECT_EQ(status("1-1").lastError,
              "the boot took longer than its deadline of 300 s (1 attempt(s))");
    EXPECT_EQ(sink_.finished.size(), 1U);
    EXPECT_FALSE(timers_.fire(milliseconds(1000))) << "the retry was called off";
    EXPECT_EQ(launcher_.launched.size(), 1U);
}

TEST_F(RetryTest, HeldPortIsNeverOpenedAndReleaseBootsWhatIsThere) {
    std::vector<std::string> persisted;
    registry_.setHeldListener([&](const std::vector<std::string>& globs) { persisted = globs; });
    ASSERT_TRUE(registry_.holdPort("1-*").ok());
    EXPECT_EQ(persisted, std::vector<std::string>{"1-*"});

    registry_.deviceAdded(rom("rom", "1-1"));
    EXPECT_TRUE(launcher_.launched.empty());
    EXPECT_EQ(status("1-1").stage, kStageHeld);
    EXPECT_EQ(status("1-1").chip, "BCM2711");
    EXPECT_EQ(registry_.retry("1-1").outcome, ControlOutcome::Held);

    EXPECT_EQ(registry_.releasePort("2-*").outcome, ControlOutcome::NotHeld);
    EXPECT_EQ(registry_.releaseBoard("1-1").outcome, ControlOutcome::NotHeld)
        << "held by the wider glob";
    ASSERT_TRUE(registry_.releasePort("1-*").ok());
    EXPECT_TRUE(persisted.empty());
    ASSERT_EQ(launcher_.launched.size(), 1U);
    EXPECT_EQ(status("1-1").stage, kStageSendingBootcode);
}

TEST_F(RetryTest, RetryBootsAFailedBoardThatIsStillOnTheBusAndIsRefusedWhileItBoots) {
    registry_.deviceAdded(rom("rom", "1-1"));
    EXPECT_EQ(registry_.retry("1-1").outcome, ControlOutcome::Busy);
    EXPECT_EQ(registry_.forgetBoard("1-1").outcome, ControlOutcome::Busy);
    registry_.stageFinished(lastSession(), failed(rpiboot::Errc::Protocol, "bad answer"));
    ASSERT_EQ(sink_.finished.size(), 1U);

    ASSERT_TRUE(registry_.retry("1-1").ok());
    ASSERT_EQ(launcher_.launched.size(), 2U);
    EXPECT_EQ(status("1-1").bootCount, 2U);
    EXPECT_EQ(registry_.retry("9-9").outcome, ControlOutcome::UnknownPort);
}

TEST_F(RetryTest, ForgetDropsTheRecord) {
    registry_.deviceAdded(rom("rom", "1-1"));
    registry_.stageFinished(lastSession(), failed(rpiboot::Errc::Protocol, "bad answer"));
    ASSERT_TRUE(registry_.forgetBoard("1-1").ok());
    EXPECT_EQ(registry_.board("1-1"), nullptr);
    EXPECT_EQ(sink_.events.back(), "removed 1-1");
}

class IgnoreRuleTest : public RetryTest {
  protected:
    IgnoreRuleTest()
        : RetryTest(R"({"rules": [{"port": "3-*", "ignore": true}, {"chip": "2712",
                       "profile": "mass-storage-gadget"}]})") {}
};

TEST_F(IgnoreRuleTest, BoardMatchingAnIgnoreRuleIsNeverOpenedNorPublished) {
    registry_.deviceAdded(rom("rom", "3-1"));
    EXPECT_TRUE(launcher_.launched.empty());
    EXPECT_EQ(registry_.board("3-1"), nullptr);
    EXPECT_TRUE(sink_.events.empty());
    registry_.deviceRemoved("rom");
    registry_.deviceAdded(rom("rom2", "1-1"));
    EXPECT_EQ(launcher_.launched.size(), 1U);
}

}  // namespace
}  // namespace rpibootd
