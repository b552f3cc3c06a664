#include "rpiboot/firmware/tar_archive.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "fixture_files.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "tar_builder.hpp"

namespace rpiboot {
namespace {

using test::makeTar;

std::string text(std::span<const std::uint8_t> bytes) {
    return std::string(bytes.begin(), bytes.end());
}

// Parses and returns the Errc::Corrupt message; fails the test otherwise.
std::string corruptMessage(const std::vector<std::uint8_t>& archive) {
    try {
        TarArchive tar(archive, "test.tar");
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), Errc::Corrupt) << error.what();
        return error.what();
    }
    ADD_FAILURE() << "archive was accepted";
    return {};
}

class RealBootfiles : public ::testing::Test {
  protected:
    std::vector<std::uint8_t> bytes = test::readWhole(test::fixturesDir() / "bootfiles.bin");
};

TEST_F(RealBootfiles, ListsRegularMembersInStoredOrderWithUpstreamSizes) {
    const TarArchive tar(bytes, "bootfiles.bin");
    const std::vector<std::pair<std::string, std::uint64_t>> expected = {
        {"2711/mcb.bin", 11696},      {"2711/memsys01.bin", 20492},   {"2711/memsys06.bin", 20492},
        {"2711/memsys08.bin", 20492}, {"2711/bootmain", 265712},      {"2711/logo.bin", 12844},
        {"2711/memsys07.bin", 20492}, {"2711/memsys00.bin", 20492},   {"2711/memsys03.bin", 20492},
        {"2711/memsys04.bin", 20492}, {"2711/bootcode4.bin", 73120},  {"2711/font.bin", 27404},
        {"2711/memsys05.bin", 20492}, {"2711/memsys02.bin", 20492},   {"2712/memsys00.bin", 40972},
        {"2712/rp1c0fw2.bin", 14864}, {"2712/font.bin", 27404},       {"2712/memsys01.bin", 40972},
        {"2712/memsys02.bin", 40972}, {"2712/bootsys-ab.bin", 25984}, {"2712/bootmain", 556668},
        {"2712/logo.bin", 12844},     {"2712/mcb.bin", 7092},         {"2712/memsys03.bin", 40972},
        {"2712/rp1c0fw1.bin", 16384}, {"2712/bootcode5.bin", 78332},
    };
    ASSERT_EQ(tar.members().size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(tar.members()[i].name, expected[i].first) << "member " << i;
        EXPECT_EQ(tar.members()[i].size, expected[i].second) << expected[i].first;
    }
}

TEST_F(RealBootfiles, MemberBytesMatchWhatTarExtracts) {
    test::ScratchDir tree;
    const std::string command = "tar -xf '" + (test::fixturesDir() / "bootfiles.bin").string() +
                                "' -C '" + tree.path().string() + "'";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    const TarArchive tar(bytes, "bootfiles.bin");
    for (const auto& member : tar.members()) {
        const auto extracted = test::readWhole(tree / member.name);
        const auto contents = tar.contents(member);
        EXPECT_TRUE(
            std::equal(contents.begin(), contents.end(), extracted.begin(), extracted.end()))
            << member.name << " differs from tar's extraction";
    }
}

TEST_F(RealBootfiles, FindsMembersIgnoringCase) {
    const TarArchive tar(bytes, "bootfiles.bin");
    const TarMember* member = tar.find("2711/BOOTCODE4.BIN");
    ASSERT_NE(member, nullptr);
    EXPECT_EQ(member->name, "2711/bootcode4.bin");
    EXPECT_EQ(member->size, 73120u);
    EXPECT_EQ(tar.find("2712/Bootmain")->size, 556668u);
}

TEST_F(RealBootfiles, DirectoriesAndAbsentNamesAreNotFound) {
    const TarArchive tar(bytes, "bootfiles.bin");
    EXPECT_EQ(tar.find("2711/"), nullptr);
    EXPECT_EQ(tar.find("2711"), nullptr);
    EXPECT_EQ(tar.find("2710/bootcode.bin"), nullptr);
    EXPECT_EQ(tar.find("bootcode4.bin"), nullptr);
}

TEST(TarArchive, EmptyInputHasNoMembers) {
    const TarArchive tar(std::span<const std::uint8_t>{}, "empty.tar");
    EXPECT_TRUE(tar.members().empty());
}

TEST(TarArchive, JoinsUstarPrefixAndName) {
    const auto archive = makeTar({{"bootcode4.bin", "abc", '0', "deep/2711"}});
    const TarArchive tar(archive, "test.tar");
    ASSERT_EQ(tar.members().size(), 1u);
    EXPECT_EQ(tar.members()[0].name, "deep/2711/bootcode4.bin");
    ASSERT_NE(tar.find("DEEP/2711/bootcode4.bin"), nullptr);
    EXPECT_EQ(text(tar.contents(*tar.find("deep/2711/bootcode4.bin"))), "abc");
}

TEST(TarArchive, ReadsPrefixWrittenBySystemTarForLongNames) {
    test::ScratchDir tree;
    const std::string dir(120, 'd');
    tree.write("in/" + dir + "/file.bin", "long-name payload");
    const std::string command = "tar --format=ustar -cf '" + (tree / "out.tar").string() +
                                "' -C '" + (tree / "in").string() + "' " + dir + "/file.bin";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    const auto archive = test::readWhole(tree / "out.tar");
    const TarArchive tar(archive, "out.tar");
    const TarMember* member = tar.find(dir + "/file.bin");
    ASSERT_NE(member, nullptr);
    EXPECT_EQ(text(tar.contents(*member)), "long-name payload");
}

