// Fault injection through the virtual board, against the real rpibootd
// process on a private dbus-daemon. Each case plugs one faulty board (port
// 1-1, from a scenario file) next to three healthy ones and checks: the
// daemon keeps running, the healthy boards finish, the faulty board's Stage
// and LastError on D-Bus tell the truth, and the daemon's file descriptors
// and threads come back to what a fault-free run of the same size uses.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "rpiboot_test/bus_client.hpp"
#include "rpiboot_test/daemon_process.hpp"
#include "rpiboot_test/private_bus.hpp"

namespace rpibootd {
namespace {

namespace fs = std::filesystem;
using namespace rpiboot::test;

constexpr const char* kDevice = "io.rpibootd1.Device";
constexpr auto kSettleDeadline = std::chrono::seconds(90);
constexpr const char* kHealthy = "2711:2,2837:1";

// Short timeouts so that silent boards fail within seconds.
constexpr const char* kConfig = R"({
  "firmware_dir": "firmware",
  "profiles_dir": "profiles",
  "default_profile": "quick",
  "forget_after_ms": 600000
}
)";
constexpr const char* kQuickProfile = R"({
  "name": "quick",
  "description": "msd with short timeouts, for fault tests",
  "firmware": { "root": "msd", "port_overlays": false },
  "timeouts": { "control_ms": 500, "bulk_ms": 1500, "request_ms": 2000, "reenumerate_ms": 3000 },
  "retries": 0
}
)";

struct BoardState {
    std::string stage;
    std::string lastError;
};

// One daemon run: the faulty scenario (or none) at 1-1, healthy boards after.
struct RunResult {
    std::map<std::string, BoardState> boards;  // by port
    ProcFigures figures;
    bool settled = false;
    bool runningAfter = false;
    int exitStatus = -1;
    std::string log;
};

bool terminal(const std::string& stage) {
    return stage == "done" || stage == "failed" || stage == "disconnected";
}

class DaemonFaultsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        prepareFirmware(work.path() / "firmware");
        writeFile(work.path() / "rpibootd.json", kConfig);
        writeFile(work.path() / "profiles/quick.json", kQuickProfile);
    }

    // Starts rpibootd with `spec`, waits until every one of `boards` boards
    // has a terminal Stage (and, with `settleFor`, until the faulty one has
    // been given that long to be torn down), reads states and figures, then
    // stops it with SIGTERM.
    RunResult runDaemon(const std::string& spec, std::size_t boards) {
        PrivateBus bus(BusPolicy::Open);
        rpiboot::test::EventPtr event = rpiboot::test::newEventLoop();
        BusClient client(event.get(), bus.address());
        DaemonProcess daemon({RPIBOOTD_BINARY, "-c", (work.path() / "rpibootd.json").string(),
                              "--bus", bus.address(), "--no-udev", "--virtual", spec},
                             work.path() / "rpibootd.log");
        RunResult result;
        const auto deadline = std::chrono::steady_clock::now() + kSettleDeadline;
        while (std::chrono::steady_clock::now() < deadline && daemon.running()) {
            std::size_t settled = 0;
            for (std::size_t i = 1; i <= boards; ++i) {
                const std::string port = "1-" + std::to_string(i);
                const auto r = client.getProperty(devicePath(port), kDevice, "Stage");
                if (!r.ok()) {
                    continue;
                }
                const std::string stage = client.getString(devicePath(port), kDevice, "Stage");
                if (terminal(stage)) {
                    ++settled;
                }
            }
            if (settled == boards) {
                result.settled = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (result.settled) {
            // Workers of failed boards wind down after their stage is published.
            std::this_thread::sleep_for(std::chrono::milliseconds(1500));
            for (std::size_t i = 1; i <= boards; ++i) {
                const std::string port = "1-" + std::to_string(i);
                result.boards[port] = {client.getString(devicePath(port), kDevice, "Stage"),
                                       client.getString(devicePath(port), kDevice, "LastError")};
            }
            result.figures = procFigures(daemon.pid());
        }
        result.runningAfter = daemon.running();
        result.exitStatus = daemon.stop();
        result.log = daemon.log();
        return result;
    }

    // The same daemon with four healthy boards: the figures to compare with.
    const ProcFigures& baseline() {
        static std::optional<ProcFigures> figures;
        if (!figures) {
            RunResult r = runDaemon(std::string("2711:1,") + kHealthy, 4);
            EXPECT_TRUE(r.settled) << r.log;
            figures = r.figures;
            std::cout << "baseline: fds " << figures->fds << ", threads " << figures->threads
                      << ", VmRSS " << figures->rssKiB << " KiB\n";
        }
        return *figures;
    }

    // Runs `scenarioJson` at 1-1 next to three healthy boards and checks
    // everything the fault must not disturb. Returns the faulty board's state.
    BoardState runFault(const std::string& scenarioJson) {
        const ProcFigures before = baseline();
        const fs::path file = work.path() / "faulty.json";
        writeFile(file, scenarioJson);
        RunResult r = runDaemon(file.string() + "," + kHealthy, 4);
        EXPECT_TRUE(r.settled) << "boards did not settle; rpibootd log:\n" << r.log;
        EXPECT_TRUE(r.runningAfter) << r.log;
        EXPECT_EQ(r.exitStatus, 0) << "SIGTERM did not stop rpibootd cleanly:\n" << r.log;
        for (const char* port : {"1-2", "1-3", "1-4"}) {
            EXPECT_EQ(r.boards[port].stage, "done") << port << ": " << r.boards[port].lastError;
            EXPECT_EQ(r.boards[port].lastError, "") << port;
        }
        std::cout << "fault run: fds " << r.figures.fds << ", threads " << r.figures.threads
                  << ", VmRSS " << r.figures.rssKiB << " KiB; 1-1 " << r.boards["1-1"].stage
                  << " \"" << r.boards["1-1"].lastError << "\"\n";
        EXPECT_LE(r.figures.fds, before.fds) << "file descriptors left behind";
        // A hung (stalled or silent) virtual board keeps its own firmware
        // thread inside the daemon process until power-off: allow that one.
        EXPECT_LE(r.figures.threads, before.threads + 1) << "threads left behind";
        return r.boards["1-1"];
    }

    // The faulty board failed, and says why with `why` in LastError.
    static void expectFailed(const BoardState& s, const std::string& why) {
        EXPECT_TRUE(s.stage == "failed" || s.stage == "disconnected") << s.stage;
        EXPECT_NE(s.lastError.find(why), std::string::npos) << s.lastError;
    }

    rpiboot::test::ScratchDir work;
};

std::string scenario(const std::string& rom, const std::string& steps) {
    return R"({ "name": "faulty", "chip": "2711", )" + rom + R"( "steps": [ )" + steps + " ] }";
}

const std::string kHead =
    R"({ "kind": "file", "name": "config.txt", "optional": true },
       { "kind": "file", "name": "pieeprom.sig", "optional": true }, )";

