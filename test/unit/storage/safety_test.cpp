// Target safety checks over a fake sysfs tree and mountinfo: only a whole,
// unmounted, unheld disk under the board's own USB port passes.
#include "rpiboot/storage/safety.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rpiboot_test/scratch_dir.hpp"

namespace rpiboot::storage {
namespace {

using rpiboot::test::ScratchDir;
using ::testing::HasSubstr;

constexpr const char* kHub = "devices/pci0000:00/0000:00:14.0/usb1/1-1";
constexpr const char* kPort = "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.3";
constexpr const char* kOther = "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4";
constexpr const char* kPortLike = "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.30";

// A fake sysfs: the board's disk sdb (with partition sdb1) under 1-1.3, a
// decoy disk sdc under 1-1.4, sdd under 1-1.30, and the host's own disk sda.
class FakeSysfs {
  public:
    FakeSysfs() {
        disk("devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda", "sda",
             "8:0", 1000000);
        disk(std::string(kPort) + "/1-1.3:1.0/host6/target6:0:0/6:0:0:0/block/sdb", "sdb", "8:16",
             131072);  // 64 MiB
        partition("sdb", "sdb1", "8:17");
        disk(std::string(kOther) + "/1-1.4:1.0/host7/target7:0:0/7:0:0:0/block/sdc", "sdc", "8:32",
             131072);
        disk(std::string(kPortLike) + "/1-1.30:1.0/host8/target8:0:0/8:0:0:0/block/sdd", "sdd",
             "8:48", 131072);
        mounts("");
    }
    void disk(const std::string& devpath, const std::string& name, const std::string& dev,
              std::uint64_t sectors) {
        const auto d = dir.mkdir("sys/" + devpath);
        dir.write("sys/" + devpath + "/dev", dev + "\n");
        dir.write("sys/" + devpath + "/size", std::to_string(sectors) + "\n");
        dir.write("sys/" + devpath + "/ro", "0\n");
        dir.mkdir("sys/" + devpath + "/holders");
        dir.symlink("sys/class/block/" + name, "../../" + devpath);
        paths[name] = devpath;
    }
    void partition(const std::string& diskName, const std::string& name, const std::string& dev) {
        const std::string p = paths[diskName] + "/" + name;
        dir.write("sys/" + p + "/dev", dev + "\n");
        dir.write("sys/" + p + "/partition", "1\n");
        dir.write("sys/" + p + "/size", "1000\n");
        dir.mkdir("sys/" + p + "/holders");
        dir.symlink("sys/class/block/" + name, "../../" + p);
        paths[name] = p;
    }
    void mounts(const std::string& extra) {
        dir.write("mountinfo",
                  "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
                  "25 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n" +
                      extra);
    }
    TargetCheck check(const std::string& name, const std::string& port = kPort) const {
        TargetCheck c;
        c.hasStorageSection = true;
        c.disk = name;
        c.usbDevice = port;
        c.sysfsRoot = dir / "sys";
        c.mountInfo = dir / "mountinfo";
        return c;
    }

