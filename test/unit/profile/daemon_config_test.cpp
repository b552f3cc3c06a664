// The daemon configuration: validation, profile directories and rule matching.
#include "rpiboot/profile/daemon_config.hpp"

#include <gtest/gtest.h>

#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/profile/profile.hpp"
#include "rpiboot_test/scratch_dir.hpp"

namespace rpiboot {
namespace {

using test::ScratchDir;

ProfileText profileText(const std::string& name) {
    return ProfileText{"built-in:" + name,
                       R"({"name": ")" + name + R"(", "firmware": {"root": ")" + name + "\"}}"};
}

const std::vector<ProfileText> kBuiltins = {profileText("msd"), profileText("recovery"),
                                            profileText("mass-storage-gadget")};

std::string configError(const std::string& text) {
    try {
        DaemonConfig c = parseDaemonConfig(text, "/etc/rpibootd/rpibootd.json");
        c.profilesDir.clear();
        buildConfiguration(std::move(c), kBuiltins);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::InvalidArgument);
        return e.what();
    }
    ADD_FAILURE() << "configuration was accepted: " << text;
    return {};
}

Configuration configFrom(const std::string& text) {
    DaemonConfig c = parseDaemonConfig(text, "/etc/rpibootd/rpibootd.json");
    c.profilesDir.clear();
    return buildConfiguration(std::move(c), kBuiltins);
}

std::string chosen(const Configuration& c, Chip chip, const std::string& port,
                   const std::string& serial = "") {
    return c.select(BoardMatchKey{chip, port, serial}).name;
}

TEST(DaemonConfig, ReadsEveryKeyAndResolvesRelativeDirectoriesAgainstTheFile) {
    const DaemonConfig c = parseDaemonConfig(
        R"({"profiles_dir": "profiles", "firmware_dir": "../fw", "default_profile": "recovery",
            "forget_after_ms": 0,
            "rules": [{"chip": "2711", "port": "1-1.*", "serial": "af*", "profile": "msd",
                       "comment": "station A"}]})",
        "/etc/rpibootd/rpibootd.json");
    EXPECT_EQ(c.profilesDir, "/etc/rpibootd/profiles");
    EXPECT_FALSE(c.profilesDirOptional);
    EXPECT_EQ(c.firmwareDir, "/etc/fw");
    EXPECT_EQ(c.defaultProfile, "recovery");
    EXPECT_EQ(c.forgetAfter.count(), 0);
    ASSERT_EQ(c.rules.size(), 1U);
    EXPECT_EQ(c.rules[0].chip, Chip::Bcm2711);
    EXPECT_EQ(c.rules[0].port, "1-1.*");
    EXPECT_EQ(c.rules[0].serial, "af*");
    EXPECT_EQ(c.rules[0].profile, "msd");
    EXPECT_EQ(c.rules[0].pointer, "/rules/0");
}

TEST(DaemonConfig, BuiltInDefaultsBootBcm2712WithTheGadgetAndEverythingElseWithMsd) {
    DaemonConfig d = defaultDaemonConfig();
    d.profilesDir.clear();
    const Configuration c = buildConfiguration(std::move(d), kBuiltins);
    EXPECT_EQ(chosen(c, Chip::Bcm2712, "1-1"), "mass-storage-gadget");
    EXPECT_EQ(chosen(c, Chip::Bcm2711, "1-1"), "msd");
    EXPECT_EQ(chosen(c, Chip::Bcm2835, "1-1"), "msd");
    EXPECT_EQ(c.daemon.firmwareDir, defaultFirmwareDir());
}

TEST(DaemonConfig, TheBulkQueueOverrideReachesEveryProfilesBootOptions) {
    DaemonConfig d = defaultDaemonConfig();
    d.profilesDir.clear();
    const Configuration plain = buildConfiguration(d, kBuiltins);
    EXPECT_EQ(plain.profiles.at("msd").bootOptions().bulkTransfersInFlight,
              rpiboot::kDefaultBulkTransfersInFlight);
    ConfigurationOverrides overrides;
    overrides.bulkTransfersInFlight = 1;
    const Configuration one = buildConfiguration(std::move(d), kBuiltins, overrides);
    ASSERT_FALSE(one.profiles.empty());
    for (const auto& [name, profile] : one.profiles) {
        EXPECT_EQ(profile.bootOptions().bulkTransfersInFlight, 1u) << name;
    }
}

TEST(DaemonConfig, RulesInAFileReplaceTheBuiltInRule) {
    const Configuration c = configFrom(R"({"default_profile": "recovery"})");
    EXPECT_TRUE(c.daemon.rules.empty());
    EXPECT_EQ(chosen(c, Chip::Bcm2712, "1-1"), "recovery");
}

