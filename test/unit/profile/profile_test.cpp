// Profiles: parsing, path resolution, and errors that name file, key and reason.
#include "rpiboot/profile/profile.hpp"

#include <gtest/gtest.h>

#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot_test/scratch_dir.hpp"

namespace rpiboot {
namespace {

using test::ScratchDir;

const std::filesystem::path kBase = "/srv/firmware";

// The message of the Error that parsing `text` as profile "p.json" throws.
std::string profileError(const std::string& text) {
    try {
        parseProfile(text, "p.json", kBase);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::InvalidArgument);
        return e.what();
    }
    ADD_FAILURE() << "profile was accepted: " << text;
    return {};
}

TEST(Profile, ParsesEveryFieldAndResolvesRelativeFirmwarePathsAgainstTheBase) {
    const Profile p = parseProfile(R"({
        "name": "custom", "description": "a test set",
        "firmware": {"root": "msd", "port_overlays": true, "serial_overlays": "per-serial",
                     "fallback": ["common", "/abs/other"], "trusted": ["/shared"]},
        "signed_boot": true,
        "metadata": {"dir": "/var/lib/x"},
        "timeouts": {"control_ms": 1500, "bulk_ms": 6000, "request_ms": 25000,
                     "reenumerate_ms": 3000}})",
                                   "custom.json", kBase);
    EXPECT_EQ(p.name, "custom");
    EXPECT_EQ(p.description, "a test set");
    EXPECT_EQ(p.firmware.root, "/srv/firmware/msd");
    EXPECT_TRUE(p.firmware.portOverlays);
    EXPECT_EQ(p.firmware.serialOverlays, "/srv/firmware/per-serial");
    ASSERT_EQ(p.firmware.fallback.size(), 2U);
    EXPECT_EQ(p.firmware.fallback[0], "/srv/firmware/common");
    EXPECT_EQ(p.firmware.fallback[1], "/abs/other");
    EXPECT_TRUE(p.signedBoot);
    EXPECT_EQ(p.metadataDir, "/var/lib/x");
    EXPECT_EQ(p.timeouts.control.count(), 1500);
    EXPECT_EQ(p.timeouts.bulk.count(), 6000);
    EXPECT_EQ(p.timeouts.request.count(), 25000);
    EXPECT_EQ(p.timeouts.reenumerate.count(), 3000);
    EXPECT_EQ(p.source, "custom.json");
}

TEST(Profile, DefaultsApplyWhenOptionalKeysAreAbsent) {
    const Profile p = parseProfile(R"({"name": "m", "firmware": {"root": "m"}})", "m.json", kBase);
    EXPECT_FALSE(p.firmware.portOverlays);
    EXPECT_TRUE(p.firmware.serialOverlays.empty());
    EXPECT_FALSE(p.signedBoot);
    EXPECT_TRUE(p.metadataDir.empty());
    EXPECT_EQ(p.timeouts.control.count(), 1000);
    EXPECT_EQ(p.timeouts.bulk.count(), 5000);
    EXPECT_EQ(p.timeouts.request.count(), 20000);
    EXPECT_EQ(p.timeouts.reenumerate.count(), 10000);
}

TEST(Profile, RetriesBackoffAndBootDeadlineHaveDefaultsAndAreRead) {
    const Profile d = parseProfile(R"({"name": "m", "firmware": {"root": "m"}})", "m.json", kBase);
    EXPECT_EQ(d.retries.attempts, 2U);
    EXPECT_EQ(d.retries.backoff.count(), 1000);
    EXPECT_EQ(d.timeouts.boot.count(), 300000);
    const Profile p = parseProfile(R"({"name": "m", "firmware": {"root": "m"}, "retries": 5,
        "retry_backoff_ms": 250, "timeouts": {"boot_ms": 0}})",
                                   "m.json", kBase);
    EXPECT_EQ(p.retries.attempts, 5U);
    EXPECT_EQ(p.retries.backoff.count(), 250);
    EXPECT_EQ(p.timeouts.boot.count(), 0);
    EXPECT_EQ(profileError(R"({"name": "m", "firmware": {"root": "m"}, "retries": -1})"),
              "p.json: /retries: -1 is out of range (0 to 20)");
    EXPECT_EQ(profileError(R"({"name": "m", "firmware": {"root": "m"}, "retries": "2"})"),
              "p.json: /retries: expected a whole number, found a string");
}

