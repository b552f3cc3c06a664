// The storage step of one board: the disk is chosen, checked, written and
// verified, and a boot record is left for every outcome. Virtual targets are
// regular files; the real-disk checks run over a fake sysfs tree.
#include "storage_job.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../storage/storage_test_util.hpp"
#include "active_config.hpp"
#include "journal.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot_test/scratch_dir.hpp"

namespace rpibootd {
namespace {

namespace fs = std::filesystem;
using rpiboot::storage::test::Bytes;
using rpiboot::storage::test::makeImage;
using rpiboot::storage::test::readFile;
using rpiboot::storage::test::sha;
using rpiboot::storage::test::writeFile;
using rpiboot::test::ScratchDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::size_t kDiskSize = 8u << 20;

// What the callbacks saw.
struct Seen {
    std::vector<std::string> stages;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> progress;

    StorageJobCallbacks callbacks() {
        StorageJobCallbacks c;
        c.stage = [this](std::string_view s) { stages.emplace_back(s); };
        c.progress = [this](std::uint64_t w, std::uint64_t t) { progress.emplace_back(w, t); };
        return c;
    }
};

class StorageJobTest : public ::testing::Test {
  protected:
    // A virtual board's backing file, filled with a pattern so that untouched
    // bytes are recognisable.
    BoardDisk virtualDisk(const std::string& name, const std::string& model,
                          std::size_t size = kDiskSize) {
        const fs::path node = dir.mkdir("disks") / name;
        writeFile(node, Bytes(size, 0xA5));
        return BoardDisk{node.string(), "", model, size, ""};
    }

    StorageJobInput input(const fs::path& image, std::vector<BoardDisk> disks) {
        StorageJobInput in;
        in.port = "1-1.3";
        in.serial = "1000000012345678";
        in.profile = "write-image";
        in.storage.image = image;
        in.disks = std::move(disks);
        in.metadata = {{"MAC_ADDRESS", "d8:3a:dd:00:00:01"}};
        in.recordDir = dir / "records";
        in.startedAt = 1700000000;
        in.virtualTarget = true;
        return in;
    }

    nlohmann::json record(const StorageJobResult& r) {
        std::ifstream in(r.record);
        return nlohmann::json::parse(in);
    }

    ScratchDir dir;
};

void expectMonotoneEndingAt(const Seen& seen, std::uint64_t total) {
    ASSERT_FALSE(seen.progress.empty());
    for (std::size_t i = 1; i < seen.progress.size(); ++i) {
        EXPECT_GE(seen.progress[i].first, seen.progress[i - 1].first) << "at " << i;
    }
    EXPECT_EQ(seen.progress.back(), std::make_pair(std::uint64_t{total}, std::uint64_t{total}));
}

TEST_F(StorageJobTest, WritesAndVerifiesARawImageAndRecordsIt) {
    const Bytes image = makeImage((3u << 20) + 1000, 7);
    const fs::path imageFile = dir / "os.img";
    writeFile(imageFile, image);
    const BoardDisk disk = virtualDisk("board.img", "mmcblk0");

    Seen seen;
    const auto r = runStorageJob(input(imageFile, {disk}), seen.callbacks(), {});

    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.error, "");
    ASSERT_TRUE(r.disk);
    EXPECT_EQ(r.disk->node, disk.node);
    const Bytes after = readFile(disk.node);
    ASSERT_EQ(after.size(), kDiskSize);
    EXPECT_TRUE(std::equal(image.begin(), image.end(), after.begin()));
    EXPECT_TRUE(std::all_of(after.begin() + static_cast<std::ptrdiff_t>(image.size()), after.end(),
                            [](std::uint8_t b) { return b == 0xA5; }));
    EXPECT_THAT(seen.stages, ElementsAre("writing", "verifying"));
    expectMonotoneEndingAt(seen, image.size());

