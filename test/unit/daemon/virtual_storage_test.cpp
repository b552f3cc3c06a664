// The storage step for real, in-process: sd-event loop, registry, stage and
// storage workers, the virtual bus and runStorageJob writing the image into a
// virtual board's disk (a sparse file). Checks what landed in the file, not
// just what we say.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <random>

#include "active_config.hpp"
#include "board_registry.hpp"
#include "boot_listener.hpp"
#include "event_loop.hpp"
#include "journal.hpp"
#include "registry_fakes.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot_test/daemon_process.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "stage_worker.hpp"
#include "storage_launcher.hpp"
#include "virtual/virtual_source.hpp"

namespace rpibootd {
namespace {

using std::chrono::milliseconds;

// Guards against a hang only; never part of what a test asserts.
constexpr milliseconds kSafetyLimit{60000};

std::vector<char> readAll(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Records like RecordingSink, and lets a test act on a stage change.
class WatchingSink final : public StatusSink {
  public:
    void boardAdded(const BoardStatus& board) override { recording.boardAdded(board); }
    void boardChanged(const BoardStatus& board, std::uint32_t changed) override {
        recording.boardChanged(board, changed);
        if ((changed & kFieldStage) != 0 && onStage) {
            onStage(board);
        }
        if (onChange) {
            onChange(board, changed);
        }
    }
    void boardRemoved(const std::string& port) override { recording.boardRemoved(port); }
    void bootFinished(const std::string& port, bool success, const std::string& message) override {
        recording.bootFinished(port, success, message);
    }

    rpiboot::test::RecordingSink recording;
    std::function<void(const BoardStatus&)> onStage;
    std::function<void(const BoardStatus&, std::uint32_t)> onChange;
};

// What the metrics file would be told.
class CountingListener final : public BootListener {
  public:
    void bootStarted(const BoardStatus&) override { ++started; }
    void attemptFailed(const BoardStatus&, FailureClass) override { ++attemptFailures; }
    void bootFinished(const BoardStatus& board, bool success, FailureClass, double) override {
        outcomes.push_back(board.stage + (success ? " success" : " failure"));
    }
    void bytesServed(std::uint64_t) override {}
    void bytesWritten(std::uint64_t bytes) override { written += bytes; }
    void boardsChanged() override {}

    unsigned started = 0;
    unsigned attemptFailures = 0;
    std::vector<std::string> outcomes;
    std::uint64_t written = 0;
};

class VirtualStorageTest : public ::testing::Test {
  protected:
    VirtualStorageTest() : log_(LogTargets{false, false, 0}) {
        firmware_ = rpiboot::test::prepareFirmware(scratch_.path() / "firmware");
        image_ = scratch_.path() / "os.img";
    }

    void writeImage(std::size_t bytes) {
        std::vector<char> data(bytes);
        std::mt19937 random(1234);
        for (auto& c : data) {
            c = static_cast<char>(random());
        }
        std::ofstream(image_, std::ios::binary).write(data.data(), std::streamsize(data.size()));
    }

    // Built-in profiles, every one writing os.img to "mmcblk0" after its boot.
    void configure(milliseconds afterBoot = milliseconds(30000)) {
        rpiboot::DaemonConfig daemon = rpiboot::defaultDaemonConfig();
        daemon.profilesDir.clear();
        daemon.firmwareDir = firmware_;
        rpiboot::Configuration configuration =
            rpiboot::buildConfiguration(std::move(daemon), builtinProfiles());
        for (auto& [name, profile] : configuration.profiles) {
            profile.storage = rpiboot::ProfileStorage{image_, std::nullopt, "mmcblk0", true};
            profile.timeouts.afterBoot = afterBoot;
        }
        config_ = activate(std::move(configuration), std::make_shared<rpiboot::FileCache>(), &log_);
    }

    // Plugs `spec`, runs until every board has a verdict, then shuts down
    // as the daemon does; `atEnd` runs before (the disks are still there).
    bool run(const std::string& spec, std::uint64_t diskBytes,
             const std::function<void()>& atEnd = {}, StorageJobFunction job = runStorageJob) {
        EventLoop& loop = loop_;
        ThreadStageLauncher launcher(loop, log_);
        ThreadStorageLauncher storage(loop, std::move(job));
        BoardRegistry::Environment env{
            launcher, loop, log_, [] {
                return static_cast<std::uint64_t>(
                    std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
            }};
        env.storage = &storage;
        env.diskSettle = milliseconds(50);
        registry_.emplace(std::move(env), config_);
        registry_->setStatusSink(&sink_);
        registry_->setBootListener(&listener_);
        const auto boards = parseVirtualSpec(spec);
        registry_->setCountsListener([&, count = boards.size()](const RegistryCounts& c) {
            if (c.inFlight == 0 && c.done + c.failed == count) {
                loop.exit(0);
            }
        });
        source_ = std::make_unique<VirtualSource>(loop, log_, boards);
        source_->setDiskSize(diskBytes);
        source_->start(*registry_);
        const auto safety = loop.after(kSafetyLimit, [&loop] { loop.exit(1); });
        const int status = loop.run();
        if (atEnd) {
            atEnd();
        }
        registry_->shutDown();
        source_->unplugAll();
        launcher.stopAll();
        storage.stopAll();
        return status == 0;
    }

    const BoardStatus& status(const std::string& port = "1-1") const {
        return registry_->board(port)->status();
    }

    rpiboot::test::ScratchDir scratch_;
    std::filesystem::path firmware_;
    std::filesystem::path image_;
    Logger log_;
    std::shared_ptr<const ActiveConfig> config_;
    WatchingSink sink_;
    CountingListener listener_;
    EventLoop loop_;
    std::optional<BoardRegistry> registry_;
    std::unique_ptr<VirtualSource> source_;
};

TEST_F(VirtualStorageTest, GadgetBoardGoesThroughEveryStageAndItsDiskHoldsTheImage) {
    constexpr std::size_t kImage = 8u << 20;
    writeImage(kImage);
    configure();
    std::vector<char> disk;
    std::vector<std::string> stages;
    sink_.onStage = [&](const BoardStatus& b) { stages.push_back(b.stage); };
    ASSERT_TRUE(run("2712", kImage, [&] {
        ASSERT_EQ(status().disks.size(), 1U);
        disk = readAll(status().disks[0].node);
    }));
    const BoardStatus& s = status();
    EXPECT_EQ(s.stage, kStageDone) << s.lastError;
    EXPECT_EQ(stages, (std::vector<std::string>{"waiting", "serving-files", "booted",
                                                "storage-ready", "writing", "verifying", "done"}));
    EXPECT_EQ(sink_.recording.events.front(), "added 1-1 sending-bootcode");
    EXPECT_EQ(s.afterBoot.rfind("gadget 0a5c:0104 serial 10000000", 0), 0U) << s.afterBoot;
    ASSERT_EQ(s.disks.size(), 1U);
    EXPECT_EQ(s.disks[0].model, "mmcblk0");
    EXPECT_EQ(s.disks[0].sizeBytes, kImage);
    EXPECT_EQ(std::filesystem::path(s.disks[0].node).parent_path(), source_->diskDirectory());
    EXPECT_EQ(s.bytesToWrite, kImage);
    EXPECT_EQ(s.bytesWritten, s.bytesToWrite);
    EXPECT_TRUE(disk == readAll(image_)) << "the disk differs from the image";
    ASSERT_EQ(sink_.recording.finished.size(), 1U);
    EXPECT_TRUE(sink_.recording.finished[0].success);
    EXPECT_NE(sink_.recording.finished[0].message.find("wrote os.img (8388608 bytes)"),
              std::string::npos)
        << sink_.recording.finished[0].message;
    // The metrics count the boot once, at its real end, and the bytes written.
    EXPECT_EQ(listener_.started, 1U);
    EXPECT_EQ(listener_.outcomes, (std::vector<std::string>{"done success"}));
    EXPECT_EQ(listener_.written, kImage);
    // BytesWritten was published as it went.
    EXPECT_NE(std::find_if(sink_.recording.changes.begin(), sink_.recording.changes.end(),
                           [](std::uint32_t c) { return (c & kFieldBytesWritten) != 0; }),
              sink_.recording.changes.end());
}

TEST_F(VirtualStorageTest, BoardThatBecomesNoDiskFailsAfterTheAfterBootTimeout) {
    writeImage(4096);
    configure(milliseconds(300));
    ASSERT_TRUE(run("2711:1:msd", 1u << 20));
    EXPECT_EQ(status().stage, kStageFailed);
    EXPECT_EQ(status().lastError, "the board did not come back as a disk within 300 ms");
    EXPECT_TRUE(status().afterBoot.empty());
}

TEST_F(VirtualStorageTest, BoardUnpluggedDuringTheWriteFailsAndItsJobIsCancelled) {
    constexpr std::size_t kImage = 16u << 20;
    writeImage(kImage);
    configure();
    // The real job, held after its first reported buffer until the registry
    // cancels it: the board is unplugged when that figure is published, so
    // always in the middle of the write.
    std::optional<StorageJobResult> jobResult;
    std::mutex mutex;
    StorageJobFunction job = [&](const StorageJobInput& input, const StorageJobCallbacks& callbacks,
                                 std::stop_token stop) {
        StorageJobCallbacks held = callbacks;
        held.progress = [&, stop, forward = callbacks.progress](std::uint64_t written,
                                                                std::uint64_t toWrite) {
            forward(written, toWrite);
            std::mutex m;
            std::unique_lock lock(m);
            std::condition_variable_any().wait_for(lock, stop, std::chrono::seconds(20),
                                                   [] { return false; });
        };
        auto result = runStorageJob(input, held, stop);
        std::lock_guard lock(mutex);
        jobResult = result;
        return result;
    };
    bool unplugged = false;
    sink_.onChange = [&](const BoardStatus& b, std::uint32_t changed) {
        if ((changed & kFieldBytesWritten) != 0 && b.bytesWritten > 0 && !unplugged) {
            unplugged = true;
            source_->unplug("1-1");
        }
    };
    ASSERT_TRUE(run("2712", kImage, {}, job));
    const BoardStatus& s = status();
    EXPECT_EQ(s.stage, kStageFailed);
    EXPECT_NE(s.lastError.find("during the storage step (writing, "), std::string::npos)
        << s.lastError;
    EXPECT_GT(s.bytesWritten, 0U);
    EXPECT_LT(s.bytesWritten, kImage);
    ASSERT_EQ(sink_.recording.finished.size(), 1U);
    EXPECT_FALSE(sink_.recording.finished[0].success);
    EXPECT_EQ(listener_.outcomes, (std::vector<std::string>{"failed failure"}));
    std::lock_guard lock(mutex);
    ASSERT_TRUE(jobResult.has_value());
    EXPECT_FALSE(jobResult->ok);
    EXPECT_NE(jobResult->error.find("cancel"), std::string::npos) << jobResult->error;
}

}  // namespace
}  // namespace rpibootd
