#include "metrics.hpp"

#include <cstdio>
#include <exception>

#include "state_files.hpp"

namespace rpibootd {

namespace {

// Stages a board can be in, each reported (0 when no board is there).
constexpr const char* kStages[] = {
    kStageWaiting,      kStageSendingBootcode, kStageServingFiles, kStageBooted,
    kStageStorageReady, kStageWriting,         kStageVerifying,    kStageHeld,
    kStageDone,         kStageFailed,          kStageDisconnected};

std::string escapeLabel(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

// Fixed notation, microsecond resolution, no trailing zeros: "4.264819", "1", "600".
std::string number(double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", value);
    std::string text = buf;
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') {
        text.pop_back();
    }
    return text;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n";
    out += std::string("# TYPE ") + name + " " + type + "\n";
}

std::string chipProfile(const std::string& chip, const std::string& profile) {
    return "chip=\"" + escapeLabel(chip) + "\",profile=\"" + escapeLabel(profile) + "\"";
}

}  // namespace

MetricsWriter::MetricsWriter(Environment environment, rpiboot::MetricsConfig config)
    : env_(std::move(environment)), config_(std::move(config)) {
    writeNow();
}

MetricsWriter::~MetricsWriter() {
    pending_.reset();
    writeNow();
}

void MetricsWriter::bootStarted(const BoardStatus& board) {
    ++started_[{board.chip, board.profile}];
    changed();
}

void MetricsWriter::attemptFailed(const BoardStatus&, FailureClass reason) {
    ++attemptFailures_[failureClassName(reason)];
    changed();
}

void MetricsWriter::bootFinished(const BoardStatus& board, bool success, FailureClass reason,
                                 double seconds) {
    ++finished_[{board.chip, board.profile, success ? "success" : "failure"}];
    Histogram& h = durations_[{board.chip, board.profile}];
    for (std::size_t i = 0; i < kBootDurationBuckets.size(); ++i) {
        if (seconds <= kBootDurationBuckets[i]) {
            ++h.buckets[i];
        }
    }
    ++h.count;
    h.sum += seconds;
    if (success) {
        lastSuccessUsec_ = env_.realtimeUsec();
    } else {
        ++failures_[failureClassName(reason)];
    }
    changed();
}

void MetricsWriter::bytesWritten(std::uint64_t bytes) {
    bytesWritten_ += bytes;
    changed();
}

void MetricsWriter::bytesServed(std::uint64_t bytes) {
    bytesServed_ += bytes;
    changed();
}

void MetricsWriter::boardsChanged() {
    changed();
}

void MetricsWriter::changed() {
    if (pending_) {
        return;  // a write is due; it will see this change too
    }
    pending_ = env_.timers.after(config_.interval, [this] {
        pending_.reset();
        writeNow();
    });
}

std::string MetricsWriter::render() const {
    std::string out;
    header(out, "rpibootd_boots_started_total", "counter",
           "Boots begun (first attempts; retries are not counted), by chip and profile.");
    for (const auto& [key, n] : started_) {
        out += "rpibootd_boots_started_total{" + chipProfile(std::get<0>(key), std::get<1>(key)) +
               "} " + std::to_string(n) + "\n";
    }
    header(out, "rpibootd_boots_finished_total", "counter",
           "Boots ended, once per boot after its last attempt, by chip, profile and result "
           "(success or failure).");
    for (const auto& [key, n] : finished_) {
        out += "rpibootd_boots_finished_total{" + chipProfile(std::get<0>(key), std::get<1>(key)) +
               ",result=\"" + std::get<2>(key) + "\"} " + std::to_string(n) + "\n";
    }
    header(out, "rpibootd_boot_duration_seconds", "histogram",
           "Time from a boot's first attempt to its verdict, by chip and profile.");
    for (const auto& [key, h] : durations_) {
        const std::string labels = chipProfile(std::get<0>(key), std::get<1>(key));
        for (std::size_t i = 0; i < kBootDurationBuckets.size(); ++i) {
            out += "rpibootd_boot_duration_seconds_bucket{" + labels + ",le=\"" +
                   number(kBootDurationBuckets[i]) + "\"} " + std::to_string(h.buckets[i]) + "\n";
        }
        out += "rpibootd_boot_duration_seconds_bucket{" + labels + ",le=\"+Inf\"} " +
               std::to_string(h.count) + "\n";
        out += "rpibootd_boot_duration_seconds_sum{" + labels + "} " + number(h.sum) + "\n";
        out += "rpibootd_boot_duration_seconds_count{" + labels + "} " + std::to_string(h.count) +
               "\n";
    }
    header(out, "rpibootd_failures_total", "counter",
           "Boots that failed for good, by reason class of their last attempt.");
    for (FailureClass reason : kAllFailureClasses) {
        const auto it = failures_.find(failureClassName(reason));
        out += std::string("rpibootd_failures_total{reason=\"") + failureClassName(reason) +
               "\"} " + std::to_string(it == failures_.end() ? 0 : it->second) + "\n";
    }
    header(out, "rpibootd_attempt_failures_total", "counter",
           "Failed attempts, retried or not, by reason class.");
    for (FailureClass reason : kAllFailureClasses) {
        const auto it = attemptFailures_.find(failureClassName(reason));
        out += std::string("rpibootd_attempt_failures_total{reason=\"") + failureClassName(reason) +
               "\"} " + std::to_string(it == attemptFailures_.end() ? 0 : it->second) + "\n";
    }
    header(out, "rpibootd_served_bytes_total", "counter",
           "Bytes of files sent to boards in full (bootcode and second-stage files).");
    out += "rpibootd_served_bytes_total " + std::to_string(bytesServed_) + "\n";
    header(out, "rpibootd_written_bytes_total", "counter",
           "Image bytes written to boards' disks by storage steps.");
    out += "rpibootd_written_bytes_total " + std::to_string(bytesWritten_) + "\n";
    header(out, "rpibootd_boards", "gauge",
           "Boards rpibootd knows, by stage (waiting to verifying are in flight).");
    std::map<std::string, std::uint64_t> byStage;
    for (const char* stage : kStages) {
        byStage[stage] = 0;
    }
    for (const auto& board : env_.boards()) {
        ++byStage[board.stage];
    }
    for (const auto& [stage, n] : byStage) {
        out += "rpibootd_boards{stage=\"" + escapeLabel(stage) + "\"} " + std::to_string(n) + "\n";
    }
    header(out, "rpibootd_last_success_timestamp_seconds", "gauge",
           "Unix time of the last successful boot; 0 before the first one.");
    out += "rpibootd_last_success_timestamp_seconds " +
           number(static_cast<double>(lastSuccessUsec_ / 1000) / 1000.0) + "\n";
    return out;
}

bool MetricsWriter::writeNow() {
    try {
        writeFileAtomically(config_.file, render());
        if (failing_) {
            env_.log.info("metrics are written to " + config_.file.string() + " again");
        }
        failing_ = false;
        return true;
    } catch (const std::exception& e) {
        if (!failing_) {
            env_.log.warning(std::string("cannot write metrics: ") + e.what() +
                             "; booting goes on, metrics are retried at the next change");
        }
        failing_ = true;
        return false;
    }
}

}  // namespace rpibootd