    ASSERT_TRUE(r.write);
    EXPECT_EQ(r.write->outcome, rpiboot::storage::WriteOutcome::Verified);
    EXPECT_EQ(r.record, dir / "records" / "1700000000-1000000012345678.json");
    const auto j = record(r);
    EXPECT_EQ(j["board"], "1000000012345678");
    EXPECT_EQ(j["port"], "1-1.3");
    EXPECT_EQ(j["profile"], "write-image");
    EXPECT_EQ(j["outcome"], "done");
    EXPECT_FALSE(j.contains("error"));
    EXPECT_EQ(j["metadata"]["MAC_ADDRESS"], "d8:3a:dd:00:00:01");
    EXPECT_EQ(j["write"]["image"], "os.img");
    EXPECT_EQ(j["write"]["format"], "raw");
    EXPECT_EQ(j["write"]["sha256"], sha(image));
    EXPECT_EQ(j["write"]["bytes_written"], image.size());
    EXPECT_EQ(j["write"]["result"], "verified");
    EXPECT_GE(j["finished_at"].get<std::int64_t>(), 1700000000);
}

TEST_F(StorageJobTest, WritesAZstdImageAndNamesTheBoardByPortWithoutSerial) {
    const Bytes image = makeImage(5u << 20, 11);
    const fs::path imageFile = dir / "os.img.zst";
    writeFile(imageFile, rpiboot::storage::test::zst(image));
    const BoardDisk disk = virtualDisk("board.img", "nvme0n1");
    auto in = input(imageFile, {disk});
    in.serial.clear();

    Seen seen;
    const auto r = runStorageJob(in, seen.callbacks(), {});

    ASSERT_TRUE(r.ok) << r.error;
    const Bytes after = readFile(disk.node);
    EXPECT_TRUE(std::equal(image.begin(), image.end(), after.begin()));
    expectMonotoneEndingAt(seen, image.size());
    const auto j = record(r);
    EXPECT_EQ(j["board"], "1-1.3");
    EXPECT_EQ(j["write"]["format"], "zstd");
    EXPECT_EQ(j["write"]["sha256"], sha(image));
    EXPECT_EQ(j["write"]["read_back_sha256"], sha(image));
}

TEST_F(StorageJobTest, GzipImageWhoseSizeIsUnknownStillEndsOnTheFinalFigure) {
    const Bytes image = makeImage((2u << 20) + 12345, 3);
    const fs::path imageFile = dir / "os.img.gz";
    writeFile(imageFile, rpiboot::storage::test::gz(image));
    const BoardDisk disk = virtualDisk("board.img", "mmcblk0");

    Seen seen;
    const auto r = runStorageJob(input(imageFile, {disk}), seen.callbacks(), {});

    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_TRUE(std::equal(image.begin(), image.end(), readFile(disk.node).begin()));
    expectMonotoneEndingAt(seen, image.size());
}

// A bmap (2.0, sha256, no file checksum) of `image` mapping the given blocks.
std::string bmapOf(const Bytes& image, const std::vector<std::pair<int, int>>& ranges) {
    constexpr std::size_t kBlock = 4096;
    std::string body;
    std::size_t mapped = 0;
    for (const auto& [a, b] : ranges) {
        const Bytes part(image.begin() + static_cast<std::ptrdiff_t>(a * kBlock),
                         image.begin() + static_cast<std::ptrdiff_t>((b + 1) * kBlock));
        body += "<Range chksum=\"" + sha(part) + "\">" + std::to_string(a) + "-" +
                std::to_string(b) + "</Range>\n";
        mapped += static_cast<std::size_t>(b - a + 1);
    }
    return "<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n<ImageSize>" +
           std::to_string(image.size()) + "</ImageSize>\n<BlockSize>4096</BlockSize>\n" +
           "<BlocksCount>" + std::to_string(image.size() / kBlock) + "</BlocksCount>\n" +
           "<MappedBlocksCount>" + std::to_string(mapped) + "</MappedBlocksCount>\n" +
           "<ChecksumType>sha256</ChecksumType>\n<BlockMap>\n" + body + "</BlockMap>\n</bmap>\n";
}

TEST_F(StorageJobTest, WithABmapOnlyTheMappedRangesAreWritten) {
    const Bytes image = makeImage(40 * 4096, 9);
    writeFile(dir / "os.img.zst", rpiboot::storage::test::zst(image));
    dir.write("os.bmap", bmapOf(image, {{0, 3}, {10, 19}}));
    const BoardDisk disk = virtualDisk("board.img", "mmcblk0");
    auto in = input(dir / "os.img.zst", {disk});
    in.storage.bmap = dir / "os.bmap";

    Seen seen;
    const auto r = runStorageJob(in, seen.callbacks(), {});

    ASSERT_TRUE(r.ok) << r.error;
    const Bytes after = readFile(disk.node);
    for (std::size_t block = 0; block < 40; ++block) {
        const bool mapped = block <= 3 || (block >= 10 && block <= 19);
        const auto at = static_cast<std::ptrdiff_t>(block * 4096);
        const Bytes expected =
            mapped ? Bytes(image.begin() + at, image.begin() + at + 4096) : Bytes(4096, 0xA5);
        EXPECT_EQ(Bytes(after.begin() + at, after.begin() + at + 4096), expected)
            << "block " << block;
    }
    expectMonotoneEndingAt(seen, 14 * 4096);
    const auto j = record(r);
    EXPECT_EQ(j["write"]["bmap"], true);
    EXPECT_EQ(j["write"]["bytes_written"], 14 * 4096);
}

TEST_F(StorageJobTest, WithoutVerifyThereIsNoVerifyingStage) {
    const Bytes image = makeImage(1u << 20);
    writeFile(dir / "os.img", image);
    auto in = input(dir / "os.img", {virtualDisk("board.img", "mmcblk0")});
    in.storage.verify = false;

    Seen seen;
    const auto r = runStorageJob(in, seen.callbacks(), {});

    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_THAT(seen.stages, ElementsAre("writing"));
    EXPECT_EQ(record(r)["write"]["result"], "written");
}

TEST_F(StorageJobTest, ChoosesTheDiskByModelAndLeavesTheOthersAlone) {
    const Bytes image = makeImage(1u << 20);
    writeFile(dir / "os.img", image);
    const BoardDisk sd = virtualDisk("sd.img", "mmcblk1");
    const BoardDisk emmc = virtualDisk("emmc.img", "mmcblk0");
    auto in = input(dir / "os.img", {sd, emmc});
    in.storage.disk = "mmcblk0";

    Seen seen;
    const auto r = runStorageJob(in, seen.callbacks(), {});

    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.disk->node, emmc.node);
    EXPECT_TRUE(std::equal(image.begin(), image.end(), readFile(emmc.node).begin()));
    EXPECT_EQ(readFile(sd.node), Bytes(kDiskSize, 0xA5));
}

