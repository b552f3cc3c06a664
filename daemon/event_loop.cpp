#include "event_loop.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "rpiboot/core/error.hpp"

namespace rpibootd {

namespace {

[[noreturn]] void failWith(int negativeErrno, const std::string& what) {
    throw rpiboot::Error(rpiboot::Errc::Io, what + ": " + rpiboot::errnoText(negativeErrno));
}

// The callbacks live in the sd_event_source's userdata and are freed with it.
template <typename Callback>
void attachCallback(sd_event_source* source, Callback callback) {
    auto* owned = new Callback(std::move(callback));
    sd_event_source_set_userdata(source, owned);
    sd_event_source_set_destroy_callback(
        source, [](void* userdata) { delete static_cast<Callback*>(userdata); });
}

class LoopTimer final : public Timer {
  public:
    explicit LoopTimer(EventSource source) : source_(std::move(source)) {}

  private:
    EventSource source_;
};

}  // namespace

EventLoop::EventLoop() {
    sd_event* event = nullptr;
    const int r = sd_event_new(&event);
    if (r < 0) {
        failWith(r, "cannot create the event loop");
    }
    event_.reset(event);
    wakeFd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wakeFd_) {
        failWith(-errno, "cannot create the event loop's wake-up eventfd");
    }
    wakeSource_ = onReadable(wakeFd_.get(), [this](std::uint32_t) {
        std::uint64_t count = 0;
        // Reset the counter; a short or failed read only means nothing was pending.
        [[maybe_unused]] const auto n = ::read(wakeFd_.get(), &count, sizeof count);
        drainQueue();
    });
}

EventLoop::~EventLoop() {
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        queue_.clear();
    }
    windowEnd_.reset();
    wakeSource_.reset();
}

void EventLoop::post(std::function<void()> work) {
    {
        std::lock_guard lock(mutex_);
        if (closed_) {
            return;
        }
        queue_.push_back(std::move(work));
        ++wakeUps_;
    }
    wake();
}

void EventLoop::postDeferred(std::function<void()> work) {
    {
        std::lock_guard lock(mutex_);
        if (closed_) {
            return;
        }
        queue_.push_back(std::move(work));
        if (deferredWindow_) {
            return;  // runs with the next wake-up or at the window's end
        }
        deferredWindow_ = true;
        ++wakeUps_;
    }
    wake();
}

std::uint64_t EventLoop::wakeUps() const {
    std::lock_guard lock(mutex_);
    return wakeUps_;
}

void EventLoop::wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wakeFd_.get(), &one, sizeof one);
}

void EventLoop::drainQueue() {
    std::deque<std::function<void()>> batch;
    bool openWindow = false;
    {
        std::lock_guard lock(mutex_);
        batch.swap(queue_);
        openWindow = deferredWindow_ && !windowEnd_;
    }
    if (openWindow) {
        // Until it ends, deferred work waits; then it runs and the next
        // deferred work wakes the loop again.
        windowEnd_ = after(kDeferredInterval, [this] {
            {
                std::lock_guard lock(mutex_);
                deferredWindow_ = false;
            }
            windowEnd_.reset();  // safe: the timer's callback runs from a copy
            drainQueue();
        });
    }
    for (auto& work : batch) {
        work();
    }
}

EventSource EventLoop::onSignal(int signal, std::function<void()> handler) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, signal);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    sd_event_source* source = nullptr;
    const int r = sd_event_add_signal(
        event_.get(), &source, signal,
        [](sd_event_source* s, const struct signalfd_siginfo*, void*) -> int {
            (*static_cast<std::function<void()>*>(sd_event_source_get_userdata(s)))();
            return 0;
        },
        nullptr);
    if (r < 0) {
        failWith(r, "cannot watch signal " + std::to_string(signal));
    }
    attachCallback(source, std::move(handler));
    return EventSource(source);
}

EventSource EventLoop::onReadable(int fd, std::function<void(std::uint32_t)> handler) {
    sd_event_source* source = nullptr;
    const int r = sd_event_add_io(
        event_.get(), &source, fd, EPOLLIN,
        [](sd_event_source* s, int, std::uint32_t revents, void*) -> int {
            (*static_cast<std::function<void(std::uint32_t)>*>(sd_event_source_get_userdata(s)))(
                revents);
            return 0;
        },
        nullptr);
    if (r < 0) {
        failWith(r, "cannot watch file descriptor " + std::to_string(fd));
    }
    attachCallback(source, std::move(handler));
    return EventSource(source);
}

std::unique_ptr<Timer> EventLoop::after(std::chrono::milliseconds delay,
                                        std::function<void()> callback) {
    sd_event_source* source = nullptr;
    const auto usec = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(delay).count());
    // Accuracy 1 ms: with 0, sd-event would allow itself its default 250 ms
    // of slack, too much for the 100 ms progress windows.
    const int r = sd_event_add_time_relative(
        event_.get(), &source, CLOCK_MONOTONIC, usec, 1000,
        [](sd_event_source* s, std::uint64_t, void*) -> int {
            // A copy: the callback may destroy its own Timer (and with it the stored one).
            auto fire = *static_cast<std::function<void()>*>(sd_event_source_get_userdata(s));
            fire();
            return 0;
        },
        nullptr);
    if (r < 0) {
        failWith(r, "cannot arm a timer");
    }
    attachCallback(source, std::move(callback));
    return std::make_unique<LoopTimer>(EventSource(source));
}

void EventLoop::enableWatchdog() {
    sd_event_set_watchdog(event_.get(), 1);
}

int EventLoop::run() {
    const int r = sd_event_loop(event_.get());
    if (r < 0) {
        failWith(r, "event loop failed");
    }
    return r;
}

void EventLoop::exit(int code) {
    sd_event_exit(event_.get(), code);
}

}  // namespace rpibootd
