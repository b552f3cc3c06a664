#include "verdict.hpp"

#include <gtest/gtest.h>

namespace usbip {
namespace {

virtualpi::FileRecord file(std::string name, std::uint64_t bytes, std::optional<bool> matches) {
    virtualpi::FileRecord f;
    f.name = std::move(name);
    f.receivedBytes = bytes;
    f.complete = true;
    f.hashMatches = matches;
    return f;
}

struct Case {
    virtualpi::BoardRecord record;
    virtualpi::Scenario scenario;
    Verdict judge(bool expectFailure = false, bool requireHashes = true) const {
        return judgeBoard({&record, &scenario, expectFailure, requireHashes, {}});
    }
};

Case bootedMsd() {
    Case c;
    c.scenario.rom.bootcodeName = "bootcode4.bin";
    c.scenario.rom.bootcodeSha256 = std::string(64, 'a');
    virtualpi::RomAttempt a;
    a.accepted = true;
    a.bootcodeLength = 100;
    a.bootcodeSha256 = std::string(64, 'a');
    c.record.romAttempts.push_back(a);
    c.record.files.push_back(file("config.txt", 0, std::nullopt));
    c.record.files.push_back(file("start4.elf", 1000, true));
    c.record.outcome = virtualpi::Outcome::Succeeded;
    return c;
}

TEST(Verdict, BootWithEveryByteHashedPassesAndCountsTheBytes) {
    const Verdict v = bootedMsd().judge();
    EXPECT_TRUE(v.passed);
    EXPECT_EQ(v.filesVerified, 2u);
    EXPECT_EQ(v.bytesVerified, 1100u);
}

TEST(Verdict, MismatchedFileFails) {
    Case c = bootedMsd();
    c.record.files[1].hashMatches = false;
    const Verdict v = c.judge();
    EXPECT_FALSE(v.passed);
    ASSERT_EQ(v.problems.size(), 1u);
    EXPECT_NE(v.problems[0].find("start4.elf"), std::string::npos);
}

TEST(Verdict, UnhashedBytesFailOnlyWhenHashesAreRequired) {
    Case c = bootedMsd();
    c.record.files[1].hashMatches.reset();
    EXPECT_FALSE(c.judge(false, true).passed);
    EXPECT_TRUE(c.judge(false, false).passed);
}

TEST(Verdict, BoardMeantToFailPassesOnlyByFailing) {
    Case c = bootedMsd();
    EXPECT_FALSE(c.judge(true).passed);
    c.record.outcome = virtualpi::Outcome::Failed;
    EXPECT_TRUE(c.judge(true).passed);
    EXPECT_FALSE(c.judge(false).passed);
}

TEST(Verdict, AttachProblemsFailEvenASuccessfulBoot) {
    Case c = bootedMsd();
    const Verdict v = judgeBoard({&c.record, &c.scenario, false, true, {"port busy"}});
    EXPECT_FALSE(v.passed);
}

}  // namespace
}  // namespace usbip
