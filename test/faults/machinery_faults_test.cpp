// Faults that need boards plugged again while the daemon runs: reconnects on
// the same port, plug/unplug storms on one port and on many, and firmware
// files replaced or truncated while boards read them. Through the daemon's
// machinery in-process (machinery.hpp); this process's descriptors and
// threads must come back to where they were.
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <random>

#include "machinery.hpp"
#include "rpiboot/signature.hpp"
#include "virtualpi/scenario.hpp"

namespace rpibootd::faults {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

std::string sha256Of(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes(std::istreambuf_iterator<char>(in), {});
    return rpiboot::sha256Hex(
        rpiboot::ByteView(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

void waitUntil(const std::function<bool()>& done, milliseconds limit = milliseconds(60000)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > end) {
            throw std::runtime_error("condition not reached within the safety limit");
        }
        std::this_thread::sleep_for(milliseconds(20));
    }
}

void unplugIfThere(virtualpi::VirtualBus& bus, const std::string& port) {
    try {
        bus.unplug(port);
    } catch (const rpiboot::Error&) {
        // Already gone.
    }
}

// ThreadSanitizer's runtime starts a background thread of its own the first
// time the process creates one; it is not ours and stays for the process's life.
#if defined(__SANITIZE_THREAD__)
constexpr int kRuntimeThreads = 1;
#else
constexpr int kRuntimeThreads = 0;
#endif

class MachineryFaultsTest : public ::testing::Test {
  protected:
    void SetUp() override { atStart = procFigures(); }
    // Descriptors and threads back where they were once everything stopped.
    void TearDown() override {
        const ProcFigures after = procFigures();
        std::cout << "before: " << describe(atStart) << "\nafter:  " << describe(after) << "\n";
        EXPECT_LE(after.fds, atStart.fds) << "file descriptors left behind";
        EXPECT_LE(after.threads, atStart.threads + kRuntimeThreads) << "threads left behind";
    }

    ProcFigures atStart;
    FirmwareTree firmware;
};

TEST_F(MachineryFaultsTest, BoardReconnectedOnTheSamePortAfterAMidFileDisconnectBoots) {
    Machinery machinery(firmware.path());
    ASSERT_EQ(machinery.run([](virtualpi::VirtualBus& bus, WatchingSink& sink) {
        bus.plug(healthy2711("1-2"));
        bus.plug(healthy2711("1-3"));
        virtualpi::BoardSpec vanishing = healthy2711("1-1");
        vanishing.scenario = virtualpi::parseScenario(R"({ "name": "vanishing", "chip": "2711",
            "steps": [ { "kind": "file", "name": "config.txt", "optional": true },
                       { "kind": "file", "name": "start4.elf",
                         "fault": { "kind": "disconnect", "at": "data", "afterBytes": 65536 } } ] })");
        bus.plug(vanishing);
        waitUntil([&] { return sink.port("1-1").finished == 1; });
        const auto failed = sink.port("1-1");
        EXPECT_EQ(failed.succeeded, 0U);
        EXPECT_FALSE(failed.lastMessage.empty());
        EXPECT_FALSE(failed.last.lastError.empty());
        unplugIfThere(bus, "1-1");
        bus.plug(healthy2711("1-1"));
        waitUntil([&] { return sink.port("1-1").finished == 2; });
        waitUntil([&] { return sink.total() == 4; });
    }),
              0);
    const auto again = machinery.sink().port("1-1");
    EXPECT_EQ(again.succeeded, 1U) << again.lastMessage;
    EXPECT_EQ(again.last.stage, kStageDone);
    EXPECT_EQ(again.last.lastError, "");
    EXPECT_EQ(machinery.sink().port("1-2").succeeded, 1U);
    EXPECT_EQ(machinery.sink().port("1-3").succeeded, 1U);
}

TEST_F(MachineryFaultsTest, DisconnectAtEveryStageThenReconnectBoots) {
    const std::vector<std::string> faults = {
        R"("rom": { "fault": { "kind": "disconnect", "at": "boot-message", "afterBytes": 8 } },
           "steps": [ "start4.elf" ])",
        R"("rom": { "fault": { "kind": "disconnect", "at": "bootcode", "afterBytes": 50000 } },
           "steps": [ "start4.elf" ])",
        R"("rom": { "fault": { "kind": "disconnect", "at": "status" } }, "steps": [ "start4.elf" ])",
        R"("steps": [ { "kind": "file", "name": "start4.elf",
                        "fault": { "kind": "disconnect", "at": "request" } } ])",
        R"("steps": [ { "kind": "file", "name": "start4.elf",
                        "fault": { "kind": "disconnect", "at": "reply" } } ])",
        R"("steps": [ { "kind": "file", "name": "start4.elf",
                        "fault": { "kind": "disconnect", "at": "data", "afterBytes": 1 } } ])",
        R"("steps": [ { "kind": "file", "name": "start4.elf",
                        "fault": { "kind": "disconnect", "at": "data", "afterBytes": 536535 } } ])",
    };
    Machinery machinery(firmware.path());
    ASSERT_EQ(machinery.run([&](virtualpi::VirtualBus& bus, WatchingSink& sink) {
        bus.plug(healthy2711("1-2"));
        unsigned boots = 0;
        for (const auto& fault : faults) {
            SCOPED_TRACE(fault);
            virtualpi::BoardSpec spec = healthy2711("1-1");
            spec.scenario =
                virtualpi::parseScenario(R"({ "name": "faulty", "chip": "2711", )" + fault + "}");
            bus.plug(spec);
            waitUntil([&] { return sink.port("1-1").finished == boots + 1; });
            ++boots;
            const auto port = sink.port("1-1");
            EXPECT_EQ(port.succeeded, 0U);
            EXPECT_FALSE(port.last.lastError.empty());
            EXPECT_TRUE(port.last.stage == kStageFailed || port.last.stage == kStageDisconnected)
                << port.last.stage;
            unplugIfThere(bus, "1-1");
        }
        bus.plug(healthy2711("1-1"));
        waitUntil([&] { return sink.port("1-1").finished == boots + 1; });
        waitUntil([&] { return sink.port("1-2").finished == 1; });
    }),
              0);
    const auto last = machinery.sink().port("1-1");
    EXPECT_EQ(last.succeeded, 1U) << last.lastMessage;
    EXPECT_EQ(last.last.stage, kStageDone);
    EXPECT_EQ(machinery.sink().port("1-2").succeeded, 1U);
}