    ScratchDir dir;
    std::map<std::string, std::string> paths;
};

TEST(CheckTarget, AcceptsTheWholeDiskUnderTheBoardsPort) {
    FakeSysfs fs;
    EXPECT_EQ(checkTarget(fs.check("sdb")), std::nullopt);
    auto c = fs.check("sdb", std::string("/sys/") + kPort);  // the udev spelling
    EXPECT_EQ(checkTarget(c), std::nullopt);
    c.imageSize = 64u << 20;
    EXPECT_EQ(checkTarget(c), std::nullopt);
    EXPECT_EQ(diskSizeBytes(fs.dir / "sys", "sdb"), 64u << 20);
}

TEST(CheckTarget, RefusesADecoyDiskOnAnotherPort) {
    FakeSysfs fs;
    const auto why = checkTarget(fs.check("sdc"));
    ASSERT_TRUE(why.has_value());
    EXPECT_THAT(*why, HasSubstr("sdc"));
    EXPECT_THAT(*why, HasSubstr("not on the board's USB device"));
    // 1-1.30 is not below 1-1.3 even though its name starts the same.
    EXPECT_THAT(checkTarget(fs.check("sdd")).value_or(""), HasSubstr("not on the board's"));
    // And the board's own disk is refused when the other port is named.
    EXPECT_TRUE(checkTarget(fs.check("sdb", kOther)).has_value());
}

struct Case {
    const char* name;
    void (*setup)(FakeSysfs&, TargetCheck&);
    const char* reason;
};
void PrintTo(const Case& c, std::ostream* os) {
    *os << c.name;
}

class CheckTargetRefuses : public ::testing::TestWithParam<Case> {};

TEST_P(CheckTargetRefuses, WithAReason) {
    FakeSysfs fs;
    TargetCheck c = fs.check("sdb");
    GetParam().setup(fs, c);
    const auto why = checkTarget(c);
    ASSERT_TRUE(why.has_value());
    EXPECT_THAT(*why, HasSubstr(GetParam().reason));
}

const Case kCases[] = {
    {"no_storage_section", [](FakeSysfs&, TargetCheck& c) { c.hasStorageSection = false; },
     "no storage section"},
    {"host_disk", [](FakeSysfs&, TargetCheck& c) { c.disk = "sda"; }, "not on the board's"},
    {"partition", [](FakeSysfs&, TargetCheck& c) { c.disk = "sdb1"; }, "is a partition"},
    {"unknown_disk", [](FakeSysfs&, TargetCheck& c) { c.disk = "sdz"; }, "no block device sdz"},
    {"path_in_name", [](FakeSysfs&, TargetCheck& c) { c.disk = "../sda"; }, "not a block device"},
    {"port_missing", [](FakeSysfs&, TargetCheck& c) { c.usbDevice = std::string(kPort) + "9"; },
     "is not in sysfs"},
    {"port_is_root", [](FakeSysfs&, TargetCheck& c) { c.usbDevice = "devices"; },
     "not a device path"},
    {"port_outside_sysfs", [](FakeSysfs&, TargetCheck& c) { c.usbDevice = "/dev/sdb"; },
     "not a sysfs path"},
    {"hub_too_wide", [](FakeSysfs&, TargetCheck& c) { c.usbDevice = kHub + std::string("/x"); },
     "is not in sysfs"},
    {"disk_mounted",
     [](FakeSysfs& fs, TargetCheck&) {
         fs.mounts("40 22 8:16 / /mnt rw,relatime shared:30 - vfat /dev/sdb rw\n");
     },
     "sdb is mounted (device 8:16 on /mnt)"},
    {"partition_mounted",
     [](FakeSysfs& fs, TargetCheck&) {
         fs.mounts("41 22 8:17 / /media/boot rw shared:31 - vfat /dev/sdb1 rw\n");
     },
     "mounted (device 8:17 on /media/boot)"},
    {"held_by_dm",
     [](FakeSysfs& fs, TargetCheck&) { fs.dir.mkdir("sys/" + fs.paths["sdb"] + "/holders/dm-0"); },
     "held by another block device (dm-0)"},
    {"partition_held",
     [](FakeSysfs& fs, TargetCheck&) { fs.dir.mkdir("sys/" + fs.paths["sdb1"] + "/holders/md0"); },
     "held by another block device (md0)"},
    {"read_only",
     [](FakeSysfs& fs, TargetCheck&) { fs.dir.write("sys/" + fs.paths["sdb"] + "/ro", "1\n"); },
     "read-only"},
    {"image_too_large", [](FakeSysfs&, TargetCheck& c) { c.imageSize = (64u << 20) + 1; },
     "larger than sdb"},
    {"no_mountinfo", [](FakeSysfs& fs, TargetCheck& c) { c.mountInfo = fs.dir / "absent"; },
     "cannot read"},
};

INSTANTIATE_TEST_SUITE_P(Storage, CheckTargetRefuses, ::testing::ValuesIn(kCases),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace rpiboot::storage