TEST_F(StorageJobTest, DiskChoiceErrorsListTheDisksSeen) {
    writeFile(dir / "os.img", makeImage(1u << 20));
    const BoardDisk sd = virtualDisk("sd.img", "mmcblk1");
    const BoardDisk emmc = virtualDisk("emmc.img", "mmcblk0");

    {  // no disk at all
        auto in = input(dir / "os.img", {});
        in.usbDeviceSysfs = "/sys/devices/usb1/1-1/1-1.3";
        Seen seen;
        const auto r = runStorageJob(in, seen.callbacks(), {});
        EXPECT_FALSE(r.ok);
        EXPECT_THAT(r.error, HasSubstr("no disk appeared"));
        EXPECT_THAT(r.error, HasSubstr("1-1.3"));
        EXPECT_FALSE(r.disk);
        EXPECT_TRUE(seen.stages.empty());
        const auto j = record(r);
        EXPECT_EQ(j["outcome"], "failed");
        EXPECT_EQ(j["error"], r.error);
        EXPECT_TRUE(j["write"].is_null());
    }
    {  // two disks, the profile names none
        Seen seen;
        const auto r = runStorageJob(input(dir / "os.img", {sd, emmc}), seen.callbacks(), {});
        EXPECT_FALSE(r.ok);
        EXPECT_THAT(r.error, HasSubstr("2 disks"));
        EXPECT_THAT(r.error, HasSubstr(sd.node + " (model \"mmcblk1\""));
        EXPECT_THAT(r.error, HasSubstr(emmc.node + " (model \"mmcblk0\""));
        EXPECT_TRUE(seen.stages.empty());
    }
    {  // no disk of that model
        auto in = input(dir / "os.img", {sd, emmc});
        in.storage.disk = "nvme0n1";
        const auto r = runStorageJob(in, {}, {});
        EXPECT_FALSE(r.ok);
        EXPECT_THAT(r.error, HasSubstr("no disk with model \"nvme0n1\""));
        EXPECT_THAT(r.error, HasSubstr("mmcblk1"));
        EXPECT_THAT(r.error, HasSubstr("mmcblk0"));
    }
    {  // the model is ambiguous
        BoardDisk twin = virtualDisk("twin.img", "mmcblk0");
        auto in = input(dir / "os.img", {emmc, twin});
        in.storage.disk = "mmcblk0";
        const auto r = runStorageJob(in, {}, {});
        EXPECT_FALSE(r.ok);
        EXPECT_THAT(r.error, HasSubstr("2 disks with model \"mmcblk0\""));
    }
    EXPECT_EQ(readFile(sd.node), Bytes(kDiskSize, 0xA5));
    EXPECT_EQ(readFile(emmc.node), Bytes(kDiskSize, 0xA5));
}

