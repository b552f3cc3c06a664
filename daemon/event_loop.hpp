// The daemon's one sd-event loop and the ways other threads reach it.
//
// Owns the sd_event object; hands out RAII event sources for signals, file
// descriptors and timers; and carries a queue (an eventfd in the loop) through
// which worker and virtual-bus threads post closures that then run on the
// loop thread. Everything that touches board state or D-Bus runs here. It
// never runs a posted closure on the posting thread, and never blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "handles.hpp"

namespace rpibootd {

// A one-shot timer: the callback runs once on the loop thread unless the
// Timer is destroyed first.
class Timer {
  public:
    virtual ~Timer() = default;
};

// Where board timeouts come from; the loop in the daemon, a fake in tests.
class TimerService {
  public:
    virtual ~TimerService() = default;
    virtual std::unique_ptr<Timer> after(std::chrono::milliseconds delay,
                                         std::function<void()> callback) = 0;
};

class EventLoop final : public TimerService {
  public:
    // Creates the loop (sd_event_new) and its post queue. Throws rpiboot::Error.
    EventLoop();
    ~EventLoop() override;
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    sd_event* get() const noexcept { return event_.get(); }

    // Thread-safe: queue `work` to run on the loop thread. Work posted after
    // the loop has finished is dropped.
    void post(std::function<void()> work);
    // Thread-safe: like post(), for work that may wait up to
    // kDeferredInterval (progress reports). The first deferred work after a
    // quiet spell wakes the loop at once; what is deferred in the interval
    // that follows does not wake it, and runs with the next post() or when
    // the interval ends. One queue: the order of all posted work is kept.
    void postDeferred(std::function<void()> work);
    static constexpr std::chrono::milliseconds kDeferredInterval{100};
    // How many times other threads have woken the loop through post() or
    // postDeferred() (tests, benchmarks).
    std::uint64_t wakeUps() const;

    // Blocks `signal` for the process and handles it in the loop (signalfd).
    EventSource onSignal(int signal, std::function<void()> handler);
    // Calls `handler(revents)` when `fd` is readable.
    EventSource onReadable(int fd, std::function<void(std::uint32_t)> handler);
    std::unique_ptr<Timer> after(std::chrono::milliseconds delay,
                                 std::function<void()> callback) override;

    // Sends WATCHDOG=1 on its own when systemd asked for a watchdog.
    void enableWatchdog();

    // Runs until exit() is called; returns the exit code.
    int run();
    void exit(int code);

  private:
    void wake();
    void drainQueue();

    EventPtr event_;
    UniqueFd wakeFd_;
    EventSource wakeSource_;
    mutable std::mutex mutex_;
    std::deque<std::function<void()>> queue_;
    bool closed_ = false;
    bool deferredWindow_ = false;  // deferred work does not wake the loop now
    std::uint64_t wakeUps_ = 0;
    std::unique_ptr<Timer> windowEnd_;  // loop thread only; declared last, destroyed first
};

}  // namespace rpibootd
