// rpibootd --check-config's completeness check: the built-in profiles against
// a firmware base laid out as rpibootd-fetch-firmware installs it
// (firmware/README.md), complete and with files taken away.
#include "firmware_check.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "active_config.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot_test/scratch_dir.hpp"

namespace rpibootd {
namespace {

namespace fs = std::filesystem;
using rpiboot::test::ScratchDir;
const fs::path kFixtures{RPIBOOT_FIXTURES_DIR};

// The installed layout; small stand-ins where the file's content does not matter here.
fs::path makeInstalledBase(const ScratchDir& scratch) {
    const fs::path base = scratch.mkdir("fw");
    auto copy = [&](const fs::path& fixture, const fs::path& to) {
        fs::create_directories((base / to).parent_path());
        fs::copy_file(kFixtures / fixture, base / to);
    };
    copy("bootfiles.bin", "bootfiles.bin");
    copy("msd/bootcode.bin", "msd/bootcode.bin");
    copy("msd/start.elf", "msd/start.elf");
    copy("msd/start.elf", "msd/start4.elf");
    copy("2711/bootcode4.bin", "msd/bootcode4.bin");
    copy("mass-storage-gadget64/config.txt", "mass-storage-gadget64/config.txt");
    scratch.write("fw/mass-storage-gadget64/boot.img", "gadget image");
    copy("recovery/config.txt", "recovery/config.txt");
    copy("recovery/boot.conf", "recovery/boot.conf");
    for (const char* set : {"recovery", "secure-boot-recovery"}) {
        const std::string s(set);
        scratch.write("fw/" + s + "/2711/pieeprom.original.bin", "2711 image");
        scratch.write("fw/" + s + "/2712/pieeprom.original.bin", "2712 image");
        scratch.write("fw/" + s + "/2712/config.txt", "2712 config");
        scratch.write("fw/" + s + "/2712/boot.conf", "[all]\n");
    }
    scratch.write("fw/recovery/2711/bootcode4.bin", "recovery.bin 2711");
    scratch.write("fw/recovery/2712/bootcode5.bin", "recovery.bin 2712");
    scratch.write("fw/secure-boot-recovery/config.txt", "config");
    // eeprom-erase: its config.txt (erase_eeprom=1); the loaders come from recovery/.
    scratch.write("fw/eeprom-erase/config.txt", "erase_eeprom=1\n");
    scratch.write("fw/secure-boot-recovery/boot.conf", "[all]\n");
    copy("2711/bootcode4.bin", "secure-boot-msd/2711/bootcode4.bin");
    for (const char* chip : {"2711", "2712"}) {
        const std::string c(chip);
        scratch.write("fw/secure-boot-msd/" + c + "/boot.img", "image");
        scratch.write("fw/secure-boot-msd/" + c + "/config.txt", "config");
    }
    return base;
}

std::map<std::string, rpiboot::Profile> builtins(const fs::path& base) {
    std::map<std::string, rpiboot::Profile> out;
    for (const auto& text : builtinProfiles()) {
        rpiboot::Profile p = rpiboot::parseProfile(text.text, text.label, base);
        out.emplace(p.name, std::move(p));
    }
    return out;
}

class FirmwareCheckTest : public ::testing::Test {
  protected:
    ScratchDir scratch_;
    fs::path base_ = makeInstalledBase(scratch_);
    std::shared_ptr<rpiboot::FileCache> cache_ = std::make_shared<rpiboot::FileCache>();

