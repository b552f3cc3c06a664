// The storage step's profile keys: "storage", "after_success",
// "forget_after_s" and "timeouts.after_boot_ms", their defaults, path
// resolution, errors naming file and pointer, and the load-time file check.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/profile/profile.hpp"
#include "rpiboot_test/scratch_dir.hpp"

namespace rpiboot {
namespace {

using test::ScratchDir;
using ::testing::HasSubstr;

namespace fs = std::filesystem;
const fs::path kBase = "/srv/firmware";

Profile parse(const std::string& extra) {
    return parseProfile(R"({"name": "w", "firmware": {"root": "msd"})" + extra + "}", "p.json",
                        kBase);
}

std::string parseError(const std::string& extra) {
    try {
        parse(extra);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::InvalidArgument);
        return e.what();
    }
    ADD_FAILURE() << "profile was accepted: " << extra;
    return {};
}

TEST(StorageProfile, NoStorageSectionByDefault) {
    const Profile p = parse("");
    EXPECT_FALSE(p.storage);
    EXPECT_EQ(p.timeouts.afterBoot.count(), 30000);
    EXPECT_EQ(p.afterSuccess, AfterSuccess::BootAgain);
    EXPECT_EQ(p.forgetAfter.count(), 5);
}

TEST(StorageProfile, ReadsEveryKeyWithDefaults) {
    const Profile p = parse(R"(, "storage": {"image": "/images/os.img.zst",
        "bmap": "/images/os.img.bmap", "disk": "mmcblk0", "verify": false})");
    ASSERT_TRUE(p.storage);
    EXPECT_EQ(p.storage->image, "/images/os.img.zst");
    EXPECT_EQ(p.storage->bmap, fs::path("/images/os.img.bmap"));
    EXPECT_EQ(p.storage->disk, "mmcblk0");
    EXPECT_FALSE(p.storage->verify);

    const Profile d = parse(R"(, "storage": {"image": "/images/os.img"})");
    ASSERT_TRUE(d.storage);
    EXPECT_FALSE(d.storage->bmap);
    EXPECT_EQ(d.storage->disk, "");
    EXPECT_TRUE(d.storage->verify);
}

TEST(StorageProfile, BuiltInProfilesResolveRelativePathsAgainstTheFirmwareBase) {
    const Profile p = parse(R"(, "storage": {"image": "images/os.img", "bmap": "images/os.bmap"})");
    EXPECT_EQ(p.storage->image, "/srv/firmware/images/os.img");
    EXPECT_EQ(p.storage->bmap, fs::path("/srv/firmware/images/os.bmap"));
}

TEST(StorageProfile, ProfileFilesResolveRelativePathsAgainstTheirDirectory) {
    ScratchDir dir;
    const fs::path file = dir.write("profiles/w.json", R"({"name": "w", "firmware": {"root": "msd"},
        "storage": {"image": "../images/./os.img.xz", "bmap": "os.bmap"}})");
    const Profile p = loadProfileFile(file, kBase);
    EXPECT_EQ(p.storage->image, dir.path() / "images/os.img.xz");
    EXPECT_EQ(p.storage->bmap, dir.path() / "profiles/os.bmap");
    EXPECT_EQ(p.firmware.root, "/srv/firmware/msd");  // firmware paths are unchanged
}

TEST(StorageProfile, InvalidStorageSectionsNameTheKey) {
    EXPECT_EQ(parseError(R"(, "storage": {"bmap": "/i/os.bmap"})"),
              "p.json: /storage/image: missing: the OS image to write (.img, .img.xz, .img.zst, "
              ".img.gz)");
    EXPECT_EQ(parseError(R"(, "storage": {"image": "/i/os.img", "imge": "x"})"),
              "p.json: /storage/imge: unknown key (misspelt?)");
    EXPECT_EQ(parseError(R"(, "storage": {"image": "/i/os.img", "verify": "yes"})"),
              "p.json: /storage/verify: expected true or false, found a string");
    EXPECT_EQ(parseError(R"(, "storage": {"image": ""})"),
              "p.json: /storage/image: must not be empty");
    EXPECT_EQ(parseError(R"(, "storage": {"image": "/i/os.img", "disk": ""})"),
              "p.json: /storage/disk: must not be empty");
    EXPECT_EQ(parseError(R"(, "storage": {"image": "/i/os.img", "bmap": "/i/os.img"})"),
              "p.json: /storage/bmap: is the image itself; give the image's .bmap file");
    EXPECT_EQ(parseError(R"(, "storage": "/i/os.img")"),
              "p.json: /storage: expected an object, found a string");
}

TEST(StorageProfile, AfterBootTimeoutIsReadAndRangeChecked) {
    EXPECT_EQ(parse(R"(, "timeouts": {"after_boot_ms": 90000})").timeouts.afterBoot.count(), 90000);
    EXPECT_EQ(parseError(R"(, "timeouts": {"after_boot_ms": 0})"),
              "p.json: /timeouts/after_boot_ms: 0 is out of range (1 to 600000 ms)");
}

