// Boot records: one valid JSON file per boot, written atomically.
#include "rpiboot/storage/record.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "rpiboot/core/error.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "rpiboot_test/thrown_by.hpp"

namespace rpiboot::storage {
namespace {

using rpiboot::test::ScratchDir;
using rpiboot::test::thrownBy;

BootRecord sample() {
    BootRecord r;
    r.board = "1000000012345678";
    r.port = "1-1.3";
    r.profile = "cm4-emmc";
    r.startedAt = 1700000000;
    r.finishedAt = 1700000042;
    r.outcome = "done";
    r.metadata = {{"SERIAL_NUMBER", "12345678"}, {"MAC_ADDRESS", "d8:3a:dd:00:00:01"}};
    WriteResult w;
    w.imageName = "os.img.zst";
    w.imageFormat = "zstd";
    w.imageSha256 = std::string(64, 'c');
    w.bytesWritten = 67108864;
    w.bytesVerified = 67108864;
    w.writeDuration = std::chrono::milliseconds(1500);
    w.outcome = WriteOutcome::Verified;
    r.write = w;
    return r;
}

TEST(BootRecord, IsOneValidJsonFileWithNoTemporaryLeft) {
    ScratchDir dir;
    const auto path = writeBootRecord(dir.path(), sample());
    EXPECT_EQ(path, dir / "1700000000-1000000012345678.json");
    std::size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
        (void)e;
        ++files;
    }
    EXPECT_EQ(files, 1u);
    std::ifstream in(path);
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j["board"], "1000000012345678");
    EXPECT_EQ(j["outcome"], "done");
    EXPECT_EQ(j["metadata"]["MAC_ADDRESS"], "d8:3a:dd:00:00:01");
    EXPECT_EQ(j["write"]["image"], "os.img.zst");
    EXPECT_EQ(j["write"]["sha256"], std::string(64, 'c'));
    EXPECT_EQ(j["write"]["bytes_written"], 67108864);
    EXPECT_EQ(j["write"]["write_ms"], 1500);
    EXPECT_EQ(j["write"]["result"], "verified");
    EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
              std::filesystem::perms(0644));
}

TEST(BootRecord, ReplacesAnOlderRecordWholeAndSanitisesTheName) {
    ScratchDir dir;
    BootRecord r = sample();
    r.board = "../1-1.3";
    r.write.reset();
    const auto first = writeBootRecord(dir.path(), r);
    EXPECT_EQ(first.parent_path(), dir.path());
    EXPECT_EQ(first.filename(), "1700000000-_.._1-1.3.json");
    r.outcome = "failed";
    r.error = "verify: differs at offset 12";
    writeBootRecord(dir.path(), r);
    std::ifstream in(first);
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j["outcome"], "failed");
    EXPECT_EQ(j["error"], "verify: differs at offset 12");
    EXPECT_TRUE(j["write"].is_null());
}

TEST(BootRecord, AMissingDirectoryIsAnErrorNamingTheCall) {
    ScratchDir dir;
    const Error e = thrownBy([&] { writeBootRecord(dir / "absent", sample()); });
    EXPECT_EQ(e.code(), Errc::Io);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("mkostemp"));
}

}  // namespace
}  // namespace rpiboot::storage