TEST_F(MachineryFaultsTest, PlugUnplugStormOnOnePortLeavesTheDaemonServing) {
    Machinery machinery(firmware.path());
    ASSERT_EQ(machinery.run([](virtualpi::VirtualBus& bus, WatchingSink& sink) {
        bus.plug(healthy2711("1-2"));
        for (int i = 0; i < 300; ++i) {
            bus.plug(healthy2711("1-1"));
            if (i % 3 == 0) {
                std::this_thread::sleep_for(milliseconds(1));
            }
            bus.unplug("1-1");
        }
        const unsigned before = sink.port("1-1").succeeded;
        bus.plug(healthy2711("1-1"));
        waitUntil([&] { return sink.port("1-1").succeeded == before + 1; });
        waitUntil([&] { return sink.port("1-2").finished == 1; });
    }),
              0);
    EXPECT_EQ(machinery.sink().port("1-1").last.stage, kStageDone);
    EXPECT_EQ(machinery.sink().port("1-2").succeeded, 1U);
}

TEST_F(MachineryFaultsTest, PlugUnplugStormsOnEightPortsAtOnce) {
    Machinery machinery(firmware.path());
    ASSERT_EQ(machinery.run([](virtualpi::VirtualBus& bus, WatchingSink& sink) {
        std::vector<std::thread> storms;
        for (int p = 1; p <= 8; ++p) {
            storms.emplace_back([&bus, p] {
                const std::string port = "2-" + std::to_string(p);
                for (int i = 0; i < 60; ++i) {
                    bus.plug(healthy2711(port));
                    bus.unplug(port);
                }
            });
        }
        for (auto& t : storms) {
            t.join();
        }
        std::vector<unsigned> before;
        for (int p = 1; p <= 8; ++p) {
            const std::string port = "2-" + std::to_string(p);
            before.push_back(sink.port(port).succeeded);
            bus.plug(healthy2711(port));
        }
        for (int p = 1; p <= 8; ++p) {
            const std::string port = "2-" + std::to_string(p);
            const unsigned was = before[static_cast<std::size_t>(p - 1)];
            waitUntil([&] { return sink.port(port).succeeded == was + 1; });
        }
    }),
              0);
    for (int p = 1; p <= 8; ++p) {
        const std::string port = "2-" + std::to_string(p);
        EXPECT_EQ(machinery.sink().port(port).last.stage, kStageDone) << port;
    }
}