TEST(DaemonConfig, FirstMatchingRuleWinsInFileOrder) {
    const Configuration c = configFrom(R"({"rules": [
        {"serial": "AF04B2DA", "profile": "recovery"},
        {"port": "1-1.*", "profile": "mass-storage-gadget"},
        {"chip": "2711", "profile": "recovery"}]})");
    // The serial rule comes first, so it beats the port rule for that board.
    EXPECT_EQ(chosen(c, Chip::Bcm2711, "1-1.3", "af04b2da"), "recovery");
    EXPECT_EQ(chosen(c, Chip::Bcm2711, "1-1.3", "12345678"), "mass-storage-gadget");
    EXPECT_EQ(chosen(c, Chip::Bcm2711, "2-1", "12345678"), "recovery");
    EXPECT_EQ(chosen(c, Chip::Bcm2835, "2-1"), "msd");
    const ProfileRule* rule = c.matchingRule(BoardMatchKey{Chip::Bcm2711, "1-1.4", ""});
    ASSERT_NE(rule, nullptr);
    EXPECT_EQ(rule->pointer, "/rules/1");
    EXPECT_EQ(c.matchingRule(BoardMatchKey{Chip::Bcm2835, "3-1", ""}), nullptr);
}

TEST(DaemonConfig, EveryKeyOfARuleMustMatch) {
    const Configuration c =
        configFrom(R"({"rules": [{"chip": "2712", "port": "1-2", "profile": "recovery"}]})");
    EXPECT_EQ(chosen(c, Chip::Bcm2712, "1-2"), "recovery");
    EXPECT_EQ(chosen(c, Chip::Bcm2712, "1-3"), "msd");
    EXPECT_EQ(chosen(c, Chip::Bcm2711, "1-2"), "msd");
}

TEST(DaemonConfig, ChipRulesAcceptChipNamesAndBootPids) {
    const Configuration c = configFrom(R"({"rules": [
        {"chip": "BCM2711", "profile": "recovery"},
        {"chip": "0x2764", "profile": "mass-storage-gadget"}]})");
    EXPECT_EQ(chosen(c, Chip::Bcm2711, "1-1"), "recovery");
    EXPECT_EQ(chosen(c, Chip::Bcm2837, "1-1"), "mass-storage-gadget");
    EXPECT_EQ(chosen(c, Chip::Bcm2835, "1-1"), "msd");
}

TEST(DaemonConfig, SerialRuleNeverMatchesABoardWithoutSerial) {
    const Configuration c = configFrom(R"({"rules": [{"serial": "*", "profile": "recovery"}]})");
    EXPECT_EQ(chosen(c, Chip::Bcm2835, "1-1", ""), "msd");
    EXPECT_EQ(chosen(c, Chip::Bcm2711, "1-1", "af04b2da"), "recovery");
}

TEST(DaemonConfig, PortGlobsMatchWholePortPaths) {
    const Configuration c = configFrom(R"({"rules": [{"port": "1-1.?", "profile": "recovery"}]})");
    EXPECT_EQ(chosen(c, Chip::Bcm2711, "1-1.3"), "recovery");
    EXPECT_EQ(chosen(c, Chip::Bcm2711, "1-1.3.2"), "msd");
    EXPECT_EQ(chosen(c, Chip::Bcm2711, "1-1"), "msd");
}

TEST(DaemonConfig, UnknownKeysAreRejectedWithTheirPointer) {
    EXPECT_EQ(configError(R"({"default-profile": "msd"})"),
              "/etc/rpibootd/rpibootd.json: /default-profile: unknown key (misspelt?)");
    EXPECT_EQ(configError(R"({"rules": [{"chip": "2711", "profle": "msd"}]})"),
              "/etc/rpibootd/rpibootd.json: /rules/0/profle: unknown key (misspelt?)");
}

TEST(DaemonConfig, RuleProblemsAreNamed) {
    EXPECT_EQ(configError(R"({"rules": [{"chip": "2711", "profile": "msd"}, {"chip": "2799",
                                         "profile": "msd"}]})"),
              "/etc/rpibootd/rpibootd.json: /rules/1/chip: \"2799\" is not a chip or boot PID "
              "(2835, 2837, 2711, 2712, 2763, 2764)");
    EXPECT_EQ(configError(R"({"rules": [{"chip": "2711"}]})"),
              "/etc/rpibootd/rpibootd.json: /rules/0/profile: missing: a rule names the profile "
              "it selects (or says \"ignore\": true)");
    EXPECT_EQ(configError(R"({"rules": {"chip": "2711"}})"),
              "/etc/rpibootd/rpibootd.json: /rules: expected an array of rule objects");
}

