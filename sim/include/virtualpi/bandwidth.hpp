// Pacing of bulk data as a board accepts it: a per-board rate cap and a
// budget shared by every board on one virtual controller (e.g. 480 Mb/s).
//
// A budget hands out the time at which a number of bytes has gone through,
// in arrival order; the board waits until then before acknowledging. It only
// computes times and never sleeps itself. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace virtualpi {

class BandwidthBudget {
  public:
    // 0 bytes per second: unlimited (reserve() returns "now").
    explicit BandwidthBudget(std::uint64_t bytesPerSecond = 0) : rate_(bytesPerSecond) {}

    // Books `bytes` on the link and returns when they are through: the later
    // of now and the end of what was booked before, plus bytes / rate.
    std::chrono::steady_clock::time_point reserve(std::size_t bytes);

    std::uint64_t bytesPerSecond() const noexcept { return rate_; }
    // Total bytes booked so far.
    std::uint64_t bytesBooked() const;

  private:
    const std::uint64_t rate_;
    mutable std::mutex mutex_;
    std::chrono::steady_clock::time_point busyUntil_{};
    std::uint64_t booked_ = 0;
};

// 480 Mb/s, the USB 2.0 high-speed signalling rate, in bytes per second.
inline constexpr std::uint64_t kHighSpeedBytesPerSecond = 480'000'000 / 8;

}  // namespace virtualpi
