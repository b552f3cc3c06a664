// The Prometheus textfile of rpibootd, for node_exporter's textfile
// collector (docs/metrics.md lists every metric).
//
// MetricsWriter counts what the registry reports about whole boots (started,
// finished by chip, profile and result, their duration, failures by reason
// class, bytes served) and reads the boards' stages when it writes. It writes
// the file atomically, at most once per configured interval, and once more
// when it goes away. Main loop only; a file it cannot write is a warning,
// never a reason to stop booting boards.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "boot_listener.hpp"
#include "event_loop.hpp"
#include "journal.hpp"
#include "rpiboot/profile/daemon_config.hpp"

namespace rpibootd {

// Upper bounds (seconds) of the boot duration histogram's buckets, +Inf aside.
inline constexpr std::array<double, 10> kBootDurationBuckets = {1,  2,  5,   10,  20,
                                                                30, 60, 120, 300, 600};

class MetricsWriter final : public BootListener {
  public:
    struct Environment {
        TimerService& timers;
        Logger& log;
        std::function<std::vector<BoardStatus>()> boards;
        std::function<std::uint64_t()> realtimeUsec;
    };

    // Writes the file once at once (all counters 0).
    MetricsWriter(Environment environment, rpiboot::MetricsConfig config);
    // Writes the final state.
    ~MetricsWriter() override;
    MetricsWriter(const MetricsWriter&) = delete;
    MetricsWriter& operator=(const MetricsWriter&) = delete;

    void bootStarted(const BoardStatus& board) override;
    void attemptFailed(const BoardStatus& board, FailureClass reason) override;
    void bootFinished(const BoardStatus& board, bool success, FailureClass reason,
                      double seconds) override;
    void bytesServed(std::uint64_t bytes) override;
    void bytesWritten(std::uint64_t bytes) override;
    void boardsChanged() override;

    // The file's text in Prometheus text format 0.0.4.
    std::string render() const;
    // Writes now; false (and a warning, once until it works again) on failure.
    bool writeNow();
    const rpiboot::MetricsConfig& config() const noexcept { return config_; }

  private:
    using ChipProfile = std::tuple<std::string, std::string>;
    struct Histogram {
        std::array<std::uint64_t, kBootDurationBuckets.size()> buckets{};
        std::uint64_t count = 0;
        double sum = 0;
    };
    void changed();

    Environment env_;
    rpiboot::MetricsConfig config_;
    std::map<ChipProfile, std::uint64_t> started_;
    std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> finished_;
    std::map<ChipProfile, Histogram> durations_;
    std::map<std::string, std::uint64_t> attemptFailures_;
    std::map<std::string, std::uint64_t> failures_;
    std::uint64_t bytesServed_ = 0;
    std::uint64_t bytesWritten_ = 0;
    std::uint64_t lastSuccessUsec_ = 0;
    std::unique_ptr<Timer> pending_;
    bool failing_ = false;
};

}  // namespace rpibootd