TEST_F(StorageJobTest, RefusesAnImageLargerThanTheDisk) {
    writeFile(dir / "os.img.zst", rpiboot::storage::test::zst(makeImage(3u << 20)));
    const BoardDisk small = virtualDisk("small.img", "mmcblk0", 2u << 20);

    Seen seen;
    const auto r = runStorageJob(input(dir / "os.img.zst", {small}), seen.callbacks(), {});

    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("larger than the disk"));
    EXPECT_THAT(r.error, HasSubstr(small.node));
    EXPECT_TRUE(seen.stages.empty());
    EXPECT_EQ(readFile(small.node), Bytes(2u << 20, 0xA5));
    EXPECT_EQ(record(r)["outcome"], "failed");
}

TEST_F(StorageJobTest, AVirtualTargetMustBeARegularFile) {
    writeFile(dir / "os.img", makeImage(1u << 20));
    BoardDisk notAFile{dir.mkdir("adir").string(), "", "mmcblk0", kDiskSize, ""};
    const auto r = runStorageJob(input(dir / "os.img", {notAFile}), {}, {});
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("regular file"));
}

TEST_F(StorageJobTest, AMissingImageIsAClearFailure) {
    const BoardDisk disk = virtualDisk("board.img", "mmcblk0");
    const auto r = runStorageJob(input(dir / "absent.img", {disk}), {}, {});
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("absent.img"));
    EXPECT_EQ(readFile(disk.node), Bytes(kDiskSize, 0xA5));
    EXPECT_EQ(record(r)["outcome"], "failed");
}

TEST_F(StorageJobTest, AStopRequestedBeforehandWritesNothing) {
    writeFile(dir / "os.img", makeImage(1u << 20));
    const BoardDisk disk = virtualDisk("board.img", "mmcblk0");
    std::stop_source source;
    source.request_stop();

    Seen seen;
    const auto r =
        runStorageJob(input(dir / "os.img", {disk}), seen.callbacks(), source.get_token());

    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("cancelled"));
    EXPECT_TRUE(seen.stages.empty());
    EXPECT_EQ(readFile(disk.node), Bytes(kDiskSize, 0xA5));
}