TEST(TarArchive, SkipsDirectoriesLinksAndExtensionHeaders) {
    const auto archive = makeTar({{"2711/", "", '5'},
                                  {"2711/link", "", '2'},
                                  {"pax", "17 path=whatever\n", 'x'},
                                  {"2711/start.elf", "elf", '0'},
                                  {"2711/old", "old", '\0'}});
    const TarArchive tar(archive, "test.tar");
    ASSERT_EQ(tar.members().size(), 2u);
    EXPECT_EQ(tar.members()[0].name, "2711/start.elf");
    EXPECT_EQ(tar.members()[1].name, "2711/old");
    EXPECT_EQ(tar.find("pax"), nullptr);
}

TEST(TarArchive, FirstOfTwoMembersWithTheSameNameWins) {
    const auto archive = makeTar({{"a.bin", "first"}, {"A.BIN", "second"}});
    const TarArchive tar(archive, "test.tar");
    EXPECT_EQ(tar.members().size(), 2u);
    EXPECT_EQ(text(tar.contents(*tar.find("a.bin"))), "first");
}

TEST(TarArchive, StopsAtTheFirstZeroBlock) {
    auto archive = makeTar({{"a.bin", "a"}});
    const auto garbage = makeTar({{"b.bin", "b"}});
    archive.insert(archive.end(), garbage.begin(), garbage.end());
    archive.insert(archive.end(), 100, 0xff);  // not even a whole block
    const TarArchive tar(archive, "test.tar");
    ASSERT_EQ(tar.members().size(), 1u);
    EXPECT_EQ(tar.find("b.bin"), nullptr);
}

TEST(TarArchive, AcceptsAnArchiveWithoutEndBlocks) {
    const auto archive = makeTar({{"a.bin", std::string(600, 'x')}}, false);
    const TarArchive tar(archive, "test.tar");
    ASSERT_EQ(tar.members().size(), 1u);
    EXPECT_EQ(tar.members()[0].size, 600u);
}

TEST(TarArchive, BadChecksumIsCorruptAndNamesOffsetAndMember) {
    auto archive = makeTar({{"a.bin", "a"}, {"b.bin", "b"}});
    archive[512 + 512 + 1] ^= 0x01;  // flip a bit in b.bin's header name
    const std::string message = corruptMessage(archive);
    EXPECT_NE(message.find("test.tar"), std::string::npos) << message;
    EXPECT_NE(message.find("offset 1024"), std::string::npos) << message;
    EXPECT_NE(message.find("checksum"), std::string::npos) << message;
}

TEST(TarArchive, NonOctalChecksumIsCorrupt) {
    auto archive = makeTar({{"a.bin", "a"}});
    archive[148] = 'z';
    EXPECT_NE(corruptMessage(archive).find("checksum field"), std::string::npos);
}

TEST(TarArchive, SizeBeyondTheEndIsCorrupt) {
    // A member claiming 4 KiB in an archive that holds only one data block.
    auto archive = makeTar({{"big.bin", "x"}}, false);
    auto header = test::tarHeader({"big.bin", ""}, 4096);
    std::copy(header.begin(), header.end(), archive.begin());
    const std::string message = corruptMessage(archive);
    EXPECT_NE(message.find("big.bin"), std::string::npos) << message;
    EXPECT_NE(message.find("claims 4096 bytes but only 512 remain"), std::string::npos) << message;
}

TEST(TarArchive, NonOctalSizeIsCorrupt) {
    auto archive = makeTar({{"a.bin", "a"}});
    archive[124 + 5] = '9';
    test::setChecksum(archive, 0);
    const std::string message = corruptMessage(archive);
    EXPECT_NE(message.find("size field"), std::string::npos) << message;
    EXPECT_NE(message.find("a.bin"), std::string::npos) << message;
}

TEST(TarArchive, EmptySizeFieldIsCorrupt) {
    auto archive = makeTar({{"a.bin", "a"}});
    std::fill_n(archive.begin() + 124, 12, 0);
    test::setChecksum(archive, 0);
    EXPECT_NE(corruptMessage(archive).find("size field"), std::string::npos);
}

TEST(TarArchive, Base256SizeIsCorrupt) {
    auto archive = makeTar({{"a.bin", "a"}});
    archive[124] = 0x80;
    test::setChecksum(archive, 0);
    EXPECT_NE(corruptMessage(archive).find("base-256"), std::string::npos);
}

TEST(TarArchive, TruncatedHeaderIsCorrupt) {
    auto archive = makeTar({{"a.bin", "a"}, {"b.bin", "b"}}, false);
    archive.resize(1024 + 100);
    const std::string message = corruptMessage(archive);
    EXPECT_NE(message.find("offset 1024"), std::string::npos) << message;
    EXPECT_NE(message.find("truncated header"), std::string::npos) << message;
}

TEST(TarArchive, EveryTruncationEitherParsesOrIsCorrupt) {
    const auto archive =
        makeTar({{"a.bin", std::string(700, 'a')}, {"b.bin", "b"}, {"c/", "", '5'}});
    for (std::size_t length = 0; length <= archive.size(); ++length) {
        const std::span<const std::uint8_t> prefix(archive.data(), length);
        try {
            const TarArchive tar(prefix, "cut.tar");
            for (const auto& member : tar.members()) {
                EXPECT_LE(member.offset + member.size, length);
            }
        } catch (const Error& error) {
            EXPECT_EQ(error.code(), Errc::Corrupt) << "length " << length;
        }
    }
}

TEST(TarArchive, RefusesContentsOfAForeignMember) {
    const auto archive = makeTar({{"a.bin", "a"}});
    const TarArchive tar(archive, "test.tar");
    const TarMember foreign{"x", 1 << 20, 10};
    EXPECT_THROW(tar.contents(foreign), Error);
}

}  // namespace
}  // namespace rpiboot
