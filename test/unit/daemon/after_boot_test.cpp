// A booted board followed into what it becomes, its storage step, and the
// after-success policy, driven by fake device, worker, storage and timer
// events: what the registry publishes, launches and cancels.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "board_registry.hpp"
#include "journal.hpp"
#include "registry_fakes.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "state_files.hpp"

namespace rpibootd {
namespace {

using rpiboot::AfterSuccess;
using rpiboot::BootStage;
using rpiboot::SessionEnd;
using rpiboot::test::ManualTimers;
using rpiboot::test::RecordingLauncher;
using rpiboot::test::RecordingSink;
using rpiboot::test::RecordingStorage;
using std::chrono::milliseconds;

constexpr milliseconds kAfterBoot{30000};
constexpr milliseconds kSettle{2000};
constexpr milliseconds kAway{5000};  // the profiles' default forget_after_s

DeviceInfo boardDevice(const std::string& id, const std::string& port, std::uint8_t serialIndex,
                       const std::string& serial) {
    DeviceInfo d;
    d.id = id;
    d.port = port;
    d.identity = *rpiboot::identifyDevice({0x0a5c, 0x2711, serialIndex, 1});
    d.serial = serial;
    return d;
}

DeviceInfo rom(const std::string& id, const std::string& port = "1-1",
               const std::string& serial = "af04b2da") {
    return boardDevice(id, port, 3, serial);
}

DeviceInfo secondStage(const std::string& id, const std::string& port = "1-1",
                       const std::string& serial = "af04b2da") {
    return boardDevice(id, port, 4, serial);
}

UsbDeviceInfo gadget(const std::string& id, const std::string& port = "1-1") {
    UsbDeviceInfo d;
    d.id = id;
    d.port = port;
    d.vendorId = 0x0a5c;
    d.productId = 0x0104;
    d.serial = "10000000af04b2da";
    d.sysfsPath = "/sys/devices/pci0000:00/0000:00:14.0/usb1/" + port;
    d.kind = classifyUsbDevice(d.vendorId, d.productId);
    return d;
}

DiskInfo disk(const std::string& id, const std::string& node, const std::string& model,
              const std::string& port = "1-1") {
    DiskInfo d;
    d.id = id;
    d.port = port;
    d.disk.node = node;
    d.disk.model = model;
    d.disk.sizeBytes = 64ULL << 20;
    d.disk.sysfsPath = "/sys/block/" + node.substr(5);
    return d;
}

StageResult romOk() {
    StageResult r;
    r.stage = BootStage::Rom;
    r.ok = true;
    return r;
}

StageResult filesOk() {
    StageResult r;
    r.stage = BootStage::SecondStage;
    r.ok = true;
    r.sessionEnd = SessionEnd::DeviceGone;
    r.filesServed = 2;
    r.bytesSent = 1000;
    return r;
}

class AfterBootTest : public ::testing::Test {
  protected:
    AfterBootTest() : log_(LogTargets{false, false, 0}) {
        image_ = scratch_.path() / "os.img";
        std::ofstream(image_) << "image";
    }

    // The registry, its boards given `change`d profiles.
    BoardRegistry& registry(const std::function<void(rpiboot::Profile&)>& change = {}) {
        if (!registry_) {
            BoardRegistry::Environment env{launcher_, timers_, log_, [this] { return ++clock_; }};
            env.storage = &storage_;
            env.diskSettle = kSettle;
            registry_.emplace(std::move(env),
                              rpiboot::test::testConfig("", 0, milliseconds(0), change));
            registry_->setStatusSink(&sink_);
        }
        return *registry_;
    }
    // Every profile writes os.img to its disk `model` ("": the only one).
    BoardRegistry& storageRegistry(const std::string& model = "") {
        return registry([this, model](rpiboot::Profile& p) {
            p.storage = rpiboot::ProfileStorage{image_, std::nullopt, model, true};
        });
    }
    BoardRegistry& policyRegistry(AfterSuccess policy) {
        return registry([policy](rpiboot::Profile& p) { p.afterSuccess = policy; });
    }