TEST_F(StorageJobTest, AStopDuringTheWriteCancelsIt) {
    const Bytes image = makeImage(24u << 20, 5);
    writeFile(dir / "os.img", image);
    const BoardDisk disk = virtualDisk("board.img", "mmcblk0", 32u << 20);
    std::stop_source source;
    Seen seen;
    auto callbacks = seen.callbacks();
    callbacks.progress = [&](std::uint64_t w, std::uint64_t t) {
        seen.progress.emplace_back(w, t);
        source.request_stop();  // after the first buffer
    };

    const auto r = runStorageJob(input(dir / "os.img", {disk}), callbacks, source.get_token());

    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("cancelled"));
    EXPECT_THAT(seen.stages, ElementsAre("writing"));
    ASSERT_TRUE(r.write);
    EXPECT_EQ(r.write->outcome, rpiboot::storage::WriteOutcome::Cancelled);
    EXPECT_LT(r.write->bytesWritten, image.size());
    const auto j = record(r);
    EXPECT_EQ(j["outcome"], "failed");
    EXPECT_EQ(j["write"]["result"], "cancelled");
}

TEST_F(StorageJobTest, ARecordThatCannotBeWrittenFailsTheJob) {
    writeFile(dir / "os.img", makeImage(1u << 20));
    auto in = input(dir / "os.img", {virtualDisk("board.img", "mmcblk0")});
    in.recordDir = dir.write("not-a-dir", "x");
    const auto r = runStorageJob(in, {}, {});
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("boot record"));
    ASSERT_TRUE(r.write);
    EXPECT_EQ(r.write->outcome, rpiboot::storage::WriteOutcome::Verified);
}

TEST_F(StorageJobTest, NoRecordDirectoryNoRecord) {
    writeFile(dir / "os.img", makeImage(1u << 20));
    auto in = input(dir / "os.img", {virtualDisk("board.img", "mmcblk0")});
    in.recordDir.clear();
    const auto r = runStorageJob(in, {}, {});
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_TRUE(r.record.empty());
    EXPECT_FALSE(fs::exists(dir / "records"));
}

// Real disks: a fake sysfs with the board's disk sdb under port 1-1.3 and a
// decoy sdc under 1-1.4. The nodes are regular files standing in for /dev.
constexpr const char* kPort = "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.3";
constexpr const char* kOtherPort = "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4";

class RealDiskTest : public StorageJobTest {
  protected:
    RealDiskTest() {
        sdb = disk(std::string(kPort) + "/1-1.3:1.0/host6/target6:0:0/6:0:0:0/block/sdb", "sdb",
                   "8:16");
        sdc = disk(std::string(kOtherPort) + "/1-1.4:1.0/host7/target7:0:0/7:0:0:0/block/sdc",
                   "sdc", "8:32");
        mounts("");
        writeFile(dir / "os.img", makeImage(1u << 20));
    }
    BoardDisk disk(const std::string& devpath, const std::string& name, const std::string& dev) {
        dir.mkdir("sys/" + devpath + "/holders");
        dir.write("sys/" + devpath + "/dev", dev + "\n");
        dir.write("sys/" + devpath + "/size", std::to_string(kDiskSize / 512) + "\n");
        dir.write("sys/" + devpath + "/ro", "0\n");
        dir.symlink("sys/class/block/" + name, "../../" + devpath);
        const fs::path node = dir.mkdir("dev") / name;
        writeFile(node, Bytes(kDiskSize, 0xA5));
        return BoardDisk{node.string(), "", "mmcblk0", kDiskSize, "/sys/" + devpath};
    }
    void mounts(const std::string& extra) {
        dir.write("mountinfo", "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n" + extra);
    }
    StorageJobInput realInput(std::vector<BoardDisk> disks) {
        auto in = input(dir / "os.img", std::move(disks));
        in.virtualTarget = false;
        in.usbDeviceSysfs = std::string("/sys/") + kPort;
        in.sysfsRoot = dir / "sys";
        in.mountInfo = dir / "mountinfo";
        return in;
    }

    BoardDisk sdb;
    BoardDisk sdc;
};