    FirmwareCompleteness check(const std::string& profile) {
        return checkFirmwareSet(builtins(base_).at(profile), cache_);
    }
};

TEST_F(FirmwareCheckTest, EveryBuiltInProfileDeclaresItsFilesAndIsCompleteWhenInstalled) {
    const auto profiles = builtins(base_);
    ASSERT_EQ(profiles.size(), 7u);
    for (const auto& [name, profile] : profiles) {
        const FirmwareCompleteness result = checkFirmwareSet(profile, cache_);
        EXPECT_TRUE(result.declared()) << name;
        EXPECT_TRUE(result.complete()) << name << ": " << describe(result);
        EXPECT_EQ(describe(result).rfind("complete (", 0), 0u) << describe(result);
    }
    EXPECT_EQ(check("msd").chips, (std::vector<std::string>{"2835", "2837", "2711"}));
    EXPECT_EQ(check("recovery").chips, (std::vector<std::string>{"2711", "2712"}));
    EXPECT_EQ(describe(check("msd")), "complete (2835, 2837, 2711: 6 files)");
}

TEST_F(FirmwareCheckTest, AMissingFileMakesOnlyItsProfilesIncompleteAndIsNamed) {
    fs::remove(base_ / "mass-storage-gadget64/config.txt");
    const FirmwareCompleteness gadget = check("mass-storage-gadget");
    EXPECT_FALSE(gadget.complete());
    EXPECT_EQ(gadget.missing, (std::vector<std::string>{"2711/config.txt", "2712/config.txt"}));
    EXPECT_EQ(describe(gadget), "INCOMPLETE: missing 2711/config.txt, 2712/config.txt");
    EXPECT_TRUE(check("msd").complete());
    EXPECT_TRUE(check("recovery").complete());
}

TEST_F(FirmwareCheckTest, AFileOnlyTheEmbeddedFirmwareHasIsNamedAsSuch) {
    fs::remove(base_ / "msd/start4.elf");
    const FirmwareCompleteness msd = check("msd");
    EXPECT_TRUE(msd.complete());
    EXPECT_EQ(msd.embedded, std::vector<std::string>{"2711/start4.elf"});
    EXPECT_EQ(describe(msd),
              "complete (2835, 2837, 2711: 6 files; from the embedded firmware: 2711/start4.elf)");
}

TEST_F(FirmwareCheckTest, AMissingFileIsNamedWhenTheEmbeddedFirmwareIsOff) {
    fs::remove(base_ / "msd/start4.elf");
    rpiboot::Profile profile = builtins(base_).at("msd");
    profile.firmware.embedded = false;
    const FirmwareCompleteness msd = checkFirmwareSet(profile, cache_);
    EXPECT_FALSE(msd.complete());
    EXPECT_EQ(msd.missing, std::vector<std::string>{"2711/start4.elf"});
    EXPECT_EQ(describe(msd), "INCOMPLETE: missing 2711/start4.elf");
}

TEST_F(FirmwareCheckTest, LoadersInsideTheBasesBootfilesCount) {
    // The gadget set has no loaders of its own: both come from the base's
    // bootfiles.bin.
    EXPECT_FALSE(fs::exists(base_ / "mass-storage-gadget64/bootcode5.bin"));
    EXPECT_TRUE(check("mass-storage-gadget").complete());
    fs::remove(base_ / "bootfiles.bin");
    const FirmwareCompleteness gadget = check("mass-storage-gadget");
    EXPECT_EQ(gadget.missing,
              (std::vector<std::string>{"2711/bootcode4.bin", "2712/bootcode5.bin"}));
}

TEST_F(FirmwareCheckTest, RecoveryNeedsItsOwnLoadersNotTheBootfilesOnes) {
    fs::remove(base_ / "recovery/2712/bootcode5.bin");
    fs::remove(base_ / "recovery/2711/pieeprom.original.bin");
    const FirmwareCompleteness recovery = check("recovery");
    EXPECT_EQ(recovery.missing,
              (std::vector<std::string>{"2711/pieeprom.original.bin", "2712/bootcode5.bin"}));
}

TEST_F(FirmwareCheckTest, AMissingSetDirectoryCannotBeOpened) {
    fs::remove_all(base_ / "secure-boot-msd");
    const FirmwareCompleteness result = check("secure-boot-msd");
    EXPECT_FALSE(result.opened);
    EXPECT_FALSE(result.complete());
    EXPECT_EQ(describe(result).rfind("cannot open: ", 0), 0u) << describe(result);
    EXPECT_NE(describe(result).find("secure-boot-msd"), std::string::npos);
}

TEST_F(FirmwareCheckTest, AFileLinkedFromOutsideTheTreeIsRefusedNotComplete) {
    ScratchDir outside;
    const fs::path elsewhere = outside.write("start4.elf", "not ours");
    fs::remove(base_ / "msd/start4.elf");
    fs::create_symlink(elsewhere, base_ / "msd/start4.elf");
    const FirmwareCompleteness msd = check("msd");
    ASSERT_EQ(msd.missing.size(), 1u);
    EXPECT_EQ(msd.missing[0].rfind("2711/start4.elf (refused: ", 0), 0u) << msd.missing[0];
}

TEST_F(FirmwareCheckTest, AProfileWithoutRequirementsSaysSo) {
    const rpiboot::Profile p = rpiboot::parseProfile(
        R"({"name": "plain", "firmware": {"root": "msd"}})", "plain.json", base_);
    const FirmwareCompleteness result = checkFirmwareSet(p, cache_);
    EXPECT_FALSE(result.declared());
    EXPECT_EQ(describe(result), "no required files declared");
}

}  // namespace
}  // namespace rpibootd
