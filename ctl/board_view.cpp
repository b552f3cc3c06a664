#include "board_view.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace rpibootctl {

namespace {

constexpr std::uint64_t kUsecPerSec = 1'000'000;
constexpr std::uint64_t kHourUsec = 3600 * kUsecPerSec;

std::string orDash(const std::string& text) {
    return text.empty() ? "-" : text;
}

// Cuts `text` to `width` characters, marking the cut with "…" kept ASCII ("~").
std::string fit(const std::string& text, std::size_t width) {
    if (text.size() <= width) {
        return text;
    }
    if (width == 0) {
        return {};
    }
    return text.substr(0, width - 1) + "~";
}

std::string pad(const std::string& text, std::size_t width) {
    std::string out = fit(text, width);
    out.resize(width, ' ');
    return out;
}

std::string clockText(std::uint64_t usec) {
    const std::time_t t = static_cast<std::time_t>(usec / kUsecPerSec);
    std::tm local{};
    ::localtime_r(&t, &local);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d", local.tm_hour, local.tm_min, local.tm_sec);
    return buf;
}

bool showsTransfer(const BoardView& b) {
    return (b.stage == "serving-files" || b.stage == "sending-bootcode") && b.bytesTotal > 0;
}

// The storage step writes an image: its progress instead of the last file's.
bool showsWrite(const BoardView& b) {
    return (b.stage == "writing" || b.stage == "verifying") && b.bytesToWrite > 0;
}

}  // namespace

bool failedStage(const std::string& stage) {
    return stage == "failed" || stage == "disconnected";
}

bool settled(const BoardView& b) {
    return b.stage == "done" || failedStage(b.stage);
}

bool inFlight(const BoardView& b) {
    return !settled(b) && b.stage != "held";
}

std::string elapsedText(const BoardView& b, std::uint64_t nowUsec) {
    if (b.startedUsec == 0) {
        return "-";
    }
    const std::uint64_t end = b.finishedUsec != 0 ? b.finishedUsec : nowUsec;
    const std::uint64_t usec = end > b.startedUsec ? end - b.startedUsec : 0;
    const std::uint64_t secs = usec / kUsecPerSec;
    char buf[32];
    if (secs < 60) {
        std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(usec) / kUsecPerSec);
    } else if (secs < 3600) {
        std::snprintf(buf, sizeof buf, "%um%02us", static_cast<unsigned>(secs / 60),
                      static_cast<unsigned>(secs % 60));
    } else {
        std::snprintf(buf, sizeof buf, "%uh%02um", static_cast<unsigned>(secs / 3600),
                      static_cast<unsigned>((secs / 60) % 60));
    }
    return buf;
}

std::string percentText(const BoardView& b) {
    if (showsWrite(b)) {
        return std::to_string(std::min<std::uint64_t>(100, b.bytesWritten * 100 / b.bytesToWrite)) +
               "%";
    }
    if (!showsTransfer(b)) {
        return {};
    }
    const auto pct = std::min<std::uint64_t>(100, b.bytesSent * 100 / b.bytesTotal);
    return std::to_string(pct) + "%";
}

std::string progressBar(const BoardView& b, int width) {
    const auto cells = static_cast<std::uint64_t>(std::max(width, 1));
    std::uint64_t full = 0;
    if (b.stage == "done") {
        full = cells;
    } else if (showsWrite(b)) {
        full = std::min(cells, b.bytesWritten * cells / b.bytesToWrite);
    } else if (showsTransfer(b)) {
        full = std::min(cells, b.bytesSent * cells / b.bytesTotal);
    }
    return "[" + std::string(full, '#') + std::string(cells - full, '-') + "]";
}

