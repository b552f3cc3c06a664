#include "rpiboot/firmware/firmware_set.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "fixture_files.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/firmware/tar_archive.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "tar_builder.hpp"

namespace rpiboot {
namespace {

namespace fs = std::filesystem;

const BoardContext kPi4{Chip::Bcm2711, "1-1.3", "1000000012345678"};
const BoardContext kPi5{Chip::Bcm2712, "3-2", "2000000087654321"};
const BoardContext kPi3{Chip::Bcm2837, "", ""};

using test::originOf;
using test::text;

void expectRefused(const Lookup& lookup, std::string_view rule) {
    EXPECT_FALSE(lookup.found()) << "served " << originOf(lookup);
    EXPECT_NE(lookup.refusal.find(rule), std::string::npos)
        << "refusal '" << lookup.refusal << "' does not mention '" << rule << "'";
}

class FirmwareSetTest : public ::testing::Test {
  protected:
    test::ScratchDir tree;
    std::shared_ptr<FileCache> cache = std::make_shared<FileCache>();

    FirmwareSetConfig configFor(const fs::path& root) {
        FirmwareSetConfig config;
        config.root = root;
        return config;
    }
    std::unique_ptr<FirmwareSet> set(FirmwareSetConfig config) {
        return std::make_unique<FirmwareSet>(std::move(config), cache);
    }
    std::unique_ptr<FirmwareSet> set(const fs::path& root) { return set(configFor(root)); }
    // A boot set holding a small bootfiles.bin with 2711/start4.elf and 2711/bootcode4.bin.
    fs::path setWithArchive(std::string_view name = "set") {
        fs::path root = tree.mkdir(name);
        tree.writeBytes(std::string(name) + "/bootfiles.bin",
                        test::makeTar({{"2711/", "", '5'},
                                       {"2711/Start4.elf", "archive start4"},
                                       {"2711/bootcode4.bin", "archive bootcode4"},
                                       {"2711/empty.txt", ""},
                                       {"2712/start4.elf", "archive 2712 start4"}}));
        return root;
    }
};

// --- order ------------------------------------------------------------------

TEST_F(FirmwareSetTest, ServesChipSubfolderBeforeTopLevel) {
    tree.write("set/start4.elf", "top level");
    tree.write("set/2711/start4.elf", "chip folder");
    const auto fw = set(tree / "set");
    const Lookup lookup = fw->resolve("start4.elf", kPi4);
    EXPECT_EQ(text(lookup), "chip folder");
    EXPECT_EQ(originOf(lookup), (tree / "set/2711/start4.elf").string());
    EXPECT_EQ(text(fw->resolve("start4.elf", kPi5)), "top level") << "2712 has no subfolder";
}

TEST_F(FirmwareSetTest, BcmTwentyEightThirtySevenUsesThe2710Folder) {
    tree.write("set/2710/start.elf", "2710 start");
    tree.write("set/start.elf", "top");
    EXPECT_EQ(text(set(tree / "set")->resolve("start.elf", kPi3)), "2710 start");
}

TEST_F(FirmwareSetTest, ServesArchiveMemberCaseInsensitivelyWithItsOrigin) {
    const auto root = setWithArchive();
    tree.write("set/start4.elf", "top level");
    const auto fw = set(root);
    const Lookup lookup = fw->resolve("start4.elf", kPi4);
    EXPECT_EQ(text(lookup), "archive start4");
    EXPECT_EQ(originOf(lookup), (root / "bootfiles.bin").string() + ":2711/Start4.elf");
}

TEST_F(FirmwareSetTest, ChipFolderOnDiskOverridesTheArchive) {
    const auto root = setWithArchive();
    tree.write("set/2711/start4.elf", "disk override");
    EXPECT_EQ(text(set(root)->resolve("start4.elf", kPi4)), "disk override");
}

TEST_F(FirmwareSetTest, ArchiveComesBeforePortOverlayAndTopLevel) {
    const auto root = setWithArchive();
    tree.write("set/1-1.3/start4.elf", "port overlay");
    tree.write("set/start4.elf", "top level");
    auto config = configFor(root);
    config.portOverlays = true;
    EXPECT_EQ(text(set(config)->resolve("start4.elf", kPi4)), "archive start4");
}

TEST_F(FirmwareSetTest, ZeroLengthArchiveMemberFallsThroughToTheDirectory) {
    const auto root = setWithArchive();
    tree.write("set/empty.txt", "from the directory");
    EXPECT_EQ(text(set(root)->resolve("empty.txt", kPi4)), "from the directory");
}

TEST_F(FirmwareSetTest, ServesRealBootfilesMembersByteForByte) {
    const fs::path root = tree.mkdir("msg");
    fs::copy_file(test::fixturesDir() / "bootfiles.bin", root / "bootfiles.bin");
    const auto archiveBytes = test::readWhole(root / "bootfiles.bin");
    const TarArchive reference(archiveBytes, "reference");
    const auto fw = set(root);
    for (const auto& [board, name] : {std::pair{kPi4, "bootcode4.bin"},
                                      {kPi4, "bootmain"},
                                      {kPi5, "bootcode5.bin"},
                                      {kPi5, "memsys03.bin"}}) {
        const Lookup lookup = fw->resolve(name, board);
        ASSERT_TRUE(lookup.found()) << name << ": " << lookup.refusal;
        const auto expected =
            reference.contents(*reference.find(std::string(chipFolder(board.chip)) + "/" + name));
        EXPECT_TRUE(std::equal(expected.begin(), expected.end(), lookup.file->bytes.begin(),
                               lookup.file->bytes.end()))
            << name;
    }
    const Lookup loader = fw->bootcode(kPi4);
    ASSERT_TRUE(loader.found());
    EXPECT_EQ(loader.file->bytes.size(), 73120u);
}

TEST_F(FirmwareSetTest, PortOverlayComesBeforeChipFolderWithoutArchive) {
    tree.write("set/1-1.3/config.txt", "port overlay");
    tree.write("set/2711/config.txt", "chip folder");
    auto config = configFor(tree / "set");
    config.portOverlays = true;
    const auto fw = set(config);
    EXPECT_EQ(text(fw->resolve("config.txt", kPi4)), "port overlay");
    EXPECT_EQ(text(fw->resolve("config.txt", {Chip::Bcm2711, "1-1.4", ""})), "chip folder");
    EXPECT_EQ(text(fw->resolve("config.txt", {Chip::Bcm2711, "", ""})), "chip folder");
}

TEST_F(FirmwareSetTest, PortOverlayIsIgnoredWhenDisabled) {
    tree.write("set/1-1.3/config.txt", "port overlay");
    tree.write("set/config.txt", "base");
    EXPECT_EQ(text(set(tree / "set")->resolve("config.txt", kPi4)), "base");
}

TEST_F(FirmwareSetTest, BootcodeNeverComesFromOverlays) {
    tree.write("set/bootcode4.bin", "base loader");
    tree.write("set/1-1.3/bootcode4.bin", "port loader");
    tree.write("serials/1000000012345678/bootcode4.bin", "serial loader");
    auto config = configFor(tree / "set");
    config.portOverlays = true;
    config.serialOverlayRoot = tree / "serials";
    const auto fw = set(config);
    EXPECT_EQ(text(fw->resolve("bootcode4.bin", kPi4)), "base loader");
    EXPECT_EQ(text(fw->bootcode(kPi4)), "base loader");
}

TEST_F(FirmwareSetTest, SerialOverlayComesBeforeEverythingOnDisk) {
    const auto root = setWithArchive();
    tree.write("set/2711/start4.elf", "chip folder");
    tree.write("serials/1000000012345678/start4.elf", "this board's own");
    auto config = configFor(root);
    config.serialOverlayRoot = tree / "serials";
    const auto fw = set(config);
    EXPECT_EQ(text(fw->resolve("start4.elf", kPi4)), "this board's own");
    EXPECT_EQ(text(fw->resolve("start4.elf", {Chip::Bcm2711, "", "1000000000000000"})),
              "chip folder");
}

TEST_F(FirmwareSetTest, UnsafeSerialNeverSelectsAnOverlayDirectory) {
    tree.write("set/config.txt", "base");
    tree.write("serials/config.txt", "serial root itself");
    tree.write("secret/config.txt", "outside");
    auto config = configFor(tree / "set");
    config.serialOverlayRoot = tree / "serials";
    const auto fw = set(config);
    for (const char* serial : {"", ".", "..", "../secret", "a/b"}) {
        EXPECT_EQ(text(fw->resolve("config.txt", {Chip::Bcm2711, "", serial})), "base") << serial;
    }
}

TEST_F(FirmwareSetTest, GeneratedFilesComeFirst) {
    tree.write("serials/1000000012345678/pieeprom.bin", "serial");
    tree.write("set/pieeprom.bin", "disk");
    static const std::string kGenerated = "generated eeprom";
    auto storage = std::make_shared<std::string>(kGenerated);
    auto config = configFor(tree / "set");
    config.serialOverlayRoot = tree / "serials";
    config.generated["pieeprom.bin"] = ServedFile{
        storage, std::span(reinterpret_cast<const std::uint8_t*>(storage->data()), storage->size()),
        ""};
    const auto fw = set(config);
    const Lookup lookup = fw->resolve("pieeprom.bin", kPi4);
    EXPECT_EQ(text(lookup), kGenerated);
    EXPECT_EQ(originOf(lookup), "generated:pieeprom.bin");
    EXPECT_EQ(lookup.file->storage.get(), storage.get()) << "generated bytes are shared";
}

TEST_F(FirmwareSetTest, FallbackRootsAreSearchedAfterTheRootWithTheSameRules) {
    tree.write("base/start4.elf", "base start4");
    tree.write("base/config.txt", "base config");
    tree.write("base/2711/fixup4.dat", "base chip fixup");
    tree.write("profile/config.txt", "profile config");
    tree.write("profile/fixup4.dat", "profile fixup");
    setWithArchive("archived");
    auto config = configFor(tree / "profile");
    config.fallbackRoots = {tree / "archived", tree / "base"};
    const auto fw = set(config);
    EXPECT_EQ(text(fw->resolve("config.txt", kPi4)), "profile config");
    EXPECT_EQ(text(fw->resolve("fixup4.dat", kPi4)), "profile fixup");
    EXPECT_EQ(text(fw->resolve("start4.elf", kPi4)), "archive start4");
    EXPECT_EQ(text(fw->resolve("start4.elf", kPi3)), "base start4");
    EXPECT_FALSE(fw->resolve("missing.bin", kPi4).found());
}

TEST_F(FirmwareSetTest, ServesSubpathsInsideTheRoot) {
    tree.write("set/overlays/dwc2.dtbo", "overlay");
    const auto fw = set(tree / "set");
    EXPECT_EQ(text(fw->resolve("overlays/dwc2.dtbo", kPi4)), "overlay");
    EXPECT_EQ(text(fw->resolve("./overlays//dwc2.dtbo", kPi4)), "overlay");
}

// --- missing, empty, size, kind ---------------------------------------------

TEST_F(FirmwareSetTest, MissingFileIsNotFoundWithoutRefusal) {
    tree.mkdir("set");
    const Lookup lookup = set(tree / "set")->resolve("start4.elf", kPi4);
    EXPECT_FALSE(lookup.found());
    EXPECT_EQ(lookup.refusal, "");
}

TEST_F(FirmwareSetTest, DanglingSymlinkIsNotFound) {
    tree.symlink("set/start4.elf", "nowhere.elf");
    const Lookup lookup = set(tree / "set")->resolve("start4.elf", kPi4);
    EXPECT_FALSE(lookup.found());
    EXPECT_EQ(lookup.refusal, "");
}

TEST_F(FirmwareSetTest, ZeroSizeFileIsFoundWithSizeZero) {
    tree.write("set/cmdline.txt", "");
    const Lookup lookup = set(tree / "set")->resolve("cmdline.txt", kPi4);
    ASSERT_TRUE(lookup.found()) << lookup.refusal;
    EXPECT_EQ(lookup.file->bytes.size(), 0u);
}

TEST_F(FirmwareSetTest, FileOverTheSizeLimitIsRefused) {
    tree.write("set/kernel8.img", std::string(65, 'k'));
    tree.write("set/config.txt", std::string(64, 'c'));
    auto config = configFor(tree / "set");
    config.maxFileSize = 64;
    const auto fw = set(config);
    EXPECT_TRUE(fw->resolve("config.txt", kPi4).found());
    expectRefused(fw->resolve("kernel8.img", kPi4), "over the limit of 64 bytes");
}

TEST_F(FirmwareSetTest, ArchiveMemberOverTheSizeLimitIsRefused) {
    const auto root = setWithArchive();
    auto config = configFor(root);
    config.maxFileSize = 10;
    expectRefused(set(config)->resolve("bootcode4.bin", kPi4), "size limit");
}

TEST_F(FirmwareSetTest, DirectoryIsRefused) {
    tree.mkdir("set/overlays");
    expectRefused(set(tree / "set")->resolve("overlays", kPi4), "is a directory");
}

// --- refusals -----------------------------------------------------------------

TEST_F(FirmwareSetTest, RefusesTraversalAndAbsoluteNamesByRule) {
    tree.write("secret.txt", "outside");
    tree.write("set/config.txt", "inside");
    const auto fw = set(tree / "set");
    expectRefused(fw->resolve("../secret.txt", kPi4), "request-name rule");
    expectRefused(fw->resolve("2711/../../secret.txt", kPi4), "'..'");
    expectRefused(fw->resolve((tree / "secret.txt").string(), kPi4), "absolute");
    expectRefused(fw->resolve("..\\secret.txt", kPi4), "backslash");
    expectRefused(fw->resolve("", kPi4), "empty");
}

TEST_F(FirmwareSetTest, RefusesSymlinkLeadingOutsideTheRoot) {
    tree.write("outside/secret.txt", "outside");
    tree.symlink("set/config.txt", tree / "outside/secret.txt");
    tree.symlink("set/overlays", tree / "outside");
    tree.symlink("set/passwd", "/etc/passwd");
    const auto fw = set(tree / "set");
    expectRefused(fw->resolve("config.txt", kPi4), "leads outside the trusted roots");
    expectRefused(fw->resolve("overlays/secret.txt", kPi4), "trusted-root rule");
    expectRefused(fw->resolve("passwd", kPi4), "leads outside");
}

TEST_F(FirmwareSetTest, RefusalStopsTheLookupInsteadOfFallingThrough) {
    tree.write("outside/start4.elf", "outside");
    tree.symlink("set/2711/start4.elf", tree / "outside/start4.elf");
    tree.write("set/start4.elf", "top level");
    expectRefused(set(tree / "set")->resolve("start4.elf", kPi4), "leads outside");
}

TEST_F(FirmwareSetTest, FollowsSymlinksThatStayInsideTheRoot) {
    tree.write("set/start.elf", "legacy start");
    tree.symlink("set/start4.elf", "start.elf");
    tree.symlink("set/2711", ".");
    const auto fw = set(tree / "set");
    const Lookup lookup = fw->resolve("start4.elf", kPi4);
    EXPECT_EQ(text(lookup), "legacy start");
    EXPECT_NE(originOf(lookup).find("-> " + (tree / "set/start.elf").string()), std::string::npos)
        << originOf(lookup);
}

// Mirrors fixtures/firmware: msd/bootcode4.bin -> ../2711/bootcode4.bin.
TEST_F(FirmwareSetTest, SymlinkIntoATrustedRootIsServedAndRefusedWithoutIt) {
    const auto reference = test::readWhole(test::fixturesDir() / "2711/bootcode4.bin");
    tree.writeBytes("fw/2711/bootcode4.bin", reference);
    tree.symlink("fw/msd/bootcode4.bin", "../2711/bootcode4.bin");
    tree.write("fw/msd/start.elf", "start");

    expectRefused(set(tree / "fw/msd")->bootcode(kPi4), "leads outside the trusted roots");

    auto config = configFor(tree / "fw/msd");
    config.trustedRoots = {tree / "fw"};
    const Lookup lookup = set(config)->bootcode(kPi4);
    ASSERT_TRUE(lookup.found()) << lookup.refusal;
    EXPECT_TRUE(std::equal(reference.begin(), reference.end(), lookup.file->bytes.begin(),
                           lookup.file->bytes.end()));
}

TEST_F(FirmwareSetTest, RealMsdFixtureBootcodeSymlinkNeedsTheTrustedRoot) {
    const fs::path msd = test::fixturesDir() / "msd";
    if (!fs::is_symlink(msd / "bootcode4.bin")) {
        GTEST_SKIP() << msd / "bootcode4.bin"
                     << " is a plain file in this checkout, not the documented symlink";
    }
    expectRefused(set(msd)->bootcode(kPi4), "leads outside");
    auto config = configFor(msd);
    config.trustedRoots = {test::fixturesDir()};
    const Lookup lookup = set(config)->bootcode(kPi4);
    ASSERT_TRUE(lookup.found()) << lookup.refusal;
    EXPECT_EQ(lookup.file->bytes.size(), fs::file_size(test::fixturesDir() / "2711/bootcode4.bin"));
}

TEST_F(FirmwareSetTest, RealMsdFixtureServesTheLegacyLoaderToBcm2837) {
    const Lookup lookup = set(test::fixturesDir() / "msd")->bootcode(kPi3);
    ASSERT_TRUE(lookup.found()) << lookup.refusal;
    EXPECT_EQ(lookup.file->bytes.size(), 52624u);
}

// --- versions, construction, threads -------------------------------------------

TEST_F(FirmwareSetTest, ReplacedFileLeavesHeldBytesIntactAndServesTheNewOne) {
    tree.write("set/start4.elf", "old firmware");
    const auto fw = set(tree / "set");
    const Lookup held = fw->resolve("start4.elf", kPi4);
    ASSERT_TRUE(held.found());
    tree.write("set/start4.elf.tmp", "new firmware!");
    fs::rename(tree / "set/start4.elf.tmp", tree / "set/start4.elf");
    EXPECT_EQ(text(fw->resolve("start4.elf", kPi4)), "new firmware!");
    EXPECT_EQ(text(held), "old firmware");
}

TEST_F(FirmwareSetTest, ReplacedArchiveIsReindexedAndHeldMembersStayIntact) {
    const auto root = setWithArchive();
    const auto fw = set(root);
    const Lookup held = fw->resolve("start4.elf", kPi4);
    tree.writeBytes("set/bootfiles.new",
                    test::makeTar({{"2711/start4.elf", "new archive start4"}}));
    fs::rename(tree / "set/bootfiles.new", root / "bootfiles.bin");
    EXPECT_EQ(text(fw->resolve("start4.elf", kPi4)), "new archive start4");
    EXPECT_EQ(text(held), "archive start4");
}

TEST_F(FirmwareSetTest, CorruptArchiveAtRuntimeIsRefusedNotHalfServed) {
    const auto root = setWithArchive();
    const auto fw = set(root);
    auto broken = test::makeTar({{"2711/start4.elf", "x"}});
    broken[0] ^= 0x20;
    tree.writeBytes("set/bootfiles.new", broken);
    fs::rename(tree / "set/bootfiles.new", root / "bootfiles.bin");
    expectRefused(fw->resolve("start4.elf", kPi4), "checksum");
}

TEST_F(FirmwareSetTest, ConstructionRejectsAMissingRoot) {
    try {
        set(tree / "nope");
        FAIL() << "accepted a missing root";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), Errc::NotFound);
    }
    tree.write("file", "x");
    EXPECT_THROW(set(tree / "file"), Error);
}

TEST_F(FirmwareSetTest, ConstructionRejectsACorruptArchive) {
    tree.write("set/bootfiles.bin", std::string(700, 'j'));
    try {
        set(tree / "set");
        FAIL() << "accepted a corrupt bootfiles.bin";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), Errc::Corrupt);
        EXPECT_NE(std::string(error.what()).find("bootfiles.bin"), std::string::npos);
    }
}

TEST_F(FirmwareSetTest, BoardsResolvingConcurrentlyShareOneBuffer) {
    tree.write("set/start4.elf", std::string(100000, 's'));
    const auto root = tree / "set";
    const auto fw = set(root);
    std::vector<Lookup> results(8);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < results.size(); ++i) {
        threads.emplace_back([&, i] {
            BoardFileSource source(*fw, kPi4);
            results[i] = source.lookup("start4.elf");
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    for (const auto& result : results) {
        ASSERT_TRUE(result.found());
        EXPECT_EQ(result.file->bytes.size(), 100000u);
        EXPECT_EQ(result.file->bytes.data(), results[0].file->bytes.data());
    }
}

}  // namespace
}  // namespace rpiboot