    std::uint64_t lastSession() const { return launcher_.launched.back().session; }
    const BoardStatus& status(const std::string& port = "1-1") const {
        return registry_->board(port)->status();
    }
    std::vector<std::string> stages() const {
        std::vector<std::string> out;
        for (const auto& e : sink_.events) {
            if (e.rfind("stage 1-1 ", 0) == 0 || e.rfind("added 1-1 ", 0) == 0) {
                out.push_back(e.substr(e.rfind(' ') + 1));
            }
        }
        return out;
    }

    // A ROM, then its second stage served two files and left the bus.
    void boot(const std::string& tag = "", const std::string& port = "1-1") {
        BoardRegistry& r = *registry_;
        r.deviceAdded(rom("rom" + tag, port));
        r.stageFinished(lastSession(), romOk());
        r.deviceRemoved("rom" + tag);
        r.deviceAdded(secondStage("second" + tag, port));
        const auto session = lastSession();
        r.stageProgress(session, {"start4.elf", 0, 500, StageProgress::Kind::Started});
        r.stageProgress(session, {"start4.elf", 500, 500, StageProgress::Kind::Finished});
        r.stageFinished(session, filesOk());
        r.deviceRemoved("second" + tag);
    }

    rpiboot::test::ScratchDir scratch_;
    std::filesystem::path image_;
    std::uint64_t clock_ = 1000;
    ManualTimers timers_;
    RecordingLauncher launcher_;
    RecordingStorage storage_;
    RecordingSink sink_;
    Logger log_;
    std::optional<BoardRegistry> registry_;
};

TEST_F(AfterBootTest, ProfileWithoutStorageIsDoneRightAfterBootedAndRecordsWhatTheBoardBecame) {
    BoardRegistry& r = registry();
    boot();
    EXPECT_EQ(stages(), (std::vector<std::string>{"sending-bootcode", "waiting", "serving-files",
                                                  "booted", "done"}));
    ASSERT_EQ(sink_.finished.size(), 1U);
    EXPECT_TRUE(sink_.finished[0].success);
    EXPECT_EQ(r.counts().inFlight, 0U);
    r.usbDeviceAdded(gadget("gadget"));
    r.diskAdded(disk("sdb", "/dev/sdb", "mmcblk0"));
    EXPECT_EQ(status().stage, kStageDone);
    EXPECT_EQ(status().afterBoot, "gadget 0a5c:0104 serial 10000000af04b2da");
    EXPECT_EQ(status().disks, (std::vector<DiskEntry>{{"/dev/sdb", "mmcblk0", 64ULL << 20}}));
    EXPECT_TRUE(storage_.launched.empty());
    EXPECT_EQ(sink_.finished.size(), 1U) << "BootFinished once per boot";
    EXPECT_TRUE(timers_.armed().empty()) << "a done board is not forgotten";
}

TEST_F(AfterBootTest, DevicesOnPortsOfNoBoardAreIgnored) {
    BoardRegistry& r = registry();
    r.usbDeviceAdded(gadget("decoy", "2-4"));
    r.diskAdded(disk("sdc", "/dev/sdc", "mmcblk0", "2-4"));
    r.diskRemoved("sdc");
    r.usbDeviceRemoved("decoy");
    EXPECT_TRUE(r.boards().empty());
    EXPECT_TRUE(sink_.events.empty());
}

TEST_F(AfterBootTest, StorageStepGoesThroughEveryStageAndEndsDoneOnce) {
    BoardRegistry& r = storageRegistry();
    boot();
    EXPECT_EQ(status().stage, kStageBooted);
    EXPECT_TRUE(sink_.finished.empty()) << "BootFinished only at the real end";
    EXPECT_EQ(r.counts().inFlight, 1U);
    r.usbDeviceAdded(gadget("gadget"));
    r.diskAdded(disk("sdb", "/dev/sdb", "mmcblk0"));
    EXPECT_TRUE(storage_.launched.empty()) << "waits for the other disks to appear";
    ASSERT_TRUE(timers_.fire(kSettle));
    ASSERT_EQ(storage_.launched.size(), 1U);
    const auto& [job, input] = storage_.launched[0];
    EXPECT_EQ(input.port, "1-1");
    EXPECT_EQ(input.serial, "af04b2da");
    EXPECT_EQ(input.storage.image, image_);
    EXPECT_EQ(input.usbDeviceSysfs, "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1");
    ASSERT_EQ(input.disks.size(), 1U);
    EXPECT_EQ(input.disks[0].node, "/dev/sdb");
    EXPECT_FALSE(input.virtualTarget);
    EXPECT_EQ(status().stage, kStageStorageReady);

    r.storageStage(job, kStageWriting);
    r.storageProgress(job, 4 << 20, 16 << 20);
    EXPECT_EQ(status().bytesWritten, 4U << 20);
    EXPECT_EQ(status().bytesToWrite, 16U << 20);
    r.storageProgress(job, 16 << 20, 16 << 20);
    r.storageStage(job, kStageVerifying);
    EXPECT_TRUE(sink_.finished.empty());
    StorageJobResult result;
    result.ok = true;
    result.disk = input.disks[0];
    result.write = rpiboot::storage::WriteResult{};
    result.write->imageName = "os.img";
    result.write->bytesWritten = 16 << 20;
    result.write->outcome = rpiboot::storage::WriteOutcome::Verified;
    r.storageFinished(job, result);

    EXPECT_EQ(stages(),
              (std::vector<std::string>{"sending-bootcode", "waiting", "serving-files", "booted",
                                        "storage-ready", "writing", "verifying", "done"}));
    EXPECT_TRUE(storage_.reaped.count(job));
    ASSERT_EQ(sink_.finished.size(), 1U);
    EXPECT_TRUE(sink_.finished[0].success);
    EXPECT_NE(sink_.finished[0].message.find("wrote os.img (16777216 bytes) to /dev/sdb"),
              std::string::npos)
        << sink_.finished[0].message;
    EXPECT_NE(status().finishedUsec, 0U);
    EXPECT_EQ(r.counts().done, 1U);
    EXPECT_EQ(r.counts().inFlight, 0U);
}

TEST_F(AfterBootTest, DeviceOvertakingTheWorkersOutcomeIsStillTaken) {
    BoardRegistry& r = storageRegistry("mmcblk0");
    r.deviceAdded(rom("rom"));
    r.stageFinished(lastSession(), romOk());
    r.deviceRemoved("rom");
    r.deviceAdded(secondStage("second"));
    const auto session = lastSession();
    r.stageProgress(session, {"boot.img", 0, 500, StageProgress::Kind::Started});
    r.stageProgress(session, {"boot.img", 500, 500, StageProgress::Kind::Finished});
    r.deviceRemoved("second");
    r.usbDeviceAdded(gadget("gadget"));
    r.diskAdded(disk("sdb", "/dev/sdb", "mmcblk0"));
    EXPECT_EQ(status().stage, kStageServingFiles);
    r.stageFinished(session, filesOk());
    // The profile names its disk and it is there: no settling.
    ASSERT_EQ(storage_.launched.size(), 1U);
    EXPECT_EQ(status().stage, kStageStorageReady);
    EXPECT_EQ(status().afterBoot, "gadget 0a5c:0104 serial 10000000af04b2da");
}

TEST_F(AfterBootTest, NamedDiskStartsAtOnceWhenItAppearsAfterAnother) {
    BoardRegistry& r = storageRegistry("nvme0n1");
    boot();
    r.usbDeviceAdded(gadget("gadget"));
    r.diskAdded(disk("sdb", "/dev/sdb", "mmcblk0"));
    EXPECT_TRUE(storage_.launched.empty());
    r.diskAdded(disk("sdc", "/dev/sdc", "nvme0n1"));
    ASSERT_EQ(storage_.launched.size(), 1U);
    EXPECT_EQ(storage_.launched[0].input.disks.size(), 2U);
    EXPECT_EQ(status().disks.size(), 2U);
}

TEST_F(AfterBootTest, NoDeviceWithinTheAfterBootTimeoutFails) {
    BoardRegistry& r = storageRegistry();
    boot();
    ASSERT_TRUE(timers_.fire(kAfterBoot));
    EXPECT_EQ(status().stage, kStageFailed);
    EXPECT_EQ(status().lastError, "the board did not come back as a disk within 30 s");
    ASSERT_EQ(sink_.finished.size(), 1U);
    EXPECT_FALSE(sink_.finished[0].success);
    EXPECT_EQ(sink_.finished[0].message, status().lastError);
    EXPECT_TRUE(storage_.launched.empty());
    EXPECT_EQ(r.counts().failed, 1U);
}

TEST_F(AfterBootTest, DeviceWithoutItsDiskTimesOutNamingWhatCame) {
    BoardRegistry& r = storageRegistry("nvme0n1");
    boot();
    r.usbDeviceAdded(gadget("gadget"));
    r.diskAdded(disk("sdb", "/dev/sdb", "mmcblk0"));
    ASSERT_TRUE(timers_.fire(kAfterBoot));
    EXPECT_EQ(status().stage, kStageFailed);
    EXPECT_EQ(status().lastError,
              "disk nvme0n1 did not appear within 30 s (the board came back as gadget 0a5c:0104 "
              "serial 10000000af04b2da with mmcblk0)");
}

TEST_F(AfterBootTest, DeviceLeavingDuringTheWriteCancelsTheJobAndFails) {
    BoardRegistry& r = storageRegistry("mmcblk0");
    boot();
    r.usbDeviceAdded(gadget("gadget"));
    r.diskAdded(disk("sdb", "/dev/sdb", "mmcblk0"));
    ASSERT_EQ(storage_.launched.size(), 1U);
    const auto job = storage_.launched[0].job;
    r.storageStage(job, kStageWriting);
    r.storageProgress(job, 8 << 20, 64 << 20);
    r.usbDeviceRemoved("gadget");
    EXPECT_TRUE(storage_.cancelled.count(job));
    EXPECT_EQ(status().stage, kStageFailed);
    EXPECT_EQ(status().lastError,
              "the board left the bus during its storage step (writing, 8388608 of 67108864 bytes "
              "written)");
    ASSERT_EQ(sink_.finished.size(), 1U);
    EXPECT_FALSE(sink_.finished[0].success);
    // The cancelled job's result changes nothing.
    StorageJobResult cancelled;
    cancelled.error = "cancelled";
    r.storageFinished(job, cancelled);
    EXPECT_TRUE(storage_.reaped.count(job));
    EXPECT_EQ(status().lastError.rfind("the board left the bus", 0), 0U);
    EXPECT_EQ(sink_.finished.size(), 1U);
}

TEST_F(AfterBootTest, FailedJobFailsTheBoardWithItsError) {
    BoardRegistry& r = storageRegistry("mmcblk0");
    boot();
    r.usbDeviceAdded(gadget("gadget"));
    r.diskAdded(disk("sdb", "/dev/sdb", "mmcblk0"));
    StorageJobResult result;
    result.error = "verification failed: first mismatch at byte 4096";
    r.storageFinished(storage_.launched.at(0).job, result);
    EXPECT_EQ(status().stage, kStageFailed);
    EXPECT_EQ(status().lastError,
              "storage step failed: verification failed: first mismatch at byte 4096");
}

TEST_F(AfterBootTest, RetryAndForgetAreRefusedDuringTheStorageStep) {
    BoardRegistry& r = storageRegistry("mmcblk0");
    boot();
    EXPECT_EQ(r.retry("1-1").outcome, ControlOutcome::Busy);
    r.usbDeviceAdded(gadget("gadget"));
    r.diskAdded(disk("sdb", "/dev/sdb", "mmcblk0"));
    EXPECT_EQ(r.retry("1-1").outcome, ControlOutcome::Busy);
    EXPECT_EQ(r.forgetBoard("1-1").outcome, ControlOutcome::Busy);
}

TEST_F(AfterBootTest, BootAgainBootsABoardThatComesBack) {
    BoardRegistry& r = policyRegistry(AfterSuccess::BootAgain);
    boot();
    r.deviceAdded(rom("rom2"));
    EXPECT_EQ(launcher_.launched.size(), 3U);
    EXPECT_EQ(status().stage, kStageSendingBootcode);
    EXPECT_EQ(status().bootCount, 2U);
}

TEST_F(AfterBootTest, OnceIgnoresTheBoardUntilItHasBeenAwayLongEnough) {
    BoardRegistry& r = policyRegistry(AfterSuccess::Once);
    boot();
    const auto launched = launcher_.launched.size();
    r.deviceAdded(rom("rom2"));
    EXPECT_EQ(launcher_.launched.size(), launched) << "booted again";
    EXPECT_EQ(status().stage, kStageDone);
    EXPECT_EQ(status().bootCount, 1U);
    // Away, but back before forget_after_s: still left alone.
    r.deviceRemoved("rom2");
    EXPECT_EQ(timers_.armed(), (std::vector<milliseconds>{kAway}));
    r.deviceAdded(rom("rom3"));
    EXPECT_TRUE(timers_.armed().empty());
    EXPECT_EQ(launcher_.launched.size(), launched);
    // Away long enough: the next board there is booted.
    r.deviceRemoved("rom3");
    ASSERT_TRUE(timers_.fire(kAway));
    r.deviceAdded(rom("rom4"));
    EXPECT_EQ(launcher_.launched.size(), launched + 1);
    EXPECT_EQ(status().bootCount, 2U);
    EXPECT_EQ(status().stage, kStageSendingBootcode);
}

// recovery_reboot=1: the ROM is back before the second stage's outcome
// reached the registry.
TEST_F(AfterBootTest, OnceAppliesToABoardBackInItsRomBeforeItsSessionsOutcome) {
    BoardRegistry& r = policyRegistry(AfterSuccess::Once);
    r.deviceAdded(rom("rom"));
    r.stageFinished(lastSession(), romOk());
    r.deviceRemoved("rom");
    r.deviceAdded(secondStage("second"));
    const auto session = lastSession();
    r.stageProgress(session, {"pieeprom.bin", 0, 500, StageProgress::Kind::Started});
    r.stageProgress(session, {"pieeprom.bin", 500, 500, StageProgress::Kind::Finished});
    r.deviceRemoved("second");
    r.deviceAdded(rom("rom-again"));
    const auto launched = launcher_.launched.size();
    r.stageFinished(session, filesOk());
    EXPECT_EQ(launcher_.launched.size(), launched) << "booted again";
    EXPECT_EQ(status().stage, kStageDone);
    EXPECT_EQ(status().bootCount, 1U);
    ASSERT_EQ(sink_.finished.size(), 1U);
    EXPECT_TRUE(sink_.finished[0].success);
    EXPECT_TRUE(r.retry("1-1").ok());
    EXPECT_EQ(launcher_.launched.back().device.id, "rom-again");
}

TEST_F(AfterBootTest, BootAgainBootsABoardBackInItsRomBeforeItsSessionsOutcome) {
    BoardRegistry& r = policyRegistry(AfterSuccess::BootAgain);
    r.deviceAdded(rom("rom"));
    r.stageFinished(lastSession(), romOk());
    r.deviceRemoved("rom");
    r.deviceAdded(secondStage("second"));
    const auto session = lastSession();
    r.stageProgress(session, {"pieeprom.bin", 0, 500, StageProgress::Kind::Started});
    r.stageProgress(session, {"pieeprom.bin", 500, 500, StageProgress::Kind::Finished});
    r.deviceRemoved("second");
    r.deviceAdded(rom("rom-again"));
    r.stageFinished(session, filesOk());
    EXPECT_EQ(launcher_.launched.back().device.id, "rom-again");
    EXPECT_EQ(status().bootCount, 2U);
}

TEST_F(AfterBootTest, OnceCountsWhatTheBoardBecameAsPresence) {
    BoardRegistry& r = policyRegistry(AfterSuccess::Once);
    boot();
    r.usbDeviceAdded(gadget("gadget"));
    EXPECT_TRUE(timers_.armed().empty()) << "the port is not empty";
    r.usbDeviceRemoved("gadget");
    EXPECT_EQ(timers_.armed(), (std::vector<milliseconds>{kAway}));
}

TEST_F(AfterBootTest, OnceBootsAnotherBoardOnThatPort) {
    BoardRegistry& r = policyRegistry(AfterSuccess::Once);
    boot();
    const auto launched = launcher_.launched.size();
    r.deviceAdded(rom("other", "1-1", "0badc0de"));
    EXPECT_EQ(launcher_.launched.size(), launched + 1);
    EXPECT_EQ(status().serial, "0badc0de");
}

TEST_F(AfterBootTest, RetryOverridesOnce) {
    BoardRegistry& r = policyRegistry(AfterSuccess::Once);
    boot();
    const auto launched = launcher_.launched.size();
    r.deviceAdded(rom("rom2"));
    ASSERT_EQ(launcher_.launched.size(), launched);
    EXPECT_TRUE(r.retry("1-1").ok());
    EXPECT_EQ(launcher_.launched.size(), launched + 1);
    EXPECT_EQ(launcher_.launched.back().device.id, "rom2");
}

TEST_F(AfterBootTest, OncePerSerialIsPersistedAndSurvivesARestart) {
    const BootedSerialsFile file(scratch_.path() / "state");
    {
        BoardRegistry& r = policyRegistry(AfterSuccess::OncePerSerial);
        r.setOnceSerialsListener(
            [&file](const std::vector<std::string>& serials) { file.save(serials); });
        boot();
        EXPECT_EQ(r.onceSerials(), (std::vector<std::string>{"af04b2da"}));
    }
    EXPECT_EQ(file.load(), (std::vector<std::string>{"af04b2da"}));
    registry_.reset();
    launcher_.launched.clear();
    sink_ = RecordingSink{};

    // The daemon again: the list is read back before any board.
    BoardRegistry& r = policyRegistry(AfterSuccess::OncePerSerial);
    r.restoreOnceSerials(file.load());
    r.setOnceSerialsListener(
        [&file](const std::vector<std::string>& serials) { file.save(serials); });
    r.deviceAdded(rom("rom"));
    EXPECT_TRUE(launcher_.launched.empty()) << "booted again after a restart";
    EXPECT_EQ(status().stage, kStageDone);
    EXPECT_EQ(status().bootCount, 0U);
    // Another port: the serial says it is the same board.
    r.deviceAdded(rom("rom-b", "1-2"));
    EXPECT_TRUE(launcher_.launched.empty());
    // A board without that serial is booted.
    r.deviceAdded(rom("new", "1-3", "12345678"));
    EXPECT_EQ(launcher_.launched.size(), 1U);
    // Retry boots it and takes it off the list.
    EXPECT_TRUE(r.retry("1-1").ok());
    EXPECT_EQ(launcher_.launched.size(), 2U);
    EXPECT_EQ(launcher_.launched.back().device.id, "rom");
    EXPECT_TRUE(file.load().empty());
}

TEST_F(AfterBootTest, ForgetTakesABoardOffTheOncePerSerialList) {
    BoardRegistry& r = policyRegistry(AfterSuccess::OncePerSerial);
    r.restoreOnceSerials({"af04b2da"});
    r.deviceAdded(rom("rom"));
    EXPECT_TRUE(launcher_.launched.empty());
    EXPECT_TRUE(r.forgetBoard("1-1").ok());
    EXPECT_TRUE(r.onceSerials().empty());
    r.deviceRemoved("rom");
    r.deviceAdded(rom("rom2"));
    EXPECT_EQ(launcher_.launched.size(), 1U);
}

TEST_F(AfterBootTest, BoardBackInBootModeDuringItsStorageStepFailsThatBootAndIsBootedAgain) {
    BoardRegistry& r = storageRegistry("mmcblk0");
    boot();
    r.usbDeviceAdded(gadget("gadget"));
    r.diskAdded(disk("sdb", "/dev/sdb", "mmcblk0"));
    const auto job = storage_.launched.at(0).job;
    r.storageStage(job, kStageVerifying);
    r.deviceAdded(rom("rom2"));
    EXPECT_TRUE(storage_.cancelled.count(job));
    ASSERT_EQ(sink_.finished.size(), 1U);
    EXPECT_FALSE(sink_.finished[0].success);
    EXPECT_EQ(sink_.finished[0].message,
              "the board went back to boot mode before its storage step ended (verifying, 0 of 0 "
              "bytes written)");
    EXPECT_EQ(status().stage, kStageSendingBootcode);
    EXPECT_EQ(status().bootCount, 2U);
}

TEST_F(AfterBootTest, DiskLeavingDuringTheWriteFailsAndTheBoardIsBootedWhenItReturns) {
    BoardRegistry& r = storageRegistry("mmcblk0");
    boot();
    r.usbDeviceAdded(gadget("gadget"));
    r.diskAdded(disk("sdb", "/dev/sdb", "mmcblk0"));
    const auto job = storage_.launched.at(0).job;
    r.storageStage(job, kStageWriting);
    r.diskRemoved("sdb");
    EXPECT_EQ(status().stage, kStageFailed);
    EXPECT_EQ(status().lastError.rfind("disk /dev/sdb left during the storage step", 0), 0U)
        << status().lastError;
    EXPECT_TRUE(storage_.cancelled.count(job));
    r.usbDeviceRemoved("gadget");
    r.deviceAdded(rom("rom2"));
    EXPECT_EQ(status().stage, kStageSendingBootcode);
    EXPECT_EQ(status().bootCount, 2U);
    EXPECT_TRUE(status().afterBoot.empty());
    EXPECT_TRUE(status().disks.empty());
}

TEST(UsbDeviceKind, IdentitiesOfWhatABoardBecomes) {
    EXPECT_EQ(classifyUsbDevice(0x0a5c, 0x0104), UsbDeviceKind::Gadget);
    EXPECT_EQ(classifyUsbDevice(0x18d1, 0x4e40), UsbDeviceKind::Fastboot);
    EXPECT_EQ(classifyUsbDevice(0x0a5c, 0x2728), UsbDeviceKind::Msd);
    EXPECT_EQ(classifyUsbDevice(0x0a5c, 0x2711), UsbDeviceKind::Other) << "a boot ROM";
    EXPECT_EQ(classifyUsbDevice(0x046d, 0xc52b), UsbDeviceKind::Other);
    UsbDeviceInfo fastboot;
    fastboot.vendorId = 0x18d1;
    fastboot.productId = 0x4e40;
    fastboot.kind = UsbDeviceKind::Fastboot;
    EXPECT_EQ(fastboot.describe(), "fastboot 18d1:4e40");
}

}  // namespace
}  // namespace rpibootd