TEST_F(DaemonFaultsTest, DisconnectDuringTheBootMessage) {
    expectFailed(runFault(scenario(
                     R"("rom": { "fault": { "kind": "disconnect", "at": "boot-message",
                                 "afterBytes": 10 } },)",
                     kHead + R"("start4.elf")")),
                 "left the bus");
}

TEST_F(DaemonFaultsTest, DisconnectInTheMiddleOfTheBootcode) {
    expectFailed(runFault(scenario(
                     R"("rom": { "fault": { "kind": "disconnect", "at": "bootcode",
                                 "afterBytes": 40000 } },)",
                     kHead + R"("start4.elf")")),
                 "left the bus");
}

TEST_F(DaemonFaultsTest, DisconnectBeforeTheRomStatus) {
    expectFailed(
        runFault(scenario(R"("rom": { "fault": { "kind": "disconnect", "at": "status" } },)",
                          kHead + R"("start4.elf")")),
        "left the bus");
}

TEST_F(DaemonFaultsTest, DisconnectInsteadOfASecondStageRequest) {
    expectFailed(runFault(scenario("", kHead + R"({ "kind": "file", "name": "start4.elf",
        "fault": { "kind": "disconnect", "at": "request" } })")),
                 "left the bus");
}

TEST_F(DaemonFaultsTest, DisconnectWhileTheHostAnswersARequest) {
    expectFailed(runFault(scenario("", kHead + R"({ "kind": "file", "name": "start4.elf",
        "fault": { "kind": "disconnect", "at": "reply" } })")),
                 "left the bus");
}

TEST_F(DaemonFaultsTest, DisconnectInTheMiddleOfAFile) {
    expectFailed(runFault(scenario("", kHead + R"({ "kind": "file", "name": "start4.elf",
        "fault": { "kind": "disconnect", "at": "data", "afterBytes": 100000 } })")),
                 "left the bus");
}

TEST_F(DaemonFaultsTest, StalledControlEndpointOnARequest) {
    expectFailed(runFault(scenario("", kHead + R"({ "kind": "file", "name": "start4.elf",
        "fault": { "kind": "stall-control", "at": "request" } })")),
                 "stalled");
}