TEST(Profile, TurnsIntoFirmwareSetConfigTrustingTheFirmwareBase) {
    const Profile p = parseProfile(
        R"({"name": "m", "firmware": {"root": "msd", "port_overlays": true, "fallback": ["."]}})",
        "m.json", kBase);
    const FirmwareSetConfig c = p.firmwareSetConfig();
    EXPECT_EQ(c.root, "/srv/firmware/msd");
    EXPECT_TRUE(c.portOverlays);
    ASSERT_EQ(c.fallbackRoots.size(), 1U);
    EXPECT_EQ(c.fallbackRoots[0], "/srv/firmware");
    ASSERT_FALSE(c.trustedRoots.empty());
    EXPECT_EQ(c.trustedRoots.back(), "/srv/firmware");
}

TEST(Profile, TurnsIntoBootOptionsWithItsTimeoutsAndSignedBoot) {
    const Profile p = parseProfile(
        R"({"name": "s", "firmware": {"root": "s"}, "signed_boot": true,
            "timeouts": {"control_ms": 1200, "bulk_ms": 7000, "request_ms": 30000}})",
        "s.json", kBase);
    const BootOptions o = p.bootOptions();
    EXPECT_TRUE(o.signedBoot);
    EXPECT_EQ(o.timeouts.control.count(), 1200);
    EXPECT_EQ(o.timeouts.bulkChunk.count(), 7000);
    EXPECT_EQ(o.timeouts.controlIn.count(), 30000);
}

TEST(Profile, UnknownKeyIsRejectedWithFilePointerAndReason) {
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {"root": "a", "port_overlay": true}})"),
              "p.json: /firmware/port_overlay: unknown key (misspelt?)");
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {"root": "a"}, "signedboot": true})"),
              "p.json: /signedboot: unknown key (misspelt?)");
}

TEST(Profile, WrongTypesAreRejectedNamingTheExpectedType) {
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {"root": "a"},
                               "timeouts": {"control_ms": "1000"}})"),
              "p.json: /timeouts/control_ms: expected a whole number of milliseconds, found a "
              "string");
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {"root": "a"}, "signed_boot": 1})"),
              "p.json: /signed_boot: expected true or false, found an integer");
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {"root": "a", "fallback": ["b", 3]}})"),
              "p.json: /firmware/fallback/1: expected a string, found an integer");
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": "msd"})"),
              "p.json: /firmware: expected an object, found a string");
    EXPECT_EQ(profileError(R"(["not", "an", "object"])"),
              "p.json: (top level): expected an object, found an array");
}

TEST(Profile, TimeoutsOutOfRangeAreRejected) {
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {"root": "a"},
                               "timeouts": {"reenumerate_ms": 0}})"),
              "p.json: /timeouts/reenumerate_ms: 0 is out of range (1 to 600000 ms)");
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {"root": "a"},
                               "timeouts": {"bulk_ms": 6000000}})"),
              "p.json: /timeouts/bulk_ms: 6000000 is out of range (1 to 600000 ms)");
}

TEST(Profile, MissingRequiredKeysAreNamed) {
    EXPECT_EQ(profileError(R"({"firmware": {"root": "a"}})"),
              "p.json: /name: missing: every profile has a name");
    EXPECT_EQ(profileError(R"({"name": "x"})"),
              "p.json: /firmware: missing: every profile names its firmware set");
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {}})"),
              "p.json: /firmware/root: missing: the firmware set's directory");
}

TEST(Profile, NamesThatCouldNotBeUsedSafelyAreRejected) {
    EXPECT_NE(profileError(R"({"name": "../evil", "firmware": {"root": "a"}})")
                  .find("p.json: /name: \"../evil\" is not a valid profile name"),
              std::string::npos);
    EXPECT_NE(profileError(R"({"name": "", "firmware": {"root": "a"}})").find("/name"),
              std::string::npos);
}

