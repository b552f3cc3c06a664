// bmap files: the parser accepts what bmaptool writes and rejects malformed
// files with the line; the writer writes only mapped ranges and checks each.
#include "rpiboot/storage/bmap.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <utility>

#include "rpiboot/core/error.hpp"
#include "rpiboot/storage/writer.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "rpiboot_test/thrown_by.hpp"
#include "storage_test_util.hpp"

namespace rpiboot::storage {
namespace {

using namespace rpiboot::storage::test;
using rpiboot::test::ScratchDir;
using rpiboot::test::thrownBy;
using ::testing::HasSubstr;

constexpr std::uint64_t kBlock = 4096;

// A bmap (version 2.0, sha256) of `image` mapping the given block ranges,
// with its file checksum filled in.
std::string makeBmap(const Bytes& image, const std::vector<std::pair<int, int>>& ranges,
                     bool withFileChecksum = true) {
    std::uint64_t mapped = 0;
    std::string body;
    for (const auto& [a, b] : ranges) {
        const std::uint64_t begin = a * kBlock;
        const std::uint64_t end = std::min<std::uint64_t>((b + 1) * kBlock, image.size());
        const Bytes part(image.begin() + static_cast<long>(begin),
                         image.begin() + static_cast<long>(end));
        body += "        <Range chksum=\"" + sha(part) + "\"> " +
                (a == b ? std::to_string(a) : std::to_string(a) + "-" + std::to_string(b)) +
                " </Range>\n";
        mapped += static_cast<std::uint64_t>(b - a + 1);
    }
    std::string xml = "<?xml version=\"1.0\" ?>\n<!-- a test map -->\n<bmap version=\"2.0\">\n";
    xml += "    <ImageSize> " + std::to_string(image.size()) + " </ImageSize>\n";
    xml += "    <BlockSize> 4096 </BlockSize>\n";
    xml += "    <BlocksCount> " + std::to_string((image.size() + kBlock - 1) / kBlock) +
           " </BlocksCount>\n";
    xml += "    <MappedBlocksCount> " + std::to_string(mapped) + " </MappedBlocksCount>\n";
    xml += "    <ChecksumType> sha256 </ChecksumType>\n";
    if (withFileChecksum) {
        xml += "    <BmapFileChecksum> " + std::string(64, '0') + " </BmapFileChecksum>\n";
    }
    xml += "    <BlockMap>\n" + body + "    </BlockMap>\n</bmap>\n";
    if (withFileChecksum) {
        const std::string sum = sha(Bytes(xml.begin(), xml.end()));
        xml.replace(xml.find(std::string(64, '0')), 64, sum);
    }
    return xml;
}

TEST(Bmap, ParsesWhatBmaptoolWrites) {
    const Bytes image = makeImage(10 * kBlock + 100);
    const Bmap m = parseBmap(makeBmap(image, {{0, 1}, {4, 4}, {7, 10}}), "t.bmap");
    EXPECT_EQ(m.version, "2.0");
    EXPECT_EQ(m.imageSize, image.size());
    EXPECT_EQ(m.blockSize, kBlock);
    EXPECT_EQ(m.blocksCount, 11u);
    EXPECT_EQ(m.mappedBlocksCount, 7u);
    EXPECT_EQ(m.checksumType, ChecksumType::Sha256);
    ASSERT_EQ(m.ranges.size(), 3u);
    EXPECT_EQ(m.ranges[1].first, 4u);
    EXPECT_EQ(m.ranges[1].last, 4u);
    EXPECT_EQ(m.ranges[2].first, 7u);
    EXPECT_EQ(m.ranges[2].last, 10u);
    EXPECT_EQ(m.rangeLength(m.ranges[2]), 3 * kBlock + 100);  // the short last block
    EXPECT_EQ(m.mappedBytes(), 6 * kBlock + 100);
}

TEST(Bmap, ParsesVersion1WithSha1Ranges) {
    const std::string xml =
        "<bmap version=\"1.3\">\n<ImageSize>8192</ImageSize><BlockSize>4096</BlockSize>"
        "<BlocksCount>2</BlocksCount><MappedBlocksCount>1</MappedBlocksCount>\n<BlockMap>"
        "<Range sha1=\"" +
        std::string(40, 'a') + "\">1</Range></BlockMap></bmap>";
    const Bmap m = parseBmap(xml, "v1.bmap");
    EXPECT_EQ(m.checksumType, ChecksumType::Sha1);
    EXPECT_EQ(m.ranges.at(0).checksum, std::string(40, 'a'));
}

struct Malformed {
    const char* name;
    std::string from, to;  // replace in a valid file
    const char* message;
};
void PrintTo(const Malformed& c, std::ostream* os) {
    *os << c.name;
}

class MalformedBmap : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedBmap, IsRejectedWithTheLine) {
    const Bytes image = makeImage(10 * kBlock);
    std::string xml = makeBmap(image, {{0, 1}, {4, 4}}, false);
    const auto at = xml.find(GetParam().from);
    ASSERT_NE(at, std::string::npos) << GetParam().from;
    xml.replace(at, GetParam().from.size(), GetParam().to);
    const Error e = thrownBy([&] { parseBmap(xml, "bad.bmap"); });
    EXPECT_EQ(e.code(), Errc::Corrupt);
    EXPECT_THAT(e.what(), HasSubstr("bad.bmap, line "));
    EXPECT_THAT(e.what(), HasSubstr(GetParam().message));
}

const Malformed kMalformed[] = {
    {"unclosed", "</BlockMap>", "", "closes"},
    {"not_a_number", "<BlockSize> 4096", "<BlockSize> 4k", "not a number"},
    {"bad_range", "> 4 <", "> 4-x <", "malformed range"},
    {"reversed_range", "> 0-1 <", "> 1-0 <", "malformed range"},
    {"overlap", "> 4 <", "> 1 <", "overlaps"},
    {"beyond", "> 4 <", "> 10 <", "beyond"},
    {"mapped_count", "<MappedBlocksCount> 3", "<MappedBlocksCount> 4", "MappedBlocksCount"},
    {"blocks_count", "<BlocksCount> 10", "<BlocksCount> 11", "BlocksCount"},
    {"checksum_type", "sha256 <", "md5 <", "ChecksumType"},
    {"short_checksum", "chksum=\"", "chksum=\"ab", "chksum"},
    {"doctype", "<!-- a test map -->", "<!-- x --><!DOCTYPE bmap>", "unsupported markup"},
    {"root", "<bmap version=\"2.0\">", "<map version=\"2.0\">", "closes"},
    {"version", "version=\"2.0\"", "version=\"3.0\"", "unsupported bmap version"},
    {"trailing", "</bmap>", "</bmap><bmap/>", "after the root"},
    {"missing", "<ImageSize>", "<ImageSizeX>", "ImageSizeX"},
};

INSTANTIATE_TEST_SUITE_P(Storage, MalformedBmap, ::testing::ValuesIn(kMalformed),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(Bmap, AFileChecksumThatDoesNotMatchIsRejected) {
    std::string xml = makeBmap(makeImage(4 * kBlock), {{0, 1}});
    xml.replace(xml.find("<!-- a test map -->"), 6, "<!-- b");
    const Error e = thrownBy([&] { parseBmap(xml, "t.bmap"); });
    EXPECT_THAT(e.what(), HasSubstr("checksum does not match"));
}

TEST(BmapWrite, WritesOnlyMappedRangesAndLeavesTheRestAlone) {
    ScratchDir dir;
    const Bytes image = makeImage(300 * kBlock + 777, 7);
    const std::vector<std::pair<int, int>> ranges{{0, 9}, {100, 100}, {200, 300}};
    const auto file = dir / "os.img.zst";
    writeFile(file, zst(image));
    const auto map = dir.write("os.bmap", makeBmap(image, ranges));
    const Bytes old(image.size() + 5000, 0xAA);
    const auto target = dir / "disk";
    writeFile(target, old);

    WriteOptions o;
    o.image = file;
    o.bmap = map;
    o.target = target;
    o.bufferSize = 64 * kBlock;  // ranges cross buffer boundaries
    std::uint64_t lastTotal = 0;
    o.progress = [&](const WriteProgress& p) { lastTotal = p.bytesToWrite; };
    const WriteResult r = writeImage(o);
    EXPECT_EQ(r.outcome, WriteOutcome::Verified) << r.message;
    EXPECT_TRUE(r.bmapUsed);
    EXPECT_EQ(r.imageSha256, sha(image));
    const std::uint64_t mapped = (10 + 1) * kBlock + 100 * kBlock + 777;
    EXPECT_EQ(r.bytesWritten, mapped);
    EXPECT_EQ(r.bytesVerified, mapped);
    EXPECT_EQ(lastTotal, mapped);

    const Bytes got = readFile(target);
    ASSERT_EQ(got.size(), old.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        const std::size_t block = i / kBlock;
        bool isMapped = false;
        for (const auto& [a, b] : ranges) {
            isMapped |= i < image.size() && block >= static_cast<std::size_t>(a) &&
                        block <= static_cast<std::size_t>(b);
        }
        ASSERT_EQ(got[i], isMapped ? image[i] : 0xAA) << "at " << i;
    }
}

TEST(BmapWrite, ARangeChecksumMismatchFailsNamingTheRange) {
    ScratchDir dir;
    Bytes image = makeImage(40 * kBlock, 3);
    const std::string xml = makeBmap(image, {{0, 3}, {10, 19}, {30, 39}}, false);
    image[15 * kBlock + 9] ^= 0xff;  // the image no longer matches its map
    const auto file = dir / "os.img";
    writeFile(file, image);
    const auto target = dir.write("disk", "");
    WriteOptions o;
    o.image = file;
    o.bmap = dir.write("os.bmap", xml);
    o.target = target;
    const Error e = thrownBy([&] { writeImage(o); });
    EXPECT_EQ(e.code(), Errc::Corrupt);
    EXPECT_THAT(e.what(), HasSubstr("range 10-19"));
    EXPECT_THAT(e.what(), HasSubstr(file.string()));
}

TEST(BmapWrite, AnImageShorterThanItsMapFails) {
    ScratchDir dir;
    const Bytes image = makeImage(40 * kBlock, 3);
    const std::string xml = makeBmap(image, {{0, 3}}, false);
    const auto file = dir / "os.img.gz";
    writeFile(file, gz(Bytes(image.begin(), image.begin() + 20 * kBlock)));
    WriteOptions o;
    o.image = file;
    o.bmap = dir.write("os.bmap", xml);
    o.target = dir.write("disk", "");
    const Error e = thrownBy([&] { writeImage(o); });
    EXPECT_EQ(e.code(), Errc::Corrupt);
    EXPECT_THAT(e.what(), HasSubstr("bmap says"));
}

}  // namespace
}  // namespace rpiboot::storage