TEST(StorageProfile, AfterSuccessPolicies) {
    EXPECT_EQ(parse(R"(, "after_success": "boot-again")").afterSuccess, AfterSuccess::BootAgain);
    EXPECT_EQ(parse(R"(, "after_success": "once")").afterSuccess, AfterSuccess::Once);
    EXPECT_EQ(parse(R"(, "after_success": "once-per-serial")").afterSuccess,
              AfterSuccess::OncePerSerial);
    const Profile p = parse(R"(, "after_success": "once", "forget_after_s": 120)");
    EXPECT_EQ(p.forgetAfter.count(), 120);
    EXPECT_EQ(toString(AfterSuccess::OncePerSerial), "once-per-serial");
}

TEST(StorageProfile, InvalidAfterSuccessSettingsAreRejected) {
    EXPECT_EQ(parseError(R"(, "after_success": "never")"),
              "p.json: /after_success: \"never\" is not one of \"boot-again\", \"once\", "
              "\"once-per-serial\"");
    EXPECT_EQ(parseError(R"(, "after_success": "once", "forget_after_s": 0)"),
              "p.json: /forget_after_s: 0 is out of range (1 to 86400)");
    EXPECT_EQ(parseError(R"(, "after_success": "once", "forget_after_s": 86401)"),
              "p.json: /forget_after_s: 86401 is out of range (1 to 86400)");
    EXPECT_EQ(parseError(R"(, "forget_after_s": 10)"),
              "p.json: /forget_after_s: only used with \"after_success\": \"once\" (this "
              "profile's is \"boot-again\")");
}

TEST(StorageProfile, EepromProfilesDefaultToOnce) {
    const Profile p =
        parse(R"(, "eeprom": {"image": "pieeprom.original.bin", "config": "boot.conf"})");
    EXPECT_EQ(p.afterSuccess, AfterSuccess::Once);
    const Profile q = parse(R"(, "eeprom": {"image": "pieeprom.original.bin",
        "config": "boot.conf"}, "after_success": "boot-again")");
    EXPECT_EQ(q.afterSuccess, AfterSuccess::BootAgain);
    // forget_after_s applies to the default "once" as well.
    EXPECT_EQ(parse(R"(, "eeprom": {"image": "i", "config": "c"}, "forget_after_s": 30)")
                  .forgetAfter.count(),
              30);
}

TEST(StorageProfile, ShippedProfilesHaveTheirPolicies) {
    const fs::path dir = fs::path(RPIBOOT_SOURCE_DIR) / "config/profiles";
    for (const char* name :
         {"recovery", "secure-boot-recovery", "secure-boot-recovery5", "eeprom-erase"}) {
        EXPECT_EQ(loadProfileFile(dir / (std::string(name) + ".json"), kBase).afterSuccess,
                  AfterSuccess::Once)
            << name;
    }
    for (const char* name : {"msd", "mass-storage-gadget", "secure-boot-msd"}) {
        const Profile p = loadProfileFile(dir / (std::string(name) + ".json"), kBase);
        EXPECT_EQ(p.afterSuccess, AfterSuccess::BootAgain) << name;
        EXPECT_FALSE(p.storage) << name;
    }
}

class StorageFiles : public ::testing::Test {
  protected:
    Profile withStorage(const std::string& image, const std::string& bmap = "") {
        Profile p =
            parse(R"(, "storage": {"image": ")" + (dir / image).string() + "\"" +
                  (bmap.empty() ? "" : R"(, "bmap": ")" + (dir / bmap).string() + "\"") + "}");
        return p;
    }
    Error thrown(const Profile& p) {
        try {
            checkProfileStorage(p);
        } catch (const Error& e) {
            return e;
        }
        ADD_FAILURE() << "accepted";
        return Error(Errc::Io, "");
    }
    ScratchDir dir;
};

TEST_F(StorageFiles, PresentFilesPass) {
    dir.write("os.img.zst", "x");
    dir.write("os.bmap", "x");
    EXPECT_NO_THROW(checkProfileStorage(withStorage("os.img.zst", "os.bmap")));
    EXPECT_NO_THROW(checkProfileStorage(parse("")));  // no storage section: nothing to check
}

TEST_F(StorageFiles, AMissingImageIsNotFoundNamingTheFile) {
    const Error e = thrown(withStorage("absent.img"));
    EXPECT_EQ(e.code(), Errc::NotFound);
    EXPECT_THAT(e.what(),
                HasSubstr("p.json: /storage/image: image " + (dir / "absent.img").string()));
}

TEST_F(StorageFiles, AMissingBmapIsNotFoundNamingTheFile) {
    dir.write("os.img", "x");
    const Error e = thrown(withStorage("os.img", "absent.bmap"));
    EXPECT_EQ(e.code(), Errc::NotFound);
    EXPECT_THAT(e.what(), HasSubstr("/storage/bmap: bmap file " + (dir / "absent.bmap").string()));
}

TEST_F(StorageFiles, ADirectoryIsNotAnImage) {
    dir.mkdir("images");
    const Error e = thrown(withStorage("images"));
    EXPECT_EQ(e.code(), Errc::InvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("is not a regular file"));
}

}  // namespace
}  // namespace rpiboot