std::string renderTable(const StationView& station, std::uint64_t nowUsec) {
    std::string out =
        "PORT         CHIP     SERIAL     PROFILE              STAGE            FILE               "
        "  "
        "PROGRESS ELAPSED  LAST ERROR\n";
    for (const auto& b : station.boards) {
        out += pad(b.port, 12) + " " + pad(orDash(b.chip), 8) + " " + pad(orDash(b.serial), 10) +
               " " + pad(orDash(b.profile), 20) + " " + pad(orDash(b.stage), 16) + " " +
               pad(orDash(b.currentFile), 20) + " " + pad(orDash(percentText(b)), 8) + " " +
               pad(elapsedText(b, nowUsec), 8) + " " + orDash(b.lastError) + "\n";
    }
    if (station.boards.empty()) {
        out += "(no boards)\n";
    }
    if (!station.heldPorts.empty()) {
        std::string held;
        for (const auto& glob : station.heldPorts) {
            held += (held.empty() ? "" : ", ") + glob;
        }
        out += "held ports: " + held + "\n";
    }
    return out;
}

std::string renderJson(const StationView& station, std::uint64_t nowUsec) {
    nlohmann::ordered_json doc;
    doc["schema"] = 1;
    doc["daemon_version"] = station.daemonVersion;
    doc["held_ports"] = station.heldPorts;
    doc["boards"] = nlohmann::ordered_json::array();
    for (const auto& b : station.boards) {
        nlohmann::ordered_json j;
        j["port"] = b.port;
        j["object_path"] = b.path;
        j["chip"] = b.chip;
        j["serial"] = b.serial;
        j["profile"] = b.profile;
        j["stage"] = b.stage;
        j["current_file"] = b.currentFile;
        j["bytes_sent"] = b.bytesSent;
        j["bytes_total"] = b.bytesTotal;
        j["files_served"] = b.filesServed;
        j["boot_count"] = b.bootCount;
        j["last_error"] = b.lastError;
        j["started_usec"] = b.startedUsec;
        j["finished_usec"] = b.finishedUsec;
        const std::uint64_t end = b.finishedUsec != 0 ? b.finishedUsec : nowUsec;
        j["elapsed_ms"] = b.startedUsec != 0 && end > b.startedUsec ? (end - b.startedUsec) / 1000
                                                                    : std::uint64_t{0};
        j["metadata"] = b.metadata;
        doc["boards"].push_back(std::move(j));
    }
    return doc.dump(2) + "\n";
}

std::string renderBoard(const BoardView& b, std::uint64_t nowUsec) {
    std::string out;
    const auto line = [&out](const char* key, const std::string& value) {
        char label[20];
        std::snprintf(label, sizeof label, "%-14s", key);
        out += std::string(label) + value + "\n";
    };
    line("Port:", b.port);
    line("Object:", b.path);
    line("Chip:", orDash(b.chip));
    line("Serial:", orDash(b.serial));
    line("Profile:", orDash(b.profile));
    line("Stage:", orDash(b.stage));
    line("Current file:", orDash(b.currentFile));
    line("Progress:", showsTransfer(b)
                          ? std::to_string(b.bytesSent) + " of " + std::to_string(b.bytesTotal) +
                                " bytes (" + percentText(b) + ")"
                          : std::string("-"));
    line("Files served:", std::to_string(b.filesServed));
    line("Boot count:", std::to_string(b.bootCount));
    line("Started:", b.startedUsec != 0 ? clockText(b.startedUsec) : "-");
    line("Finished:", b.finishedUsec != 0 ? clockText(b.finishedUsec) : "-");
    line("Elapsed:", elapsedText(b, nowUsec));
    line("Last error:", orDash(b.lastError));
    if (b.metadata.empty()) {
        line("Metadata:", "-");
    }
    for (const auto& [key, value] : b.metadata) {
        line(("  " + key + ":").c_str(), value);
    }
    return out;
}

void WatchTally::booted(std::uint64_t nowUsec) {
    ++bootedTotal;
    bootedAtUsec.push_back(nowUsec);
    const auto horizon = nowUsec > kHourUsec ? nowUsec - kHourUsec : 0;
    bootedAtUsec.erase(std::remove_if(bootedAtUsec.begin(), bootedAtUsec.end(),
                                      [horizon](std::uint64_t t) { return t < horizon; }),
                       bootedAtUsec.end());
}

