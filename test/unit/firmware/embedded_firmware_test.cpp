// The firmware compiled in: what it holds, that its bytes are the repository's
// files, and that a FirmwareSet searches it last and only when allowed.
#include "rpiboot/firmware/embedded_firmware.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "fixture_files.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/firmware/firmware_set.hpp"
#include "rpiboot/profile/daemon_config.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot_test/scratch_dir.hpp"

namespace rpiboot {
namespace {

namespace fs = std::filesystem;

const BoardContext kPi4{Chip::Bcm2711, "1-1.3", ""};
const BoardContext kPi3{Chip::Bcm2837, "1-2", ""};
const BoardContext kPi5{Chip::Bcm2712, "3-2", ""};

// SHA256SUMS of the fixtures: "./msd/start.elf" -> hex digest.
std::map<std::string, std::string> fixtureSums() {
    std::ifstream in(test::fixturesDir() / "SHA256SUMS");
    std::map<std::string, std::string> sums;
    std::string hash, path;
    while (in >> hash >> path) {
        sums[path.starts_with("./") ? path.substr(2) : path] = hash;
    }
    return sums;
}

using test::originOf;
using test::text;

std::string shaOf(const Lookup& lookup) {
    return lookup.found() ? sha256Hex(lookup.file->bytes) : test::notFound(lookup);
}

TEST(EmbeddedFirmware, HoldsTheSmallMassStorageSet) {
    std::vector<std::string> names;
    for (const auto& file : embeddedFirmware()) {
        names.emplace_back(file.name);
    }
    EXPECT_EQ(names, (std::vector<std::string>{"bootcode.bin", "bootcode4.bin", "start.elf",
                                               "start4.elf"}));
    EXPECT_EQ(embeddedFirmwareNames(), "bootcode.bin, bootcode4.bin, start.elf, start4.elf");
    const EmbeddedFile* start = findEmbeddedFirmware("start.elf");
    const EmbeddedFile* start4 = findEmbeddedFirmware("start4.elf");
    ASSERT_NE(start, nullptr);
    ASSERT_NE(start4, nullptr);
    EXPECT_EQ(start4->bytes.data(), start->bytes.data()) << "start4.elf is start.elf's bytes";
    EXPECT_EQ(start4->bytes.size(), start->bytes.size());
    EXPECT_EQ(findEmbeddedFirmware("bootcode5.bin"), nullptr) << "BCM2712 needs an install";
    EXPECT_EQ(findEmbeddedFirmware("boot.img"), nullptr);
    EXPECT_EQ(findEmbeddedFirmware("START.ELF"), nullptr) << "names are exact, as on disk";
}

TEST(EmbeddedFirmware, BytesAreTheRepositoryFirmwareFiles) {
    const auto sums = fixtureSums();
    ASSERT_FALSE(sums.empty()) << "cannot read SHA256SUMS of the fixtures";
    for (const auto& file : embeddedFirmware()) {
        SCOPED_TRACE(std::string(file.name));
        ASSERT_TRUE(sums.count(std::string(file.source))) << file.source;
        const std::string& expected = sums.at(std::string(file.source));
        EXPECT_EQ(sha256Hex(file.bytes), expected);
        EXPECT_EQ(file.sha256, expected) << "the digest recorded at build time";
        const auto onDisk = test::readWhole(test::fixturesDir() / std::string(file.source));
        EXPECT_TRUE(std::equal(file.bytes.begin(), file.bytes.end(), onDisk.begin(), onDisk.end()));
    }
}

class EmbeddedLookupTest : public ::testing::Test {
  protected:
    test::ScratchDir tree;
    std::shared_ptr<FileCache> cache = std::make_shared<FileCache>();

