// FAT boot images: our writer checked by fsck.fat, mtools and our own reader,
// and our reader checked against a real boot image and mtools.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/image/boot_files.hpp"
#include "rpiboot/image/fat_reader.hpp"
#include "rpiboot/image/fat_writer.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "rpiboot_test/test_keys.hpp"
#include "rpiboot_test/thrown_by.hpp"

namespace rpiboot {
namespace {

using namespace rpiboot::test;
using ::testing::HasSubstr;

const std::filesystem::path kFixtures = RPIBOOT_FIXTURES_DIR;
const std::filesystem::path kRealBootImage =
    kFixtures / "mass-storage-gadget64/boot-secure-msd.img";
constexpr std::int64_t kTime = 1700000000;  // 2023-11-14 22:13:20 UTC

std::string q(const std::filesystem::path& p) {
    return shellQuote(p.string());
}

Bytes pattern(std::size_t size, std::uint32_t seed) {
    Bytes b(size);
    std::mt19937 rng(seed);
    for (auto& x : b) {
        x = static_cast<std::uint8_t>(rng());
    }
    return b;
}

Bytes text(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

// A boot partition in miniature: 8.3 names in either case, long names, a
// subdirectory, an empty file and a file spanning many clusters.
std::vector<BootFile> sampleFiles() {
    return {
        {"config.txt", text("[all]\narm_64bit=1\n"), kTime, false},
        {"cmdline.txt", text("console=serial0,115200 root=/dev/ram0\n"), kTime, false},
        {"kernel8.img", pattern(150 * 1024 + 17, 1), kTime, false},
        {"bcm2711-rpi-4-b.dtb", pattern(52000, 2), kTime, false},
        {"bcm2711-rpi-400.dtb", pattern(51000, 3), kTime, false},
        {"bcm2711-rpi-cm4.dtb", pattern(50000, 4), kTime, false},
        {"START4.ELF", pattern(30000, 5), kTime, false},
        {"Mixed.Case Name.txt", text("mixed"), kTime, false},
        {"empty.dat", {}, kTime, false},
        {"overlays/README", text("overlays go here\n"), kTime, false},
        {"overlays/vc4-kms-v3d-pi4.dtbo", pattern(3000, 6), kTime, false},
        {"overlays/deeper/dwc2.dtbo", pattern(1500, 7), kTime, false},
    };
}

BootImageOptions fixedTime() {
    BootImageOptions o;
    o.timestamp = kTime;
    return o;
}

// Runs fsck.fat read-only; returns its output (the test fails on a non-zero exit).
std::string fsckClean(const std::filesystem::path& image) {
    auto r = run("fsck.fat -n " + q(image));
    EXPECT_EQ(r.exitCode, 0) << r.output;
    return r.output;
}

std::set<std::string> mtoolsListing(const std::filesystem::path& image) {
    auto r = run("MTOOLS_SKIP_CHECK=1 mdir -i " + q(image) + " -/ -b ::");
    EXPECT_EQ(r.exitCode, 0) << r.output;
    std::set<std::string> paths;
    std::size_t start = 0;
    while (start < r.output.size()) {
        std::size_t end = r.output.find('\n', start);
        std::string line = r.output.substr(start, end - start);
        if (line.rfind("::/", 0) == 0) {
            std::string path = line.substr(3);
            if (!path.empty() && path.back() == '/') {
                path.pop_back();  // directories
            }
            paths.insert(path);
        }
        start = end == std::string::npos ? r.output.size() : end + 1;
    }
    return paths;
}

Bytes mtoolsExtract(const std::filesystem::path& image, const std::string& path,
                    const std::filesystem::path& out) {
    auto r =
        run("MTOOLS_SKIP_CHECK=1 mcopy -n -i " + q(image) + " " + q("::/" + path) + " " + q(out));
    EXPECT_EQ(r.exitCode, 0) << r.output;
    return readFileBytes(out);
}

class BootImageTest : public ::testing::Test {
  protected:
    ScratchDir scratch;
};

TEST_F(BootImageTest, ImageOfSampleFilesPassesFsckAndListsInMtools) {
    auto files = sampleFiles();
    Bytes image = buildFatImage(files, fixedTime());
    writeFileBytes(scratch / "boot.img", image);
    std::string fsck = fsckClean(scratch / "boot.img");
    EXPECT_THAT(fsck, HasSubstr("15 files"));  // 12 files + 2 directories + the label

    std::set<std::string> expected;
    for (const auto& f : files) {
        expected.insert(f.path);
    }
    expected.insert("overlays");
    expected.insert("overlays/deeper");
    EXPECT_EQ(mtoolsListing(scratch / "boot.img"), expected);
    for (const auto& f : files) {
        EXPECT_EQ(mtoolsExtract(scratch / "boot.img", f.path, scratch / "out.bin"), f.data)
            << f.path << " differs when mtools extracts it";
    }
}

TEST_F(BootImageTest, OurReaderReadsBackEveryFileOfOurImage) {
    auto files = sampleFiles();
    Bytes image = buildFatImage(files, fixedTime());
    FatReader reader(image, "boot.img");
    EXPECT_EQ(reader.info().type, FatType::Fat12);
    EXPECT_EQ(reader.info().volumeLabel, "BOOT");
    EXPECT_EQ(reader.info().sectorsPerCluster, 1u);
    EXPECT_EQ(reader.info().fatCount, 1u);
    EXPECT_EQ(reader.info().rootDirEntries, 256u);
    std::map<std::string, Bytes> found;
    for (const auto& [path, entry] : reader.walk()) {
        if (!entry.isDirectory) {
            found[path] = reader.read(path);
            EXPECT_EQ(entry.mtime, kTime) << path;
        }
    }
    ASSERT_EQ(found.size(), files.size());
    for (const auto& f : files) {
        EXPECT_EQ(found[f.path], f.data) << f.path;
    }
    EXPECT_EQ(reader.read("OVERLAYS/readme"), text("overlays go here\n"));  // case-insensitive
}

TEST_F(BootImageTest, ShortNamesKeepTheirCaseAndLongNamesGetUniqueAliases) {
    Bytes image = buildFatImage(sampleFiles(), fixedTime());
    FatReader reader(image, "boot.img");
    std::map<std::string, std::string> shortOf;
    for (const auto& e : reader.list("")) {
        shortOf[e.name] = e.shortName;
    }
    EXPECT_EQ(shortOf["config.txt"], "CONFIG.TXT");
    EXPECT_EQ(shortOf["START4.ELF"], "START4.ELF");
    EXPECT_EQ(shortOf["bcm2711-rpi-4-b.dtb"], "BCM271~1.DTB");
    EXPECT_EQ(shortOf["bcm2711-rpi-400.dtb"], "BCM271~2.DTB");
    EXPECT_EQ(shortOf["bcm2711-rpi-cm4.dtb"], "BCM271~3.DTB");
    EXPECT_EQ(shortOf["Mixed.Case Name.txt"], "MIXEDC~1.TXT");  // inner dots dropped
}

TEST_F(BootImageTest, AutomaticSizeHoldsTheFilesPlusTheOverhead) {
    auto files = sampleFiles();
    Bytes image = buildFatImage(files, fixedTime());
    FatReader reader(image, "boot.img");
    std::uint64_t dataBytes = 0;
    for (const auto& f : files) {
        dataBytes += (f.data.size() + 511) / 512 * 512;
    }
    std::uint64_t clusterBytes = std::uint64_t{reader.info().clusterCount} * 512;
    EXPECT_GE(clusterBytes, dataBytes + std::uint64_t{16} * 1024);
    EXPECT_LT(clusterBytes, dataBytes + std::uint64_t{24} * 1024);
}

TEST_F(BootImageTest, SameInputsGiveTheSameImage) {
    EXPECT_EQ(buildFatImage(sampleFiles(), fixedTime()), buildFatImage(sampleFiles(), fixedTime()));
    auto changed = sampleFiles();
    changed[0].data.push_back('\n');
    FatReader a(buildFatImage(sampleFiles(), fixedTime()), "a");
    FatReader b(buildFatImage(changed, fixedTime()), "b");
    EXPECT_NE(a.info().volumeId, b.info().volumeId);
}

TEST_F(BootImageTest, EveryFatWidthPassesFsckAndReadsBack) {
    for (FatType type : {FatType::Fat12, FatType::Fat16, FatType::Fat32}) {
        BootImageOptions o = fixedTime();
        o.fatType = type;
        Bytes image = buildFatImage(sampleFiles(), o);
        writeFileBytes(scratch / "boot.img", image);
        SCOPED_TRACE(std::string(toString(type)));
        fsckClean(scratch / "boot.img");
        auto r = run("MTOOLS_SKIP_CHECK=1 minfo -i " + q(scratch / "boot.img") + " ::");
        EXPECT_THAT(r.output, HasSubstr("disk type=\"" + std::string(toString(type))));
        FatReader reader(image, "boot.img");
        EXPECT_EQ(reader.info().type, type);
        EXPECT_EQ(reader.read("overlays/deeper/dwc2.dtbo"), pattern(1500, 7));
        EXPECT_EQ(mtoolsListing(scratch / "boot.img").size(), sampleFiles().size() + 2);
    }
}

TEST_F(BootImageTest, LargerSectorsAndClustersPassFsck) {
    BootImageOptions o = fixedTime();
    o.sectorSize = 4096;
    o.sectorsPerCluster = 2;
    o.rootDirEntries = 512;
    Bytes image = buildFatImage(sampleFiles(), o);
    writeFileBytes(scratch / "boot.img", image);
    fsckClean(scratch / "boot.img");
    FatReader reader(image, "boot.img");
    EXPECT_EQ(reader.info().sectorSize, 4096u);
    EXPECT_EQ(reader.read("kernel8.img"), pattern(150 * 1024 + 17, 1));
}

TEST_F(BootImageTest, FixedSizeTooSmallForTheFilesIsRefused) {
    BootImageOptions o = fixedTime();
    o.imageSizeKiB = 128;
    Error e = thrownBy([&] { buildFatImage(sampleFiles(), o); });
    EXPECT_EQ(e.code(), Errc::TooLarge);
    EXPECT_THAT(e.what(), HasSubstr("a 128 KiB FAT12 image holds only"));
    o.imageSizeKiB = 2048;
    Bytes image = buildFatImage(sampleFiles(), o);
    EXPECT_EQ(image.size(), 2048u * 1024);
    writeFileBytes(scratch / "boot.img", image);
    fsckClean(scratch / "boot.img");
}

TEST_F(BootImageTest, FullRootDirectoryIsRefused) {
    std::vector<BootFile> files;
    files.reserve(300);
    for (int i = 0; i < 300; ++i) {
        std::string name(1, 'F');  // not "F" + ...: GCC 12 -O3 -Wrestrict (GCC bug 105329)
        name += std::to_string(i);
        name += ".DTB";
        files.push_back({name, text("x"), kTime, false});
    }
    Error e = thrownBy([&] { buildFatImage(files, fixedTime()); });
    EXPECT_EQ(e.code(), Errc::TooLarge);
    EXPECT_THAT(e.what(), HasSubstr("root directory needs 301 entries but holds 256"));
}

TEST_F(BootImageTest, NamesFatCannotHoldAreRefused) {
    auto bad = [](std::vector<BootFile> files) {
        return thrownBy([&] { buildFatImage(files, BootImageOptions{}); });
    };
    EXPECT_THAT(bad({{"a.txt", {}, 0, false}, {"A.TXT", {}, 0, false}}).what(),
                HasSubstr("appears twice"));
    EXPECT_THAT(bad({{"what?.txt", {}, 0, false}}).what(), HasSubstr("not allowed"));
    EXPECT_THAT(bad({{"../escape", {}, 0, false}}).what(), HasSubstr("'..'"));
    EXPECT_THAT(bad({{"x/y", {}, 0, false}, {"x", {}, 0, false}}).what(),
                HasSubstr("appears twice"));
}

TEST_F(BootImageTest, RealBootImageListsAndExtractsLikeMtools) {
    Bytes image = readFileBytes(kRealBootImage);
    FatReader reader(image, kRealBootImage.filename().string());
    EXPECT_EQ(reader.info().type, FatType::Fat12);
    EXPECT_EQ(reader.info().sectorsPerCluster, 4u);
    EXPECT_EQ(reader.info().volumeLabel, "BOOT");
    EXPECT_EQ(reader.info().volumeId, 0x9974f8b8u);
    auto entries = reader.list("/");
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].name, "start4.elf");
    EXPECT_EQ(entries[0].size, 301628u);
    Bytes ours = reader.read("start4.elf");
    EXPECT_EQ(ours.size(), 301628u);
    EXPECT_EQ(ours, mtoolsExtract(kRealBootImage, "start4.elf", scratch / "start4.elf"));
    EXPECT_EQ(mtoolsListing(kRealBootImage), std::set<std::string>{"start4.elf"});
}

TEST_F(BootImageTest, MissingFileAndNonFatImageAreReportedClearly) {
    Bytes image = buildFatImage(sampleFiles(), fixedTime());
    FatReader reader(image, "boot.img");
    Error missing = thrownBy([&] { reader.read("kernel7.img"); });
    EXPECT_EQ(missing.code(), Errc::NotFound);
    EXPECT_THAT(missing.what(), HasSubstr("kernel7.img is not in boot.img"));

    Error notFat = thrownBy([] { FatReader(Bytes(4096, 0), "pieeprom.bin"); });
    EXPECT_EQ(notFat.code(), Errc::Corrupt);
    EXPECT_THAT(notFat.what(), HasSubstr("pieeprom.bin is not a FAT image"));

    Bytes truncated(image.begin(), image.begin() + static_cast<long>(image.size() / 2));
    EXPECT_THAT(thrownBy([&] { FatReader(truncated, "half.img"); }).what(),
                HasSubstr("half.img is truncated"));
}

TEST_F(BootImageTest, ClusterChainLoopIsDetected) {
    Bytes image = buildFatImage({{"loop.bin", pattern(4000, 9), kTime, false}}, fixedTime());
    FatReader clean(image, "x");
    std::uint32_t first = clean.list("")[0].firstCluster;
    // FAT12: point the file's second cluster back at its first.
    std::size_t fat = 512;
    std::uint32_t second = first + 1;
    std::size_t at = fat + second + second / 2;
    if (second & 1) {
        image[at] = static_cast<std::uint8_t>((image[at] & 0x0f) | ((first << 4) & 0xf0));
        image[at + 1] = static_cast<std::uint8_t>(first >> 4);
    } else {
        image[at] = static_cast<std::uint8_t>(first);
        image[at + 1] = static_cast<std::uint8_t>((image[at + 1] & 0xf0) | ((first >> 8) & 0x0f));
    }
    FatReader reader(image, "loop.img");
    Error e = thrownBy([&] { reader.read("loop.bin"); });
    EXPECT_EQ(e.code(), Errc::Corrupt);
    EXPECT_THAT(e.what(), HasSubstr("loops"));
}

TEST_F(BootImageTest, RandomlyCorruptedImagesOnlyEverThrowCorrupt) {
    const Bytes original = buildFatImage(sampleFiles(), fixedTime());
    FatReader clean(original, "x");
    std::mt19937 rng(7);
    // Damage the boot sector, the FAT and the directories (the first ~20 KiB).
    for (int round = 0; round < 300; ++round) {
        Bytes b = original;
        for (int k = 0; k < 4; ++k) {
            b[rng() % 20480] = static_cast<std::uint8_t>(rng());
        }
        try {
            FatReader reader(b, "fuzz.img");
            for (const auto& [path, entry] : reader.walk()) {
                if (!entry.isDirectory) {
                    reader.read(path);
                }
            }
        } catch (const Error& e) {
            EXPECT_TRUE(e.code() == Errc::Corrupt || e.code() == Errc::NotFound ||
                        e.code() == Errc::InvalidArgument)
                << e.what();
        }
    }
}

std::vector<std::string> paths(const std::vector<BootFile>& files) {
    std::vector<std::string> out;
    out.reserve(files.size());
    for (const auto& f : files) {
        out.push_back(f.path);
    }
    return out;
}

std::vector<BootFile> firmwareTree() {
    std::vector<BootFile> files;
    for (const char* name :
         {"bootcode.bin", "start.elf", "fixup.dat", "start4.elf", "fixup4.dat", "start4x.elf",
          "fixup4x.dat", "start4cd.elf", "kernel.img", "kernel7.img", "kernel7l.img", "kernel8.img",
          "kernel_2712.img", "bcm2708-rpi-b.dtb", "bcm2710-rpi-3-b.dtb", "bcm2711-rpi-4-b.dtb",
          "bcm2711-rpi-400.dtb", "config.txt", "overlays/start.elf"}) {
        files.push_back({name, text(name), kTime, false});
    }
    return files;
}

TEST_F(BootImageTest, Pi4On64BitKeepsOnlyWhatAPi4Loads) {
    auto files = firmwareTree();
    pruneBootFiles(files, BoardFilter::Pi4, KernelArch::Arm64);
    EXPECT_EQ(paths(files), (std::vector<std::string>{"start4.elf", "fixup4.dat", "kernel8.img",
                                                      "bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb",
                                                      "config.txt", "overlays/start.elf"}));
}

TEST_F(BootImageTest, ArchitectureAloneDropsTheOtherKernel) {
    auto all64 = firmwareTree();
    pruneBootFiles(all64, BoardFilter::All, KernelArch::Arm64);
    EXPECT_EQ(all64.size(), firmwareTree().size() - 1);
    EXPECT_THAT(paths(all64), ::testing::Not(::testing::Contains("kernel7l.img")));
    auto all32 = firmwareTree();
    pruneBootFiles(all32, BoardFilter::All, KernelArch::Arm32);
    EXPECT_THAT(paths(all32), ::testing::Not(::testing::Contains("kernel8.img")));
    EXPECT_THAT(paths(all32), ::testing::Contains("kernel7l.img"));
}

TEST_F(BootImageTest, BoardNamesParse) {
    EXPECT_EQ(parseBoardFilter("pi4"), BoardFilter::Pi4);
    EXPECT_EQ(parseBoardFilter("pi400"), BoardFilter::Pi400);
    EXPECT_EQ(parseBoardFilter("cm4"), BoardFilter::Cm4);
    EXPECT_EQ(parseBoardFilter("pi5"), std::nullopt);
}

TEST_F(BootImageTest, DirectoryTreeIsCollectedWithoutTopLevelHiddenFiles) {
    std::filesystem::create_directories(scratch / "boot/overlays");
    test::writeText(scratch / "boot/config.txt", "[all]\n");
    test::writeText(scratch / "boot/.git-keep", "");
    test::writeText(scratch / "boot/overlays/.hidden", "h");
    test::writeText(scratch / "boot/overlays/a.dtbo", "a");
    std::filesystem::create_symlink("config.txt", scratch / "boot/linked.txt");
    auto files = collectBootFiles(scratch / "boot");
    EXPECT_EQ(paths(files), (std::vector<std::string>{"config.txt", "linked.txt", "overlays",
                                                      "overlays/.hidden", "overlays/a.dtbo"}));
    EXPECT_EQ(files[1].data, text("[all]\n"));
    EXPECT_EQ(thrownBy([&] { collectBootFiles(scratch / "nope"); }).code(), Errc::NotFound);
}

}  // namespace
}  // namespace rpiboot