TEST(DaemonConfig, IgnoreRulesMatchByChipPortAndSerialAndNameNoProfile) {
    DaemonConfig c = parseDaemonConfig(R"({"rules": [
        {"chip": "2712", "ignore": true},
        {"port": "3-*", "ignore": true},
        {"serial": "DEAD*", "ignore": true},
        {"port": "1-1", "profile": "recovery"}]})",
                                       "/etc/rpibootd/rpibootd.json");
    c.profilesDir.clear();
    const Configuration config = buildConfiguration(std::move(c), kBuiltins);
    EXPECT_TRUE(config.ignores({Chip::Bcm2712, "1-1", "1234"}));
    EXPECT_TRUE(config.ignores({Chip::Bcm2711, "3-2.1", "1234"}));
    EXPECT_TRUE(config.ignores({Chip::Bcm2711, "1-2", "deadbeef"}));
    EXPECT_FALSE(config.ignores({Chip::Bcm2711, "1-1", "1234"}));
    EXPECT_EQ(config.select({Chip::Bcm2711, "1-1", "1234"}).name, "recovery");
    EXPECT_FALSE(config.ignores({Chip::Bcm2711, "1-2", ""}));
    EXPECT_EQ(configError(R"({"rules": [{"chip": "2711", "ignore": true, "profile": "msd"}]})"),
              "/etc/rpibootd/rpibootd.json: /rules/0/profile: an ignore rule selects no profile: "
              "drop \"profile\" or \"ignore\"");
}

TEST(DaemonConfig, MetricsAreOffByDefaultWithTheNodeExporterPath) {
    const DaemonConfig d = parseDaemonConfig("{}", "/etc/rpibootd/rpibootd.json");
    EXPECT_FALSE(d.metrics.enabled);
    EXPECT_EQ(d.metrics.file, "/var/lib/prometheus/node-exporter/rpibootd.prom");
    EXPECT_EQ(d.stateDir, "/var/lib/rpibootd");
    const DaemonConfig on = parseDaemonConfig(
        R"({"metrics": {"enabled": true, "file": "/run/m.prom", "interval_ms": 200},
            "state_dir": "state"})",
        "/etc/rpibootd/rpibootd.json");
    EXPECT_TRUE(on.metrics.enabled);
    EXPECT_EQ(on.metrics.file, "/run/m.prom");
    EXPECT_EQ(on.metrics.interval.count(), 200);
    EXPECT_EQ(on.stateDir, "/etc/rpibootd/state");
    EXPECT_EQ(configError(R"({"metrics": {"enabled": true, "file": "m.prom"}})"),
              "/etc/rpibootd/rpibootd.json: /metrics/file: \"m.prom\" is not an absolute path");
}

TEST(DaemonConfig, ProfilesThatDoNotExistAreNamedWithTheKnownOnes) {
    EXPECT_EQ(configError(R"({"rules": [{"port": "1-1", "profile": "msd"},
                                        {"port": "1-2", "profile": "recovry"}]})"),
              "/etc/rpibootd/rpibootd.json: /rules/1/profile: no profile named \"recovry\" "
              "(known: mass-storage-gadget, msd, recovery)");
    EXPECT_EQ(configError(R"({"default_profile": "gadget"})"),
              "/etc/rpibootd/rpibootd.json: /default_profile: no profile named \"gadget\" "
              "(known: mass-storage-gadget, msd, recovery)");
}

TEST(DaemonConfig, ForgetDelayMustBeAWholeNonNegativeNumber) {
    EXPECT_EQ(configError(R"({"forget_after_ms": -1})"),
              "/etc/rpibootd/rpibootd.json: /forget_after_ms: -1 is out of range (0 to "
              "604800000 ms)");
}

TEST(DaemonConfig, MissingFileGivesDefaultsOnlyWhenOptional) {
    ScratchDir dir;
    const auto absent = dir.path() / "rpibootd.json";
    EXPECT_EQ(loadDaemonConfig(absent, true).source, "built-in defaults");
    try {
        loadDaemonConfig(absent, false);
        FAIL() << "a missing explicit configuration was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::NotFound);
        EXPECT_NE(std::string(e.what()).find(absent.string()), std::string::npos);
    }
}