TEST_F(RealDiskTest, AMountedDiskIsRefusedAndLeftUnchanged) {
    mounts("40 22 8:16 / /media/board rw,relatime shared:30 - vfat /dev/sdb rw\n");
    Seen seen;
    const auto r = runStorageJob(realInput({sdb}), seen.callbacks(), {});
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("refusing to write " + sdb.node));
    EXPECT_THAT(r.error, HasSubstr("mounted"));
    EXPECT_TRUE(seen.stages.empty());
    EXPECT_EQ(readFile(sdb.node), Bytes(kDiskSize, 0xA5));
    EXPECT_EQ(record(r)["outcome"], "failed");
}

TEST_F(RealDiskTest, ADecoyDiskUnderAnotherPortIsRefused) {
    Seen seen;
    const auto r = runStorageJob(realInput({sdc}), seen.callbacks(), {});
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("refusing to write " + sdc.node));
    EXPECT_THAT(r.error, Not(HasSubstr("not a block device")));  // refused by its ancestry
    EXPECT_TRUE(seen.stages.empty());
    EXPECT_EQ(readFile(sdc.node), Bytes(kDiskSize, 0xA5));
}

TEST_F(RealDiskTest, ANodeThatIsNotTheCheckedBlockDeviceIsRefused) {
    // sdb passes the sysfs checks, but its node here is a regular file.
    const auto passes = runStorageJob(realInput({sdb}), {}, {});
    EXPECT_FALSE(passes.ok);
    EXPECT_THAT(passes.error, HasSubstr("is not a block device"));
    // A node whose name differs from the sysfs entry it claims.
    BoardDisk mixed = sdb;
    mixed.node = sdc.node;
    const auto r = runStorageJob(realInput({mixed}), {}, {});
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("does not match its sysfs entry"));
    EXPECT_EQ(readFile(sdb.node), Bytes(kDiskSize, 0xA5));
    EXPECT_EQ(readFile(sdc.node), Bytes(kDiskSize, 0xA5));
}

TEST_F(RealDiskTest, AnImageLargerThanTheDiskIsRefusedBySysfsSize) {
    writeFile(dir / "big.img", makeImage(kDiskSize + 4096));
    auto in = realInput({sdb});
    in.storage.image = dir / "big.img";
    const auto r = runStorageJob(in, {}, {});
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("larger than"));
    EXPECT_EQ(readFile(sdb.node), Bytes(kDiskSize, 0xA5));
}

// The image a profile names must be there when the configuration is
// activated: a profile in use without it fails the load; an unused one is
// only marked unavailable.
class StorageActivation : public ::testing::Test {
  protected:
    rpiboot::Configuration configuration(const std::string& defaultProfile) {
        rpiboot::DaemonConfig daemon = rpiboot::defaultDaemonConfig();
        daemon.profilesDir.clear();
        daemon.firmwareDir = dir.mkdir("firmware");
        daemon.defaultProfile = defaultProfile;
        auto profiles = builtinProfiles();
        profiles.push_back({"w.json", R"({"name": "w", "firmware": {"root": "msd"},
            "storage": {"image": ")" + (dir / "absent.img.zst").string() +
                                          "\"}}"});
        return rpiboot::buildConfiguration(std::move(daemon), profiles);
    }
    ScratchDir dir;
    Logger log{LogTargets{false, false, 0}};
};

TEST_F(StorageActivation, AProfileInUseWithoutItsImageFailsTheLoad) {
    try {
        activate(configuration("w"), std::make_shared<rpiboot::FileCache>(), &log);
        FAIL() << "activated";
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::NotFound);
        EXPECT_THAT(e.what(), HasSubstr("w.json: /storage/image: image " +
                                        (dir / "absent.img.zst").string()));
    }
}

TEST_F(StorageActivation, AnUnusedProfileWithoutItsImageIsOnlyUnavailable) {
    EXPECT_NO_THROW(activate(configuration("msd"), std::make_shared<rpiboot::FileCache>(), &log));
    writeFile(dir / "absent.img.zst", Bytes(16, 1));
    EXPECT_NO_THROW(activate(configuration("w"), std::make_shared<rpiboot::FileCache>(), &log));
}

}  // namespace
}  // namespace rpibootd