TEST_F(DaemonFaultsTest, StalledControlEndpointInTheRom) {
    expectFailed(
        runFault(scenario(R"("rom": { "fault": { "kind": "stall-control", "at": "status" } },)",
                          kHead + R"("start4.elf")")),
        "stalled");
}

TEST_F(DaemonFaultsTest, StalledBulkEndpointInTheMiddleOfAFile) {
    expectFailed(runFault(scenario("", kHead + R"({ "kind": "read-file", "name": "start4.elf",
        "fault": { "kind": "stall-bulk", "at": "data", "afterBytes": 4096 } })")),
                 "stalled");
}

TEST_F(DaemonFaultsTest, BoardThatNeverAsksTimesOut) {
    expectFailed(runFault(scenario("", kHead + R"({ "kind": "file", "name": "start4.elf",
        "fault": { "kind": "silence", "at": "request" } })")),
                 "timed out");
}

TEST_F(DaemonFaultsTest, BoardThatStopsReadingTimesOut) {
    expectFailed(runFault(scenario("", kHead + R"({ "kind": "read-file", "name": "start4.elf",
        "fault": { "kind": "silence", "at": "data", "afterBytes": 65536 } })")),
                 "timed out");
}

TEST_F(DaemonFaultsTest, SlowBoardStillBoots) {
    const BoardState s = runFault(R"({ "name": "slow", "chip": "2711",
        "bulkBytesPerSecond": 4000000,
        "timing": { "romStatusDelayMs": 300, "secondStageStartDelayMs": 400,
                    "fileProcessingDelayMs": 300 },
        "steps": [ { "kind": "file", "name": "config.txt", "optional": true, "delayMs": 400 },
                   { "kind": "file", "name": "start4.elf", "delayMs": 400 } ] })");
    EXPECT_EQ(s.stage, "done") << s.lastError;
}

// One board per kind of garbage (the daemon gives up on a board at its first
// bad request, so each needs its own board to be tried at all).
TEST_F(DaemonFaultsTest, GarbageRequestsDoNotHurtTheDaemon) {
    const std::vector<std::string> garbage = {
        R"({ "kind": "raw", "command": 7, "name": "junk", "reply": "none" })",
        R"({ "kind": "raw", "command": 4294967295, "name": "junk", "reply": "none" })",
        R"({ "kind": "raw", "command": 0, "name": "start4.elf", "pad": 65 })",
        R"({ "kind": "raw", "command": 1, "name": "config.txt", "pad": 255 })",
        R"({ "kind": "raw", "command": 0, "nameHex": "41ff", "pad": 65, "messageLength": 100 })",
        R"({ "kind": "raw", "command": 0, "name": "x", "messageLength": 4 })",
        R"({ "kind": "raw", "command": 0, "name": "x", "messageLength": 300 })",
        R"({ "kind": "metadata", "key": "BOARD_ATTR" })",
        R"({ "kind": "metadata", "key": "MAC_ADDR", "value": "" })",
        R"({ "kind": "get-file-size", "name": "../../../etc/passwd" })",
        R"({ "kind": "get-file-size", "name": "/etc/passwd" })",
    };
    for (const auto& item : garbage) {
        SCOPED_TRACE(item);
        const BoardState s = runFault(scenario("", kHead + item + R"(, "start4.elf")"));
        // Whatever the daemon makes of it, it says so truthfully.
        EXPECT_TRUE(terminal(s.stage)) << s.stage;
        if (s.stage != "done") {
            EXPECT_FALSE(s.lastError.empty());
        }
    }
}

TEST_F(DaemonFaultsTest, ThousandsOfRequestsForTheSameFile) {
    const BoardState s = runFault(scenario("", kHead + R"(
        { "kind": "get-file-size", "name": "start4.elf", "repeat": 3000 },
        "start4.elf")"));
    EXPECT_TRUE(terminal(s.stage)) << s.stage;
    if (s.stage != "done") {
        EXPECT_FALSE(s.lastError.empty());
    }
}

TEST_F(DaemonFaultsTest, RequestsAfterDone) {
    const BoardState s = runFault(scenario("", kHead + R"(
        "start4.elf", { "kind": "done" },
        { "kind": "get-file-size", "name": "start4.elf", "repeat": 5 },
        { "kind": "raw", "command": 1, "name": "start4.elf" })"));
    EXPECT_TRUE(terminal(s.stage)) << s.stage;
    if (s.stage != "done") {
        EXPECT_FALSE(s.lastError.empty());
    }
}

}  // namespace
}  // namespace rpibootd
