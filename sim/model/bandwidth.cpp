#include "virtualpi/bandwidth.hpp"

#include <algorithm>

namespace virtualpi {

std::chrono::steady_clock::time_point BandwidthBudget::reserve(std::size_t bytes) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    booked_ += bytes;
    if (rate_ == 0) {
        return now;
    }
    const auto start = std::max(now, busyUntil_);
    const auto nanos =
        static_cast<std::int64_t>(static_cast<double>(bytes) * 1e9 / static_cast<double>(rate_));
    busyUntil_ = start + std::chrono::nanoseconds(nanos);
    return busyUntil_;
}

std::uint64_t BandwidthBudget::bytesBooked() const {
    std::lock_guard lock(mutex_);
    return booked_;
}

}  // namespace virtualpi
