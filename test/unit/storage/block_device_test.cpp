// The writer on a real block device (a loop device; skipped unless run as
// root with a working losetup): the disk's own size bounds the image, and a
// disk held open exclusively elsewhere is never written.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/storage/writer.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "rpiboot_test/thrown_by.hpp"
#include "storage_test_util.hpp"

namespace rpiboot::storage {
namespace {

using namespace rpiboot::storage::test;
using rpiboot::test::ScratchDir;
using rpiboot::test::thrownBy;
using ::testing::HasSubstr;

// A loop device over a file, detached when the object goes away.
class LoopDevice {
  public:
    explicit LoopDevice(const std::filesystem::path& backing) {
        if (::geteuid() != 0) {
            return;
        }
        FILE* p =
            ::popen(("losetup --find --show '" + backing.string() + "' 2>/dev/null").c_str(), "r");
        if (p == nullptr) {
            return;
        }
        char line[128] = {};
        const bool got = std::fgets(line, sizeof line, p) != nullptr;
        if (::pclose(p) == 0 && got) {
            std::string dev(line);
            dev.erase(dev.find_last_not_of('\n') + 1);
            device_ = dev;
        }
    }
    ~LoopDevice() {
        if (device_) {
            const int rc = std::system(("losetup -d " + *device_).c_str());
            (void)rc;
        }
    }
    const std::optional<std::string>& device() const { return device_; }

  private:
    std::optional<std::string> device_;
};

constexpr std::size_t kDisk = 8u << 20;

TEST(BlockDevice, WritesWithinTheDisksSizeAndRefusesLargerImages) {
    ScratchDir dir;
    const auto backing = dir / "disk.bin";
    writeFile(backing, Bytes(kDisk, 0));
    LoopDevice loop(backing);
    if (!loop.device()) {
        GTEST_SKIP() << "needs root and a working losetup";
    }
    const Bytes image = makeImage(kDisk / 2 + 512);
    writeFile(dir / "os.img.zst", zst(image));
    WriteOptions o;
    o.image = dir / "os.img.zst";
    o.target = *loop.device();
    const WriteResult r = writeImage(o);
    EXPECT_EQ(r.outcome, WriteOutcome::Verified) << r.message;
    EXPECT_TRUE(r.directIo);
    Bytes head = readFile(backing);
    head.resize(image.size());
    EXPECT_EQ(head, image);

    writeFile(dir / "big.img.xz", xz(makeImage(kDisk + 4096)));
    o.image = dir / "big.img.xz";
    const Error e = thrownBy([&] { writeImage(o); });
    EXPECT_EQ(e.code(), Errc::TooLarge);
    EXPECT_THAT(e.what(), HasSubstr("larger than"));
}

TEST(BlockDevice, ADiskHeldExclusivelyElsewhereIsNotWritten) {
    ScratchDir dir;
    const auto backing = dir / "disk.bin";
    writeFile(backing, Bytes(kDisk, 0x33));
    LoopDevice loop(backing);
    if (!loop.device()) {
        GTEST_SKIP() << "needs root and a working losetup";
    }
    const int holder = ::open(loop.device()->c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
    ASSERT_GE(holder, 0);
    writeFile(dir / "os.img", makeImage(1u << 20));
    WriteOptions o;
    o.image = dir / "os.img";
    o.target = *loop.device();
    const Error e = thrownBy([&] { writeImage(o); });
    ::close(holder);
    EXPECT_EQ(e.code(), Errc::Refused);
    EXPECT_THAT(e.what(), HasSubstr("O_EXCL"));
    EXPECT_EQ(readFile(backing), Bytes(kDisk, 0x33));
}

}  // namespace
}  // namespace rpiboot::storage