TEST(DaemonConfig, ProfileDirectoryAddsProfilesAndReplacesBuiltInsOfTheSameName) {
    ScratchDir dir;
    dir.write("profiles/msd.json", R"({"name": "msd", "firmware": {"root": "/custom/msd"}})");
    dir.write("profiles/station.json", R"({"name": "station", "firmware": {"root": "st"}})");
    dir.write("profiles/notes.txt", "not a profile");
    const auto file = dir.write("rpibootd.json", R"({"profiles_dir": "profiles",
        "firmware_dir": "/fw", "default_profile": "station"})");
    const Configuration c = buildConfiguration(loadDaemonConfig(file, false), kBuiltins);
    EXPECT_EQ(c.profileNames(),
              (std::vector<std::string>{"mass-storage-gadget", "msd", "recovery", "station"}));
    EXPECT_EQ(c.profiles.at("msd").firmware.root, "/custom/msd");
    EXPECT_EQ(c.profiles.at("msd").source, (dir.path() / "profiles/msd.json").string());
    EXPECT_EQ(c.profiles.at("station").firmware.root, "/fw/st");
    EXPECT_EQ(c.profiles.at("recovery").source, "built-in:recovery");
}

TEST(DaemonConfig, TwoFilesDefiningOneProfileAreRejected) {
    ScratchDir dir;
    dir.write("profiles/a.json", R"({"name": "twin", "firmware": {"root": "a"}})");
    dir.write("profiles/b.json", R"({"name": "twin", "firmware": {"root": "b"}})");
    DaemonConfig d = defaultDaemonConfig();
    d.profilesDir = dir.path() / "profiles";
    d.profilesDirOptional = false;
    try {
        buildConfiguration(std::move(d), kBuiltins);
        FAIL() << "duplicate profile accepted";
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("b.json: /name: profile \"twin\" is already defined in"),
                  std::string::npos)
            << m;
        EXPECT_NE(m.find("a.json"), std::string::npos) << m;
    }
}

TEST(DaemonConfig, BrokenProfileFileRejectsTheWholeConfiguration) {
    ScratchDir dir;
    dir.write("profiles/bad.json", R"({"name": "bad", "firmware": {"root": "b", "extra": 1}})");
    DaemonConfig d = defaultDaemonConfig();
    d.profilesDir = dir.path() / "profiles";
    try {
        buildConfiguration(std::move(d), kBuiltins);
        FAIL() << "broken profile accepted";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), (dir.path() / "profiles/bad.json").string() +
                                             ": /firmware/extra: unknown key (misspelt?)");
    }
}

TEST(DaemonConfig, ExplicitProfileDirectoryMustExistButTheDefaultOneNeedNot) {
    ScratchDir dir;
    DaemonConfig optional = defaultDaemonConfig();
    optional.profilesDir = dir.path() / "absent";
    EXPECT_NO_THROW(buildConfiguration(optional, kBuiltins));
    ConfigurationOverrides overrides;
    overrides.profilesDir = dir.path() / "absent";
    try {
        buildConfiguration(defaultDaemonConfig(), kBuiltins, overrides);
        FAIL() << "missing explicit profile directory accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::NotFound);
        EXPECT_NE(std::string(e.what()).find("profile directory does not exist"),
                  std::string::npos);
    }
}

TEST(DaemonConfig, FirmwareOverrideResolvesEveryProfileAgainstIt) {
    ConfigurationOverrides overrides;
    overrides.firmwareDir = "/override/fw";
    DaemonConfig d = defaultDaemonConfig();
    d.profilesDir.clear();
    const Configuration c = buildConfiguration(std::move(d), kBuiltins, overrides);
    EXPECT_EQ(c.daemon.firmwareDir, "/override/fw");
    EXPECT_EQ(c.profiles.at("recovery").firmware.root, "/override/fw/recovery");
}

TEST(DaemonConfig, ShippedConfigurationIsValidAgainstTheShippedProfiles) {
    const std::filesystem::path source(RPIBOOT_SOURCE_DIR);
    std::vector<ProfileText> shipped;
    for (const char* name : {"msd", "recovery", "mass-storage-gadget"}) {
        const Profile p =
            loadProfileFile(source / "config/profiles" / (std::string(name) + ".json"), "/fw");
        shipped.push_back(profileText(p.name));
    }
    DaemonConfig d = loadDaemonConfig(source / "config/rpibootd.json", false);
    d.profilesDir.clear();
    const Configuration c = buildConfiguration(std::move(d), shipped);
    EXPECT_EQ(chosen(c, Chip::Bcm2712, "1-1"), "mass-storage-gadget");
    EXPECT_EQ(chosen(c, Chip::Bcm2711, "1-1"), "msd");
}

}  // namespace
}  // namespace rpiboot
