// Faults that need boards plugged again while rpibootd runs: reconnects on the
// same port after every kind of disconnect, plug/unplug storms on one port
// and on eight at once, firmware files replaced or truncated while boards
// read them, and files too large for the protocol. Against the real daemon
// process (live_daemon.hpp: --virtual-control, private D-Bus); what a test
// checks is what users see: BootFinished, Stage and LastError on D-Bus, the
// bytes the boards received, and the daemon's descriptors and threads back
// where they were.
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot_test/live_daemon.hpp"

namespace rpibootd {
namespace {

namespace fs = std::filesystem;
using rpiboot::test::LiveDaemon;
using rpiboot::test::ProcFigures;

std::string sha256Of(const fs::path& file) {
    const std::string bytes = rpiboot::test::readFile(file);
    return rpiboot::sha256Hex(
        rpiboot::ByteView(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

// The record of `name` in a board record (the last one), or null.
nlohmann::json fileRecord(const std::string& recordJson, const std::string& name) {
    const auto record = nlohmann::json::parse(recordJson);
    nlohmann::json found;
    for (const auto& f : record.at("files")) {
        if (f.at("name") == name) {
            found = f;
        }
    }
    return found;
}

bool failedOrGone(const std::string& stage) {
    return stage == "failed" || stage == "disconnected";
}

class ReplugFaultsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        daemon = std::make_unique<LiveDaemon>(work.path(), rpiboot::test::kMsdDaemonConfig);
        // One boot first, so that lazily opened things (the firmware cache,
        // sd-bus's own descriptors) count in the baseline.
        daemon->plug("2711", "9-1");
        daemon->waitSucceeded("9-1", 1);
        daemon->unplug("9-1");
        baseline = daemon->settledFigures({0, 0, 0}, std::chrono::milliseconds(300));
    }

    // The daemon runs, and its descriptors and threads are back to the
    // baseline once every board is out.
    void TearDown() override {
        if (!daemon) {
            return;
        }
        EXPECT_TRUE(daemon->process().running()) << LiveDaemon::tail(daemon->process().log());
        daemon->control().ok("unplug all");
        const ProcFigures after = daemon->settledFigures(baseline);
        std::cout << "daemon before: " << rpiboot::test::describe(baseline)
                  << "\ndaemon after:  " << rpiboot::test::describe(after) << "\n";
        EXPECT_LE(after.fds, baseline.fds) << "file descriptors left behind";
        EXPECT_LE(after.threads, baseline.threads) << "threads left behind";
        EXPECT_EQ(daemon->process().stop(), 0) << "SIGTERM did not stop rpibootd cleanly";
    }

    fs::path scenarioFile(const std::string& name, const std::string& json) {
        const fs::path file = work.path() / (name + ".json");
        rpiboot::test::writeFile(file, json);
        return file;
    }

    rpiboot::test::ScratchDir work;
    std::unique_ptr<LiveDaemon> daemon;
    ProcFigures baseline;
};

TEST_F(ReplugFaultsTest, BoardReconnectedOnTheSamePortAfterAMidFileDisconnectBoots) {
    daemon->plug("2711", "1-2");
    daemon->plug("2711", "1-3");
    const fs::path vanishing = scenarioFile("vanishing", R"({ "name": "vanishing", "chip": "2711",
        "steps": [ { "kind": "file", "name": "config.txt", "optional": true },
                   { "kind": "file", "name": "start4.elf",
                     "fault": { "kind": "disconnect", "at": "data", "afterBytes": 65536 } } ] })");
    daemon->plug(vanishing.string(), "1-1");
    const auto failed = daemon->waitFinished("1-1", 1);
    EXPECT_EQ(failed.succeeded, 0U);
    EXPECT_TRUE(failedOrGone(daemon->stage("1-1"))) << daemon->stage("1-1");
    EXPECT_NE(daemon->lastError("1-1").find("start4.elf"), std::string::npos)
        << daemon->lastError("1-1");

    daemon->unplug("1-1");
    daemon->plug("2711", "1-1");
    daemon->waitFinished("1-1", 2);
    EXPECT_EQ(daemon->tally("1-1").succeeded, 1U) << daemon->tally("1-1").lastMessage;
    EXPECT_EQ(daemon->stage("1-1"), "done");
    EXPECT_EQ(daemon->lastError("1-1"), "");
    EXPECT_EQ(daemon->bus().getUint32(rpiboot::test::devicePath("1-1"), "BootCount"), 2U);
    daemon->waitSucceeded("1-2", 1);
    daemon->waitSucceeded("1-3", 1);
}

TEST_F(ReplugFaultsTest, DisconnectAtEveryStageThenReconnectBoots) {
    const std::vector<std::pair<std::string, std::string>> faults = {
        {"boot message", R"("rom": { "fault": { "kind": "disconnect", "at": "boot-message",
                             "afterBytes": 8 } }, "steps": [ "start4.elf" ])"},
        {"bootcode", R"("rom": { "fault": { "kind": "disconnect", "at": "bootcode",
                         "afterBytes": 50000 } }, "steps": [ "start4.elf" ])"},
        {"ROM status", R"("rom": { "fault": { "kind": "disconnect", "at": "status" } },
                          "steps": [ "start4.elf" ])"},
        {"request", R"("steps": [ { "kind": "file", "name": "start4.elf",
                        "fault": { "kind": "disconnect", "at": "request" } } ])"},
        {"reply", R"("steps": [ { "kind": "file", "name": "start4.elf",
                      "fault": { "kind": "disconnect", "at": "reply" } } ])"},
        {"first data byte", R"("steps": [ { "kind": "file", "name": "start4.elf",
                     "fault": { "kind": "disconnect", "at": "data", "afterBytes": 1 } } ])"},
        {"last data byte", R"("steps": [ { "kind": "file", "name": "start4.elf",
                    "fault": { "kind": "disconnect", "at": "data", "afterBytes": 536535 } } ])"},
    };
    daemon->plug("2711", "1-2");
    unsigned boots = 0;
    for (const auto& [where, fault] : faults) {
        SCOPED_TRACE(where);
        const fs::path file =
            scenarioFile("faulty", R"({ "name": "faulty", "chip": "2711", )" + fault + "}");
        daemon->plug(file.string(), "1-1");
        const auto t = daemon->waitFinished("1-1", ++boots);
        EXPECT_EQ(t.succeeded, 0U);
        const std::string stage = daemon->stage("1-1");
        const std::string error = daemon->lastError("1-1");
        EXPECT_TRUE(failedOrGone(stage)) << stage;
        EXPECT_FALSE(error.empty());
        std::cout << "disconnect at the " << where << ": " << stage << ", \"" << error << "\"\n";
        daemon->unplug("1-1");
    }
    daemon->plug("2711", "1-1");
    const auto last = daemon->waitFinished("1-1", boots + 1);
    EXPECT_EQ(last.succeeded, 1U) << last.lastMessage;
    EXPECT_EQ(daemon->stage("1-1"), "done");
    EXPECT_EQ(daemon->lastError("1-1"), "");
    daemon->waitSucceeded("1-2", 1);
}

