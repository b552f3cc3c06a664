// rpibootctl's renderings and command line, without a bus: what an operator
// reads in the table, the JSON a script parses, the watch screen's bars and
// summary, and the errors of a wrong command line.
#include "board_view.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"

namespace rpibootctl {
namespace {

constexpr std::uint64_t kSec = 1'000'000;
constexpr std::uint64_t kNow = 1'764'700'000 * kSec;

BoardView serving() {
    BoardView b;
    b.path = "/io/rpibootd1/device/_31_2d1_2e3";
    b.port = "1-1.3";
    b.chip = "BCM2711";
    b.serial = "af04b2da";
    b.profile = "msd";
    b.stage = "serving-files";
    b.currentFile = "start4.elf";
    b.bytesSent = 268268;
    b.bytesTotal = 536536;
    b.filesServed = 2;
    b.bootCount = 1;
    b.startedUsec = kNow - 2'500'000;
    b.metadata = {{"MAC_ADDR", "d8:3a:dd:05:ee:78"}};
    return b;
}

TEST(BoardView, ProgressBarAndPercentFollowTheFileInFlight) {
    const BoardView b = serving();
    EXPECT_EQ(percentText(b), "50%");
    EXPECT_EQ(progressBar(b, 10), "[#####-----]");
    BoardView done = b;
    done.stage = "done";
    EXPECT_EQ(progressBar(done, 4), "[####]");
    EXPECT_EQ(percentText(done), "");
    BoardView waiting;
    waiting.stage = "waiting";
    EXPECT_EQ(progressBar(waiting, 4), "[----]");
}

TEST(BoardView, ProgressFollowsTheImageDuringTheStorageStep) {
    BoardView b = serving();
    b.stage = "writing";
    b.bytesWritten = 16u << 20;
    b.bytesToWrite = 64u << 20;
    EXPECT_EQ(percentText(b), "25%");
    EXPECT_EQ(progressBar(b, 8), "[##------]");
    b.stage = "verifying";
    b.bytesWritten = b.bytesToWrite;
    EXPECT_EQ(percentText(b), "100%");
    b.stage = "booted";
    EXPECT_EQ(percentText(b), "");
}

TEST(BoardView, ElapsedIsReadableAtEveryScale) {
    BoardView b = serving();
    EXPECT_EQ(elapsedText(b, kNow), "2.5s");
    b.startedUsec = kNow - 65 * kSec;
    EXPECT_EQ(elapsedText(b, kNow), "1m05s");
    b.startedUsec = kNow - 7380 * kSec;
    EXPECT_EQ(elapsedText(b, kNow), "2h03m");
    b.finishedUsec = b.startedUsec + 3 * kSec;
    EXPECT_EQ(elapsedText(b, kNow), "3.0s") << "a finished boot stops the clock";
    b.startedUsec = 0;
    EXPECT_EQ(elapsedText(b, kNow), "-");
}

TEST(BoardView, TableHasOneLinePerBoardAndTheHeldPorts) {
    StationView s;
    s.boards = {serving()};
    s.heldPorts = {"2-*", "3-1"};
    const std::string table = renderTable(s, kNow);
    EXPECT_EQ(table.substr(table.find('\n') + 1),
              "1-1.3        BCM2711  af04b2da   msd                  serving-files    start4.elf "
              "          50%      2.5s     -\nheld ports: 2-*, 3-1\n");
    EXPECT_NE(renderTable(StationView{}, kNow).find("(no boards)"), std::string::npos);
}

TEST(BoardView, JsonFollowsSchemaOne) {
    StationView s;
    s.daemonVersion = "0.1.0";
    s.boards = {serving()};
    const auto doc = nlohmann::ordered_json::parse(renderJson(s, kNow));
    EXPECT_EQ(doc["schema"], 1);
    EXPECT_EQ(doc["daemon_version"], "0.1.0");
    EXPECT_TRUE(doc["held_ports"].empty());
    const auto& b = doc["boards"][0];
    const std::vector<std::string> keys = {
        "port",         "object_path",   "chip",        "serial",       "profile",    "stage",
        "current_file", "bytes_sent",    "bytes_total", "files_served", "boot_count", "last_error",
        "started_usec", "finished_usec", "elapsed_ms",  "metadata"};
    std::vector<std::string> seen;
    for (const auto& [key, value] : b.items()) {
        seen.push_back(key);
    }
    EXPECT_EQ(seen, keys) << "field order is part of the documented schema";
    EXPECT_EQ(b["elapsed_ms"], 2500);
    EXPECT_EQ(b["bytes_sent"], 268268);
    EXPECT_EQ(b["metadata"]["MAC_ADDR"], "d8:3a:dd:05:ee:78");
}

TEST(BoardView, SummaryCountsStagesAndBootsPerHour) {
    StationView s;
    BoardView done = serving();
    done.stage = "done";
    BoardView failed = serving();
    failed.stage = "failed";
    BoardView held = serving();
    held.stage = "held";
    s.boards = {serving(), done, failed, held};
    WatchTally tally;
    tally.startedUsec = kNow - 120 * kSec;
    for (int i = 0; i < 10; ++i) {
        tally.booted(kNow - static_cast<std::uint64_t>(i) * kSec);
    }
    tally.failed();
    EXPECT_EQ(tally.bootsPerHour(kNow), 300.0) << "10 boots in 2 minutes";
    EXPECT_EQ(renderSummary(s, tally, kNow),
              "booted 1 | failed 1 | in flight 1 | held 1 | 300 boots/h (10 booted, 1 failed "
              "since watch started)");
    const std::string screen = renderScreen(s, tally, kNow, 200);
    EXPECT_EQ(screen.rfind("\x1b[H", 0), 0U);
    EXPECT_NE(screen.find("[##########----------] 50%   start4.elf"), std::string::npos) << screen;
}

TEST(BoardView, PlainEventLinesCarryNoTerminalCodes) {
    const std::string line = renderEventLine(serving(), kNow);
    EXPECT_NE(line.find(" 1-1.3 BCM2711 serving-files start4.elf 50%\n"), std::string::npos);
    EXPECT_EQ(line.find('\x1b'), std::string::npos);
}

CtlOptions parse(std::vector<std::string> args) {
    args.insert(args.begin(), "rpibootctl");
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    return parseCtlOptions(static_cast<int>(argv.size()), argv.data());
}

TEST(CtlOptions, CommandsTakeTheirArgumentsAndOptionsOnlyWhereTheyMeanSomething) {
    const CtlOptions wait =
        parse({"--bus", "unix:path=/x", "wait", "1-1", "1-2", "--timeout", "2.5"});
    EXPECT_EQ(wait.error, "");
    EXPECT_EQ(wait.bus, "unix:path=/x");
    EXPECT_EQ(wait.args, (std::vector<std::string>{"1-1", "1-2"}));
    EXPECT_EQ(*wait.timeoutSec, 2.5);
    EXPECT_EQ(parse({"retry"}).error, "retry needs a port");
    EXPECT_EQ(parse({"status", "1-1"}).error, "too many arguments for status");
    EXPECT_EQ(parse({"watch", "--json"}).error, "--json goes with status");
    EXPECT_EQ(parse({"wait", "--timeout", "soon"}).error, "--timeout needs seconds, not \"soon\"");
    EXPECT_EQ(parse({"reboot"}).error, "unknown command \"reboot\"");
    EXPECT_EQ(parse({}).error, "no command given");
}

}  // namespace
}  // namespace rpibootctl
