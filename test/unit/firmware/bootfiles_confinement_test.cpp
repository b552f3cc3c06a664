// Confinement inside bootfiles.bin: case-insensitive member lookup must not
// become a way to reach another chip's members, a member outside the chip
// folder, or anything outside the boot set. (Traversal, absolute names,
// symlinks, NUL and over-long names are covered in test/unit/firmware.)
#include <gtest/gtest.h>

#include "../firmware/tar_builder.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/firmware/firmware_set.hpp"
#include "rpiboot_test/scratch_dir.hpp"

namespace rpiboot {
namespace {

const BoardContext kPi4{Chip::Bcm2711, "1-1", "1000000012345678"};

std::string text(const Lookup& lookup) {
    if (!lookup.found()) {
        return "<not found: " + lookup.refusal + ">";
    }
    return std::string(lookup.file->bytes.begin(), lookup.file->bytes.end());
}

class BootfilesConfinementTest : public ::testing::Test {
  protected:
    BootfilesConfinementTest() {
        tree.mkdir("set");
        tree.write("secret.txt", "outside the set");
        tree.writeBytes("set/bootfiles.bin",
                        test::makeTar({{"2711/start4.elf", "first 2711 start4"},
                                       {"2711/START4.ELF", "second spelling"},
                                       {"2712/secret5.bin", "2712 only"},
                                       {"top.txt", "archive top level"},
                                       {"2711/../../secret.txt", "member named with dots"},
                                       {"/2711/abs.txt", "absolute member"}}));
        FirmwareSetConfig config;
        config.root = tree / "set";
        fw = std::make_unique<FirmwareSet>(std::move(config), std::make_shared<FileCache>());
    }

    test::ScratchDir tree;
    std::unique_ptr<FirmwareSet> fw;
};

TEST_F(BootfilesConfinementTest, EverySpellingOfAMemberGetsTheSameFirstMember) {
    EXPECT_EQ(text(fw->resolve("start4.elf", kPi4)), "first 2711 start4");
    EXPECT_EQ(text(fw->resolve("START4.ELF", kPi4)), "first 2711 start4");
    EXPECT_EQ(text(fw->resolve("Start4.Elf", kPi4)), "first 2711 start4");
}

TEST_F(BootfilesConfinementTest, AnotherChipsMemberIsNotReachedByNamingItsFolder) {
    EXPECT_FALSE(fw->resolve("2712/secret5.bin", kPi4).found());
    EXPECT_FALSE(fw->resolve("2712/SECRET5.BIN", kPi4).found());
    EXPECT_FALSE(fw->resolve("secret5.bin", kPi4).found());
}

TEST_F(BootfilesConfinementTest, MembersOutsideTheChipFolderAreNotServed) {
    EXPECT_FALSE(fw->resolve("top.txt", kPi4).found());
    EXPECT_FALSE(fw->resolve("TOP.TXT", kPi4).found());
    EXPECT_FALSE(fw->resolve("abs.txt", kPi4).found());
}

TEST_F(BootfilesConfinementTest, DottedMemberNamesCannotBeAskedFor) {
    const Lookup dots = fw->resolve("../../secret.txt", kPi4);
    EXPECT_FALSE(dots.found());
    EXPECT_NE(dots.refusal.find(".."), std::string::npos) << dots.refusal;
    EXPECT_FALSE(fw->resolve("secret.txt", kPi4).found());
}

TEST_F(BootfilesConfinementTest, UnicodeCaseFoldingLookalikesAreRefused) {
    // U+017F LATIN SMALL LETTER LONG S folds to 's' and U+212A KELVIN SIGN to
    // 'k' under Unicode rules; names are ASCII-only, so neither reaches a member.
    for (const char* name : {"\xc5\xbftart4.elf", "start4.elf\xe2\x84\xaa", "START4.EL\xc6\x92"}) {
        const Lookup lookup = fw->resolve(name, kPi4);
        EXPECT_FALSE(lookup.found()) << name;
        EXPECT_FALSE(lookup.refusal.empty()) << name;
    }
}

TEST_F(BootfilesConfinementTest, CaseTricksOnTheArchiveNameDoNotServeOutsideTheSet) {
    // The archive itself is a file inside the set; other spellings of it are
    // not (the disk is case-sensitive) and nothing outside is reached.
    EXPECT_FALSE(fw->resolve("BOOTFILES.BIN/2711/start4.elf", kPi4).found());
    EXPECT_FALSE(fw->resolve("bootfiles.bin/2711/start4.elf", kPi4).found());
}

}  // namespace
}  // namespace rpiboot