    FirmwareSetConfig config(bool embedded) {
        FirmwareSetConfig c;
        c.root = tree.mkdir("set");
        c.embedded = embedded;
        return c;
    }
    std::unique_ptr<FirmwareSet> set(FirmwareSetConfig c) {
        return std::make_unique<FirmwareSet>(std::move(c), cache);
    }
};

TEST_F(EmbeddedLookupTest, ServesEmbeddedOnlyWhenNoDirectoryHasTheFile) {
    tree.write("set/config.txt", "from the directory");
    const auto fw = set(config(true));
    const auto sums = fixtureSums();

    const Lookup start4 = fw->resolve("start4.elf", kPi4);
    EXPECT_EQ(originOf(start4), "embedded:start4.elf");
    EXPECT_EQ(shaOf(start4), sums.at("msd/start.elf"));
    const Lookup loader = fw->bootcode(kPi4);
    EXPECT_EQ(originOf(loader), "embedded:bootcode4.bin");
    EXPECT_EQ(shaOf(loader), sums.at("msd/bootcode4.bin"));
    EXPECT_EQ(shaOf(fw->bootcode(kPi3)), sums.at("msd/bootcode.bin"));

    EXPECT_EQ(text(fw->resolve("config.txt", kPi4)), "from the directory");
    EXPECT_FALSE(fw->resolve("pieeprom.sig", kPi4).found()) << "nowhere: still not found";
    EXPECT_FALSE(fw->bootcode(kPi5).found()) << "bootcode5.bin is not embedded";
}

TEST_F(EmbeddedLookupTest, EveryDirectoryWinsOverEmbedded) {
    auto c = config(true);
    tree.write("set/2711/start4.elf", "chip folder");
    tree.write("set/bootcode.bin", "root loader");
    c.fallbackRoots.push_back(tree.mkdir("fallback"));
    tree.write("fallback/bootcode4.bin", "fallback loader");
    const auto fw = set(std::move(c));
    EXPECT_EQ(text(fw->resolve("start4.elf", kPi4)), "chip folder");
    EXPECT_EQ(text(fw->bootcode(kPi3)), "root loader");
    EXPECT_EQ(text(fw->bootcode(kPi4)), "fallback loader");
    EXPECT_EQ(originOf(fw->resolve("start.elf", kPi3)), "embedded:start.elf");
}

TEST_F(EmbeddedLookupTest, NotSearchedWhenTheSetDoesNotAllowIt) {
    const auto fw = set(config(false));
    const Lookup lookup = fw->resolve("start4.elf", kPi4);
    EXPECT_FALSE(lookup.found()) << lookup.file->origin;
    EXPECT_EQ(lookup.refusal, "");
    EXPECT_FALSE(fw->bootcode(kPi4).found());
    EXPECT_EQ(fw->searchedPlaces().find("embedded"), std::string::npos);
}

TEST_F(EmbeddedLookupTest, RefusedDirectoryFileIsNotReplacedByEmbedded) {
    // A refusal ends the lookup: embedded firmware never hides a broken install.
    const fs::path outside = tree.mkdir("outside");
    tree.write("outside/start4.elf", "outside");
    auto c = config(true);
    fs::create_symlink(outside / "start4.elf", c.root / "start4.elf");
    const auto fw = set(std::move(c));
    const Lookup lookup = fw->resolve("start4.elf", kPi4);
    EXPECT_FALSE(lookup.found()) << lookup.file->origin;
    EXPECT_NE(lookup.refusal.find("trusted-root"), std::string::npos) << lookup.refusal;
}

TEST_F(EmbeddedLookupTest, MissingDirectoriesAreSkippedOnlyWithEmbedded) {
    FirmwareSetConfig c;
    c.root = tree.path() / "not-installed/msd";
    c.fallbackRoots.push_back(tree.path() / "not-installed");
    c.embedded = false;
    EXPECT_THROW(set(c), Error);

    c.embedded = true;
    const auto fw = set(c);
    EXPECT_EQ(fw->missingRoots(), (std::vector<fs::path>{tree.path() / "not-installed/msd",
                                                         tree.path() / "not-installed"}));
    EXPECT_EQ(originOf(fw->resolve("start4.elf", kPi4)), "embedded:start4.elf");
    const std::string places = fw->searchedPlaces();
    EXPECT_NE(places.find("not-installed/msd (missing)"), std::string::npos) << places;
    EXPECT_NE(places.find("the embedded firmware (bootcode.bin"), std::string::npos) << places;

    FirmwareSetConfig none;  // no directory at all: the embedded set alone
    none.embedded = true;
    EXPECT_EQ(originOf(set(none)->bootcode(kPi3)), "embedded:bootcode.bin");
}

// The daemon configuration: the msd profile may use the embedded set, the
// others never; "embedded_firmware": false turns it off for every profile.
std::string profileText(std::string_view name) {
    std::ifstream in(fs::path(RPIBOOT_SOURCE_DIR) / "config/profiles" /
                     (std::string(name) + ".json"));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

Configuration shippedConfiguration(std::string_view daemonJson) {
    std::vector<ProfileText> builtins;
    for (const char* name : {"msd", "mass-storage-gadget", "recovery"}) {
        builtins.push_back({std::string("built-in:") + name, profileText(name)});
    }
    return buildConfiguration(parseDaemonConfig(daemonJson, "/etc/rpibootd/rpibootd.json"),
                              builtins, {});
}

TEST(EmbeddedFirmwareConfig, OnlyTheMassStorageProfileUsesItByDefault) {
    const Configuration c = shippedConfiguration(R"({"default_profile": "msd"})");
    EXPECT_TRUE(c.daemon.embeddedFirmware);
    EXPECT_TRUE(c.profiles.at("msd").firmwareSetConfig().embedded);
    EXPECT_FALSE(c.profiles.at("recovery").firmwareSetConfig().embedded)
        << "a recovery board must never get the mass-storage loader";
    EXPECT_FALSE(c.profiles.at("mass-storage-gadget").firmwareSetConfig().embedded);
}

TEST(EmbeddedFirmwareConfig, TurnedOffInTheDaemonConfiguration) {
    const Configuration c = shippedConfiguration(R"({"embedded_firmware": false})");
    EXPECT_FALSE(c.daemon.embeddedFirmware);
    const FirmwareSetConfig msd = c.profiles.at("msd").firmwareSetConfig();
    EXPECT_FALSE(msd.embedded);

    test::ScratchDir tree;
    FirmwareSetConfig set = msd;
    set.root = tree.mkdir("msd");
    set.fallbackRoots.clear();
    const FirmwareSet fw(set, std::make_shared<FileCache>());
    EXPECT_FALSE(fw.resolve("start4.elf", kPi4).found());
    EXPECT_FALSE(fw.bootcode(kPi4).found());
}

TEST(EmbeddedFirmwareConfig, TheKeyIsABoolean) {
    try {
        shippedConfiguration(R"({"embedded_firmware": "yes"})");
        ADD_FAILURE() << "a string was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/embedded_firmware"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace rpiboot