TEST_F(ReplugFaultsTest, PlugUnplugStormOnOnePortLeavesTheDaemonServing) {
    daemon->plug("2711", "1-2");
    const auto began = std::chrono::steady_clock::now();
    constexpr int kCycles = 300;
    for (int i = 0; i < kCycles; ++i) {
        daemon->plug("2711", "1-1");
        if (i % 3 == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        daemon->unplug("1-1");
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    std::cout << kCycles << " plug/unplug cycles on 1-1 in " << seconds << " s ("
              << kCycles / seconds << " per second)\n";
    ASSERT_TRUE(daemon->process().running());
    // The storm's workers have ended (and published) before counting.
    daemon->settledFigures(baseline);
    const unsigned before = daemon->tally("1-1").succeeded;
    daemon->plug("2711", "1-1");
    daemon->waitSucceeded("1-1", before + 1);
    EXPECT_EQ(daemon->stage("1-1"), "done");
    EXPECT_EQ(daemon->lastError("1-1"), "");
    daemon->waitSucceeded("1-2", 1);
    EXPECT_EQ(daemon->stage("1-2"), "done");
}

TEST_F(ReplugFaultsTest, PlugUnplugStormsOnEightPortsAtOnce) {
    std::vector<std::thread> storms;
    std::atomic<int> failures{0};
    std::vector<std::string> problems(8);
    for (int p = 1; p <= 8; ++p) {
        storms.emplace_back([&, p] {
            try {
                rpiboot::test::VirtualControlClient control(daemon->socket());
                const std::string port = "2-" + std::to_string(p);
                for (int i = 0; i < 60; ++i) {
                    control.ok("plug 2711 " + port);
                    control.ok("unplug " + port);
                }
            } catch (const std::exception& e) {
                problems[static_cast<std::size_t>(p - 1)] = e.what();
                ++failures;
            }
        });
    }
    for (auto& t : storms) {
        t.join();
    }
    ASSERT_EQ(failures.load(), 0) << problems[0] << problems[1] << problems[7];
    ASSERT_TRUE(daemon->process().running());
    daemon->settledFigures(baseline);
    std::vector<unsigned> before;
    for (int p = 1; p <= 8; ++p) {
        const std::string port = "2-" + std::to_string(p);
        before.push_back(daemon->tally(port).succeeded);
        daemon->plug("2711", port);
    }
    for (int p = 1; p <= 8; ++p) {
        const std::string port = "2-" + std::to_string(p);
        daemon->waitSucceeded(port, before[static_cast<std::size_t>(p - 1)] + 1);
        EXPECT_EQ(daemon->stage(port), "done") << port;
    }
}

// Boards read start4.elf slowly while it is swapped for other bytes (a new
// file renamed over it) and then truncated in place: each board gets the old
// bytes or the new bytes, whole, or fails with an error saying so.
TEST_F(ReplugFaultsTest, FirmwareReplacedOrTruncatedWhileBoardsReadIt) {
    const fs::path file = work.path() / "firmware/msd/start4.elf";
    const std::string oldHash = sha256Of(file);
    std::string newBytes(600000, '\0');
    std::mt19937 rng(7);
    for (auto& c : newBytes) {
        c = static_cast<char>(rng());
    }
    // About half a second per file.
    const fs::path slow = scenarioFile("slow", R"({ "name": "slow", "chip": "2711",
        "bulkBytesPerSecond": 1000000,
        "steps": [ { "kind": "file", "name": "config.txt", "optional": true }, "start4.elf" ] })");
    for (const char* port : {"1-1", "1-2", "1-3"}) {
        daemon->plug(slow.string(), port);
    }
    daemon->waitForStage("1-1", "serving-files");
    {
        const fs::path next = file.string() + ".new";
        rpiboot::test::writeFile(next, newBytes);
        fs::rename(next, file);
    }
    const std::string newHash = sha256Of(file);
    for (const char* port : {"1-4", "1-5"}) {
        daemon->plug(slow.string(), port);
    }
    daemon->waitForStage("1-4", "serving-files");
    fs::resize_file(file, 1000);
    const std::string truncatedHash = sha256Of(file);
    daemon->plug(slow.string(), "1-6");
    for (const char* port : {"1-1", "1-2", "1-3", "1-4", "1-5", "1-6"}) {
        daemon->waitFinished(port, 1);
    }
    for (const char* port : {"1-1", "1-2", "1-3", "1-4", "1-5", "1-6"}) {
        SCOPED_TRACE(port);
        const auto t = daemon->tally(port);
        const auto got = fileRecord(daemon->record(port), "start4.elf");
        const std::string error = daemon->lastError(port);
        if (t.succeeded == 1) {
            ASSERT_FALSE(got.is_null());
            EXPECT_TRUE(got.at("complete").get<bool>());
            const auto hash = got.at("sha256").get<std::string>();
            EXPECT_TRUE(hash == oldHash || hash == newHash || hash == truncatedHash)
                << "a mix of old and new bytes: " << hash;
            std::cout << port << ": booted with the "
                      << (hash == oldHash   ? "old"
                          : hash == newHash ? "new"
                                            : "truncated")
                      << " start4.elf\n";
        } else {
            EXPECT_NE(error.find("start4.elf"), std::string::npos) << error;
            std::cout << port << ": failed: " << error << "; received "
                      << (got.is_null() ? 0 : got.at("receivedBytes").get<std::uint64_t>())
                      << " bytes\n";
        }
    }
}

// Files of 2^31 bytes and more (sparse) in the firmware root: the 32-bit
// size field can not carry them, so the daemon must not answer a wrapped
// size (2^32 + 5 read as 5) and must not serve part of one.
TEST_F(ReplugFaultsTest, FilesAtAndBeyondTwoToTheThirtyOneAreNeverServedTruncated) {
    const std::vector<std::pair<std::string, std::uintmax_t>> huge = {
        {"at2g.bin", std::uintmax_t{1} << 31},
        {"wraps.bin", (std::uintmax_t{1} << 32) + 5},
    };
    unsigned port = 1;
    for (const auto& [name, size] : huge) {
        const fs::path path = work.path() / "firmware/msd" / name;
        rpiboot::test::writeFile(path, "x");
        fs::resize_file(path, size);
        const fs::path scenario = scenarioFile(
            "huge" + std::to_string(port),
            R"({ "name": "huge", "chip": "2711", "steps": [ { "kind": "file", "name": ")" + name +
                R"(", "optional": true }, "start4.elf" ] })");
        daemon->plug(scenario.string(), "1-" + std::to_string(port++));
    }
    for (std::size_t i = 0; i < huge.size(); ++i) {
        const std::string at = "1-" + std::to_string(i + 1);
        SCOPED_TRACE(huge[i].first);
        const auto t = daemon->waitFinished(at, 1);
        const auto got = fileRecord(daemon->record(at), huge[i].first);
        ASSERT_FALSE(got.is_null());
        EXPECT_EQ(got.at("receivedBytes").get<std::uint64_t>(), 0U)
            << "part of a huge file was served";
        const auto answered = got.value("reportedSize", nlohmann::json(0));
        if (t.succeeded == 1) {
            EXPECT_EQ(answered, 0) << "a wrapped size was answered";
        } else {
            EXPECT_FALSE(daemon->lastError(at).empty());
        }
        std::cout << huge[i].first << ": "
                  << (t.succeeded == 1 ? "booted" : "failed: " + daemon->lastError(at))
                  << "; size answered " << answered << "\n";
    }
}

}  // namespace
}  // namespace rpibootd
