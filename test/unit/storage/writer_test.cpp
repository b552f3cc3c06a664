// Image sources and the writer: every format round-trips byte for byte,
// broken images fail clearly, verification catches a changed byte, and the
// writer refuses images larger than the target and stops when cancelled.
#include "rpiboot/storage/writer.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <stop_token>

#include "rpiboot/core/error.hpp"
#include "rpiboot/storage/image_source.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "rpiboot_test/thrown_by.hpp"
#include "storage_test_util.hpp"

namespace rpiboot::storage {
namespace {

using namespace rpiboot::storage::test;
using rpiboot::test::ScratchDir;
using rpiboot::test::thrownBy;
using ::testing::HasSubstr;

constexpr std::size_t kImageSize = (5u << 20) + 1234;  // an unaligned tail

struct Format {
    const char* name;
    const char* file;
    Bytes (*encode)(const Bytes&);
    ImageFormat format;
    bool sizeKnown;
};
void PrintTo(const Format& c, std::ostream* os) {
    *os << c.name;
}

Bytes identity(const Bytes& b) {
    return b;
}

const Format kFormats[] = {
    {"raw", "os.img", identity, ImageFormat::Raw, true},
    {"xz", "os.img.xz", xz, ImageFormat::Xz, true},
    {"zstd", "os.img.zst", zst, ImageFormat::Zstd, true},
    {"gzip", "os.img.gz", gz, ImageFormat::Gzip, false},
};

class Formats : public ::testing::TestWithParam<Format> {};

WriteOptions options(const std::filesystem::path& image, const std::filesystem::path& target) {
    WriteOptions o;
    o.image = image;
    o.target = target;
    o.bufferSize = 1u << 20;
    return o;
}

std::filesystem::path emptyTarget(const ScratchDir& dir, const char* name = "disk") {
    return dir.write(name, "");
}

TEST_P(Formats, WritesTheUncompressedImageByteForByteAndVerifiesIt) {
    ScratchDir dir;
    const Bytes image = makeImage(kImageSize);
    const auto file = dir / GetParam().file;
    writeFile(file, GetParam().encode(image));
    const auto target = emptyTarget(dir);

    std::vector<WriteProgress> seen;
    auto o = options(file, target);
    o.progress = [&](const WriteProgress& p) { seen.push_back(p); };
    const WriteResult r = writeImage(o);

    EXPECT_EQ(r.outcome, WriteOutcome::Verified) << r.message;
    EXPECT_EQ(readFile(target), image);
    EXPECT_EQ(r.imageSha256, sha(image));
    EXPECT_EQ(r.readBackSha256, sha(image));
    EXPECT_EQ(r.imageFormat, GetParam().name);
    EXPECT_EQ(r.imageName, GetParam().file);
    EXPECT_EQ(r.bytesWritten, image.size());
    EXPECT_EQ(r.bytesVerified, image.size());
    EXPECT_EQ(r.imageSize, image.size());
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back().bytesWritten, image.size());
    EXPECT_EQ(seen.back().bytesToWrite, GetParam().sizeKnown ? image.size() : 0u);
    for (std::size_t i = 1; i < seen.size(); ++i) {
        EXPECT_GT(seen[i].bytesWritten, seen[i - 1].bytesWritten);
    }
}

TEST_P(Formats, IsDetectedByMagicBytesNotByName) {
    ScratchDir dir;
    const Bytes image = makeImage(100000);
    const auto file = dir / "misnamed.bin";
    writeFile(file, GetParam().encode(image));
    EXPECT_EQ(detectImageFormat(file), GetParam().format);
    auto src = openImage(file);
    if (GetParam().sizeKnown) {
        EXPECT_EQ(src->uncompressedSize(), image.size());
    } else {
        EXPECT_EQ(src->uncompressedSize(), std::nullopt);
    }
    Bytes got(image.size() + 10);
    std::size_t n = 0;
    while (std::size_t k = src->read(got.data() + n, got.size() - n)) {
        n += k;
    }
    got.resize(n);
    EXPECT_EQ(got, image);
}

TEST(ImageSource, AddsUpTheFramesOfAMultiFrameZstdImage) {
    ScratchDir dir;
    const Bytes a = makeImage(300000, 1), b = makeImage(200000, 2);
    Bytes both = zst(a);
    const Bytes second = zst(b);
    both.insert(both.end(), second.begin(), second.end());
    writeFile(dir / "multi.img.zst", both);
    auto src = openImage(dir / "multi.img.zst");
    EXPECT_EQ(src->uncompressedSize(), a.size() + b.size());
    // Headers that do not add up to the file (truncated) make the total unknown.
    writeFile(dir / "cut.img.zst", Bytes(both.begin(), both.end() - 10));
    EXPECT_EQ(openImage(dir / "cut.img.zst")->uncompressedSize(), std::nullopt);

    const auto target = emptyTarget(dir);
    const WriteResult r = writeImage(options(dir / "multi.img.zst", target));
    EXPECT_EQ(r.outcome, WriteOutcome::Verified) << r.message;
    Bytes expected = a;
    expected.insert(expected.end(), b.begin(), b.end());
    EXPECT_EQ(readFile(target), expected);
}

INSTANTIATE_TEST_SUITE_P(Storage, Formats, ::testing::ValuesIn(kFormats),
                         [](const auto& p) { return std::string(p.param.name); });

struct Broken {
    const char* name;
    Bytes (*encode)(const Bytes&);
    bool truncate;  // else: corrupt a byte in the middle
};
void PrintTo(const Broken& c, std::ostream* os) {
    *os << c.name;
}

class BrokenImages : public ::testing::TestWithParam<Broken> {};

TEST_P(BrokenImages, FailWithAClearErrorAndNeverReportVerified) {
    ScratchDir dir;
    Bytes data = GetParam().encode(makeImage(3u << 20));
    if (GetParam().truncate) {
        data.resize(data.size() * 2 / 3);
    } else {
        for (std::size_t i = data.size() / 2; i < data.size() / 2 + 64; ++i) {
            data[i] ^= 0x5a;
        }
    }
    const auto file = dir / "broken.img";
    writeFile(file, data);
    const auto target = emptyTarget(dir);
    const Error e = thrownBy([&] { writeImage(options(file, target)); });
    EXPECT_EQ(e.code(), Errc::Corrupt) << e.what();
    EXPECT_THAT(e.what(), HasSubstr(file.string()));
    EXPECT_THAT(e.what(), HasSubstr("compressed offset"));
    if (GetParam().truncate) {
        EXPECT_THAT(e.what(), ::testing::AnyOf(HasSubstr("truncated"), HasSubstr("end of")));
    }
}

const Broken kBroken[] = {
    {"xz_truncated", xz, true},   {"xz_corrupt", xz, false},    {"zstd_truncated", zst, true},
    {"zstd_corrupt", zst, false}, {"gzip_truncated", gz, true}, {"gzip_corrupt", gz, false},
};

INSTANTIATE_TEST_SUITE_P(Storage, BrokenImages, ::testing::ValuesIn(kBroken),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(Writer, VerifyNamesTheOffsetOfAByteChangedAfterTheWrite) {
    ScratchDir dir;
    const Bytes image = makeImage(kImageSize);
    const auto file = dir / "os.img.zst";
    writeFile(file, zst(image));
    const auto target = emptyTarget(dir);
    constexpr std::uint64_t kFlipped = 3 * 1048576 + 4242;

    auto o = options(file, target);
    o.beforeVerify = [&] {
        std::fstream f(target, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(kFlipped);
        const char c = static_cast<char>(image[kFlipped] ^ 0x01);
        f.write(&c, 1);
    };
    const WriteResult r = writeImage(o);
    EXPECT_EQ(r.outcome, WriteOutcome::VerifyFailed);
    EXPECT_THAT(r.message, HasSubstr("offset " + std::to_string(kFlipped)));
    EXPECT_THAT(r.message, HasSubstr(target.string()));
    EXPECT_EQ(r.imageSha256, sha(image));
}

TEST(Writer, VerifyReadsTheUnalignedTailFromTheDiskToo) {
    ScratchDir dir;
    const Bytes image = makeImage(kImageSize);
    const auto file = dir / "os.img";
    writeFile(file, image);
    const auto target = emptyTarget(dir);
    const std::uint64_t flipped = image.size() - 3;  // in the last, partial block
    auto o = options(file, target);
    o.beforeVerify = [&] {
        std::fstream f(target, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(flipped));
        const char c = static_cast<char>(image[flipped] ^ 0x80);
        f.write(&c, 1);
    };
    const WriteResult r = writeImage(o);
    EXPECT_EQ(r.outcome, WriteOutcome::VerifyFailed);
    EXPECT_THAT(r.message, HasSubstr("offset " + std::to_string(flipped)));
}

TEST(Writer, RefusesAnImageLargerThanTheTargetBeforeWriting) {
    ScratchDir dir;
    const auto file = dir / "os.img.xz";
    writeFile(file, xz(makeImage(kImageSize)));
    const auto target = dir.write("disk", "previous contents");
    auto o = options(file, target);
    o.targetCapacity = kImageSize - 1;
    const Error e = thrownBy([&] { writeImage(o); });
    EXPECT_EQ(e.code(), Errc::TooLarge);
    EXPECT_THAT(e.what(), HasSubstr("larger than"));
    EXPECT_EQ(readFile(target), Bytes(std::string_view("previous contents").begin(),
                                      std::string_view("previous contents").end()));
}

TEST(Writer, StopsAtTheCapacityWhenTheSizeIsOnlyKnownAtTheEnd) {
    ScratchDir dir;
    const auto file = dir / "os.img.gz";  // gzip: size unknown up front
    writeFile(file, gz(makeImage(kImageSize)));
    const auto target = emptyTarget(dir);
    auto o = options(file, target);
    o.targetCapacity = 2u << 20;
    const Error e = thrownBy([&] { writeImage(o); });
    EXPECT_EQ(e.code(), Errc::TooLarge);
    EXPECT_LE(std::filesystem::file_size(target), 2u << 20);
}

TEST(Writer, CancellationStopsBetweenBuffersAndReportsIt) {
    ScratchDir dir;
    const auto file = dir / "os.img";
    writeFile(file, makeImage(kImageSize));
    const auto target = emptyTarget(dir);
    std::atomic<bool> cancel{false};
    auto o = options(file, target);
    o.cancel = &cancel;
    int calls = 0;
    o.progress = [&](const WriteProgress&) {
        if (++calls == 2) {
            cancel = true;
        }
    };
    const WriteResult r = writeImage(o);
    EXPECT_EQ(r.outcome, WriteOutcome::Cancelled);
    EXPECT_EQ(r.bytesWritten, 2u << 20);
    EXPECT_THAT(r.message, HasSubstr("cancelled"));
    EXPECT_EQ(std::filesystem::file_size(target), 2u << 20);
    EXPECT_TRUE(r.imageSha256.empty());
}

TEST(Writer, AStopTokenCancelsLikeTheFlag) {
    ScratchDir dir;
    const auto file = dir / "os.img.xz";
    writeFile(file, xz(makeImage(kImageSize)));
    const auto target = emptyTarget(dir);
    std::stop_source stop;
    auto o = options(file, target);
    o.stop = stop.get_token();
    o.progress = [&](const WriteProgress& p) {
        if (p.bytesWritten >= (1u << 20)) {
            stop.request_stop();
        }
    };
    const WriteResult r = writeImage(o);
    EXPECT_EQ(r.outcome, WriteOutcome::Cancelled);
    EXPECT_EQ(r.bytesWritten, 1u << 20);
}

TEST(Writer, RateLimitedProgressKeepsTheFirstAndTheLastFigure) {
    std::vector<WriteProgress> seen;
    auto f = rateLimited(std::chrono::hours(1), [&](const WriteProgress& p) { seen.push_back(p); });
    for (std::uint64_t i = 1; i <= 10; ++i) {
        f(WriteProgress{i * 100, 1000});
    }
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].bytesWritten, 100u);
    EXPECT_EQ(seen[1].bytesWritten, 1000u);
}

TEST(Writer, WithoutVerifyReportsWrittenOnly) {
    ScratchDir dir;
    const Bytes image = makeImage(300000);
    const auto file = dir / "os.img";
    writeFile(file, image);
    const auto target = emptyTarget(dir);
    auto o = options(file, target);
    o.verify = false;
    const WriteResult r = writeImage(o);
    EXPECT_EQ(r.outcome, WriteOutcome::Written);
    EXPECT_EQ(r.bytesVerified, 0u);
    EXPECT_EQ(readFile(target), image);
}

TEST(Writer, SaysWhetherODirectWasUsed) {
    ScratchDir dir;
    const Bytes image = makeImage(kImageSize);
    const auto file = dir / "os.img";
    writeFile(file, image);
    // /dev/shm is a tmpfs: older kernels refuse O_DIRECT there.
    const std::filesystem::path shm = "/dev/shm";
    const auto target = std::filesystem::is_directory(shm)
                            ? shm / ("rpiboot-storage-test-" + std::to_string(::getpid()))
                            : dir / "disk";
    writeFile(target, {});
    const WriteResult r = writeImage(options(file, target));
    std::filesystem::remove(target);
    EXPECT_EQ(r.outcome, WriteOutcome::Verified) << r.message;
    if (!r.directIo) {
        EXPECT_THAT(r.message, HasSubstr("O_DIRECT"));
    }
    auto o = options(file, dir / "disk2");
    writeFile(o.target, {});
    o.direct = false;
    const WriteResult b = writeImage(o);
    EXPECT_FALSE(b.directIo);
    EXPECT_EQ(b.outcome, WriteOutcome::Verified);
    EXPECT_THAT(b.message, HasSubstr("buffered"));
}

TEST(Writer, RefusesATargetThatIsNeitherADiskNorAFile) {
    ScratchDir dir;
    const auto file = dir / "os.img";
    writeFile(file, makeImage(1000));
    const Error e = thrownBy([&] { writeImage(options(file, dir.mkdir("adir"))); });
    EXPECT_EQ(e.code(), Errc::Refused);
    const Error missing = thrownBy([&] { writeImage(options(file, dir / "absent")); });
    EXPECT_EQ(missing.code(), Errc::NotFound);
}

}  // namespace
}  // namespace rpiboot::storage