// Boards read start4.elf slowly while it is swapped for other bytes (a new
// file renamed over it) and then truncated in place: each board gets the old
// bytes or the new bytes, whole, or fails with an error saying so.
TEST_F(MachineryFaultsTest, FirmwareReplacedOrTruncatedWhileBoardsReadIt) {
    const fs::path file = firmware.path() / "msd/start4.elf";
    const std::string oldHash = sha256Of(file);
    std::string newBytes(600000, '\0');
    std::mt19937 rng(7);
    for (auto& c : newBytes) {
        c = static_cast<char>(rng());
    }
    std::vector<std::string> results;
    Machinery machinery(firmware.path());
    std::map<std::string, virtualpi::BoardRecord> records;
    std::string newHash, truncatedHash;
    ASSERT_EQ(machinery.run([&](virtualpi::VirtualBus& bus, WatchingSink& sink) {
        auto slow = [](const std::string& port) {
            virtualpi::BoardSpec spec = healthy2711(port);
            spec.scenario.bulkBytesPerSecond = 1000000;  // about half a second per file
            return spec;
        };
        for (const char* port : {"1-1", "1-2", "1-3"}) {
            bus.plug(slow(port));
        }
        waitUntil([&] { return sink.port("1-1").last.stage == kStageServingFiles; });
        {
            const fs::path next = file.string() + ".new";
            std::ofstream(next, std::ios::binary) << newBytes;
            fs::rename(next, file);
            newHash = sha256Of(file);
        }
        for (const char* port : {"1-4", "1-5"}) {
            bus.plug(slow(port));
        }
        waitUntil([&] { return sink.port("1-4").last.stage == kStageServingFiles; });
        fs::resize_file(file, 1000);
        truncatedHash = sha256Of(file);
        bus.plug(slow("1-6"));
        waitUntil([&] { return sink.total() == 6; });
        for (const auto& port : bus.ports()) {
            records[port] = bus.board(port)->record();
        }
    }),
              0);
    for (const char* port : {"1-1", "1-2", "1-3", "1-4", "1-5", "1-6"}) {
        SCOPED_TRACE(port);
        const auto status = machinery.sink().port(port);
        const virtualpi::FileRecord* got = records.at(port).file("start4.elf");
        if (status.succeeded == 1) {
            ASSERT_NE(got, nullptr);
            EXPECT_TRUE(got->complete);
            EXPECT_TRUE(got->sha256 == oldHash || got->sha256 == newHash ||
                        got->sha256 == truncatedHash)
                << "a mix of old and new bytes: " << got->sha256;
        } else {
            EXPECT_NE(status.last.lastError.find("start4.elf"), std::string::npos)
                << status.last.lastError;
        }
        std::cout << port << ": " << (status.succeeded == 1 ? "booted" : "failed: ")
                  << status.last.lastError
                  << (got != nullptr ? "; received " + std::to_string(got->receivedBytes) + " bytes"
                                     : std::string())
                  << "\n";
    }
}

// Files of 2^31 bytes and more (sparse) in the firmware root: the 32-bit
// size field can not carry them, so the daemon must not answer a wrapped
// size (2^32 + 5 read as 5) and must not serve part of one.
TEST_F(MachineryFaultsTest, FilesAtAndBeyondTwoToTheThirtyOneAreNeverServedTruncated) {
    const std::vector<std::pair<std::string, std::uintmax_t>> huge = {
        {"at2g.bin", std::uintmax_t{1} << 31},
        {"wraps.bin", (std::uintmax_t{1} << 32) + 5},
    };
    for (const auto& [name, size] : huge) {
        std::ofstream(firmware.path() / "msd" / name).put('x');
        fs::resize_file(firmware.path() / "msd" / name, size);
    }
    Machinery machinery(firmware.path());
    std::map<std::string, virtualpi::BoardRecord> records;
    ASSERT_EQ(machinery.run([&](virtualpi::VirtualBus& bus, WatchingSink& sink) {
        unsigned port = 1;
        for (const auto& entry : huge) {
            virtualpi::BoardSpec spec = healthy2711("1-" + std::to_string(port++));
            spec.scenario = virtualpi::parseScenario(
                R"({ "name": "huge", "chip": "2711", "steps": [ { "kind": "file", "name": ")" +
                entry.first + R"(", "optional": true }, "start4.elf" ] })");
            bus.plug(spec);
        }
        waitUntil([&] { return sink.total() == huge.size(); });
        for (const auto& p : bus.ports()) {
            records[p] = bus.board(p)->record();
        }
    }),
              0);
    for (std::size_t i = 0; i < huge.size(); ++i) {
        const std::string port = "1-" + std::to_string(i + 1);
        SCOPED_TRACE(huge[i].first);
        const auto status = machinery.sink().port(port);
        const virtualpi::FileRecord* got = records.at(port).file(huge[i].first);
        ASSERT_NE(got, nullptr);
        EXPECT_EQ(got->receivedBytes, 0U) << "part of a huge file was served";
        if (status.succeeded == 1) {
            EXPECT_EQ(got->reportedSize.value_or(0), 0U) << "a wrapped size was answered";
        } else {
            EXPECT_FALSE(status.last.lastError.empty());
        }
        std::cout << huge[i].first << ": " << (status.succeeded == 1 ? "booted" : "failed: ")
                  << status.last.lastError << "; size answered " << got->reportedSize.value_or(0)
                  << "\n";
    }
}

}  // namespace
}  // namespace rpibootd::faults
