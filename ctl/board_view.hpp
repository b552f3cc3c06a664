// What rpibootctl knows about the daemon and its boards, and how it shows it.
//
// Plain data read from io.rpibootd1 (docs/dbus-api.md) and pure functions
// that turn it into the status table, the watch screen, `show` and the JSON
// of `status --json` (docs/rpibootctl-json.md). Nothing here talks to D-Bus
// or to the terminal, so every rendering is testable as a string.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rpibootctl {

struct BoardView {
    std::string path;  // D-Bus object path
    std::string port;
    std::string chip;
    std::string serial;
    std::string profile;
    std::string stage;
    std::string currentFile;
    std::uint64_t bytesSent = 0;
    std::uint64_t bytesTotal = 0;
    std::uint64_t bytesWritten = 0;  // storage step
    std::uint64_t bytesToWrite = 0;
    std::uint32_t filesServed = 0;
    std::uint32_t bootCount = 0;
    std::string lastError;
    std::uint64_t startedUsec = 0;
    std::uint64_t finishedUsec = 0;
    std::map<std::string, std::string> metadata;
};

struct StationView {
    std::string daemonVersion;
    std::vector<std::string> heldPorts;
    std::vector<BoardView> boards;  // sorted by port
};

// A board still being worked on (not done, failed, disconnected or held).
bool inFlight(const BoardView& board);
// A verdict: done, failed or disconnected.
bool settled(const BoardView& board);
bool failedStage(const std::string& stage);

// "1.2s", "1m05s", "2h03m"; "-" when the boot has not started.
std::string elapsedText(const BoardView& board, std::uint64_t nowUsec);
// "45%" (or "" when there is nothing to measure).
std::string percentText(const BoardView& board);
// "[########------------]" of `width` cells inside the brackets.
std::string progressBar(const BoardView& board, int width);

// The table of `status`: a header and one line per board.
std::string renderTable(const StationView& station, std::uint64_t nowUsec);
// `status --json`: one object, schema version 1.
std::string renderJson(const StationView& station, std::uint64_t nowUsec);
// `show PORT`: every property, one per line.
std::string renderBoard(const BoardView& board, std::uint64_t nowUsec);

// What `watch` counts across its run.
struct WatchTally {
    std::uint64_t startedUsec = 0;            // when watch started
    std::vector<std::uint64_t> bootedAtUsec;  // successful BootFinished, last hour
    std::uint64_t bootedTotal = 0;            // since watch started
    std::uint64_t failedTotal = 0;
    void booted(std::uint64_t nowUsec);
    void failed() { ++failedTotal; }
    // Successful boots per hour over the last hour (or since watch started,
    // when that is shorter, but at least a minute).
    double bootsPerHour(std::uint64_t nowUsec) const;
};

// "booted 7 · failed 1 · in flight 0 · held 0 · 312 boots/h"
std::string renderSummary(const StationView& station, const WatchTally& tally,
                          std::uint64_t nowUsec);
// The live screen of `watch` on a terminal `columns` wide (ANSI: home, clear,
// one line per board with its progress bar, the summary line).
std::string renderScreen(const StationView& station, const WatchTally& tally, std::uint64_t nowUsec,
                         int columns);
// One plain line for a change when stdout is not a terminal.
std::string renderEventLine(const BoardView& board, std::uint64_t nowUsec);

}  // namespace rpibootctl