TEST(Profile, RelativeMetadataDirectoryIsRejected) {
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {"root": "a"},
                               "metadata": {"dir": "meta"}})"),
              "p.json: /metadata/dir: must be an absolute path, got \"meta\"");
}

TEST(Profile, InvalidJsonNamesFileAndPosition) {
    const std::string message = profileError("{\"name\": \"x\",\n  \"firmware\": }");
    EXPECT_EQ(message.rfind("p.json: not valid JSON: ", 0), 0U) << message;
    EXPECT_NE(message.find("line 2"), std::string::npos) << message;
}

TEST(Profile, NumberTooLargeForJsonIsAClearErrorNotACrash) {
    // Found by the profile_config fuzzer: nlohmann reports 1e999 as out_of_range.
    const std::string message = profileError(R"({"name": "x", "firmware": {"root": "a"},
                                                 "timeouts": {"control_ms": 1e999}})");
    EXPECT_EQ(message.rfind("p.json: not valid JSON: ", 0), 0U) << message;
}

TEST(Profile, LoadingAMissingFileSaysNotFound) {
    ScratchDir dir;
    try {
        loadProfileFile(dir.path() / "absent.json", kBase);
        FAIL() << "a missing file was loaded";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::NotFound);
        EXPECT_NE(std::string(e.what()).find("absent.json"), std::string::npos);
    }
}

TEST(Profile, RequiredFilesAreReadPerChip) {
    const Profile p = parseProfile(R"({"name": "x", "firmware": {"root": "a", "requires": {
        "2712": ["bootcode5.bin", "boot.img"], "BCM2711": ["bootcode4.bin"]}}})",
                                   "p.json", kBase);
    ASSERT_EQ(p.firmware.required.size(), 2u);
    EXPECT_EQ(p.firmware.required[0].first, Chip::Bcm2711);
    EXPECT_EQ(p.firmware.required[0].second, std::vector<std::string>{"bootcode4.bin"});
    EXPECT_EQ(p.firmware.required[1].first, Chip::Bcm2712);
    EXPECT_EQ(p.firmware.required[1].second,
              (std::vector<std::string>{"bootcode5.bin", "boot.img"}));
    EXPECT_TRUE(parseProfile(R"({"name": "x", "firmware": {"root": "a"}})", "p.json", kBase)
                    .firmware.required.empty());
}

TEST(Profile, InvalidRequiredFilesAreRejectedWithPointer) {
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {"root": "a", "requires": ["a"]}})"),
              "p.json: /firmware/requires: expected an object of chip -> file names");
    EXPECT_EQ(
        profileError(R"({"name": "x", "firmware": {"root": "a", "requires": {"2999": ["a"]}}})"),
        "p.json: /firmware/requires/2999: \"2999\" is not a chip (2835, 2837, 2711, 2712)");
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {"root": "a", "requires": {"2711": []}}})"),
              "p.json: /firmware/requires/2711: expected a non-empty array of file names");
    EXPECT_EQ(
        profileError(R"({"name": "x", "firmware": {"root": "a", "requires": {"2711": ["", 1]}}})"),
        "p.json: /firmware/requires/2711/0: expected a file name");
    EXPECT_EQ(profileError(R"({"name": "x", "firmware": {"root": "a",
                               "requires": {"2711": ["a"], "0x2711": ["b"]}}})"),
              "p.json: /firmware/requires/2711: chip listed twice");
}

TEST(Profile, ShippedProfilesAreValidAndNamedAfterTheirFiles) {
    const std::filesystem::path dir = std::filesystem::path(RPIBOOT_SOURCE_DIR) / "config/profiles";
    for (const char* name : {"msd", "recovery", "mass-storage-gadget"}) {
        const Profile p = loadProfileFile(dir / (std::string(name) + ".json"), kBase);
        EXPECT_EQ(p.name, name);
        EXPECT_FALSE(p.description.empty()) << name;
        EXPECT_EQ(p.firmware.root.parent_path(), kBase) << name;
    }
}

}  // namespace
}  // namespace rpiboot