double WatchTally::bootsPerHour(std::uint64_t nowUsec) const {
    const std::uint64_t horizon = nowUsec > kHourUsec ? nowUsec - kHourUsec : 0;
    const auto recent = std::count_if(bootedAtUsec.begin(), bootedAtUsec.end(),
                                      [horizon](std::uint64_t t) { return t >= horizon; });
    std::uint64_t window = nowUsec > startedUsec ? nowUsec - startedUsec : 0;
    window = std::clamp<std::uint64_t>(window, 60 * kUsecPerSec, kHourUsec);
    return static_cast<double>(recent) * static_cast<double>(kHourUsec) /
           static_cast<double>(window);
}

std::string renderSummary(const StationView& station, const WatchTally& tally,
                          std::uint64_t nowUsec) {
    std::size_t booted = 0;
    std::size_t failed = 0;
    std::size_t flying = 0;
    std::size_t held = 0;
    for (const auto& b : station.boards) {
        booted += b.stage == "done" ? 1 : 0;
        failed += failedStage(b.stage) ? 1 : 0;
        flying += inFlight(b) ? 1 : 0;
        held += b.stage == "held" ? 1 : 0;
    }
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.0f", tally.bootsPerHour(nowUsec));
    return "booted " + std::to_string(booted) + " | failed " + std::to_string(failed) +
           " | in flight " + std::to_string(flying) + " | held " + std::to_string(held) + " | " +
           rate + " boots/h (" + std::to_string(tally.bootedTotal) + " booted, " +
           std::to_string(tally.failedTotal) + " failed since watch started)";
}

std::string renderScreen(const StationView& station, const WatchTally& tally, std::uint64_t nowUsec,
                         int columns) {
    const std::size_t width = static_cast<std::size_t>(std::max(columns, 40));
    // Home, then each line cleared to its end: no flicker from a full clear.
    std::string out = "\x1b[H";
    const auto emit = [&out, width](const std::string& line) {
        out += fit(line, width) + "\x1b[K\n";
    };
    emit("rpibootctl watch - rpibootd " + station.daemonVersion + " - " + clockText(nowUsec));
    emit("");
    emit(
        "PORT         CHIP     PROFILE              STAGE            PROGRESS                     "
        "   FILE / LAST ERROR");
    for (const auto& b : station.boards) {
        const std::string pct = percentText(b);
        std::string detail =
            failedStage(b.stage) || b.stage == "held" ? b.lastError : b.currentFile;
        if (b.stage == "done") {
            detail = std::to_string(b.filesServed) + " file(s) in " + elapsedText(b, nowUsec);
        }
        emit(pad(b.port, 12) + " " + pad(orDash(b.chip), 8) + " " + pad(orDash(b.profile), 20) +
             " " + pad(orDash(b.stage), 16) + " " + progressBar(b, 20) + " " + pad(pct, 4) + "  " +
             (b.bootCount > 1 ? "#" + std::to_string(b.bootCount) + " " : std::string()) +
             orDash(detail));
    }
    if (station.boards.empty()) {
        emit("(no boards yet: waiting for a board in USB boot mode)");
    }
    emit("");
    emit(renderSummary(station, tally, nowUsec));
    out += "\x1b[J";  // whatever the previous screen had below
    return out;
}

std::string renderEventLine(const BoardView& b, std::uint64_t nowUsec) {
    std::string line =
        clockText(nowUsec) + " " + b.port + " " + orDash(b.chip) + " " + orDash(b.stage);
    if (b.stage == "done") {
        line += " " + std::to_string(b.filesServed) + " file(s) in " + elapsedText(b, nowUsec);
    } else if (failedStage(b.stage) || b.stage == "held") {
        line += b.lastError.empty() ? "" : ": " + b.lastError;
    } else if (!b.currentFile.empty()) {
        line += " " + b.currentFile;
        const std::string pct = percentText(b);
        line += pct.empty() ? "" : " " + pct;
    }
    return line + "\n";
}

}  // namespace rpibootctl
