#include "virtualpi/fake_transport.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <stop_token>
#include <thread>

#include "rpiboot/core/error.hpp"

namespace virtualpi {
namespace {

using rpiboot::Errc;
using rpiboot::Error;

// Like libusb, a timeout of 0 means "wait for ever".
Deadline until(rpiboot::Milliseconds timeout) {
    return timeout.count() <= 0 ? Deadline::max() : deadlineAfter(timeout);
}

class FakeTransport final : public rpiboot::Transport {
  public:
    FakeTransport(std::shared_ptr<UsbDevice> device, std::string name, FakeTransportOptions options)
        : device_(std::move(device)), name_(std::move(name)), options_(options) {
        if (name_.empty()) {
            name_ = "virtual device";
        }
        // The host's rule (docs/protocol.md §2.3): one interface -> EP 1, else the
        // vendor interface's EP 3. The fake takes it from the descriptors.
        outEndpoint_ = device_->descriptors().vendorBulkOutEndpoint();
    }

    ~FakeTransport() override {
        cancelBulkOut();
        if (controller_.joinable()) {
            controller_.request_stop();
            controller_.join();
        }
    }
    FakeTransport(const FakeTransport&) = delete;
    FakeTransport& operator=(const FakeTransport&) = delete;

    void controlOutLength(std::uint32_t length, rpiboot::Milliseconds timeout) override {
        SetupPacket setup;
        setup.requestType = kVendorOut;
        setup.value = static_cast<std::uint16_t>(length & 0xffff);
        setup.index = static_cast<std::uint16_t>(length >> 16);
        const auto r = device_->control(setup, {}, until(timeout));
        completionDelay();
        check(r, "control OUT (length " + std::to_string(length) + ")");
    }

    std::size_t controlIn(std::span<std::uint8_t> buffer, rpiboot::Milliseconds timeout) override {
        if (buffer.size() > 0xffff) {
            throw Error(Errc::InvalidArgument, name_ + ": a control IN cannot read " +
                                                   std::to_string(buffer.size()) + " bytes");
        }
        SetupPacket setup;
        setup.requestType = kVendorIn;
        setup.value = static_cast<std::uint16_t>(buffer.size());
        setup.index = 0;
        setup.length = static_cast<std::uint16_t>(buffer.size());
        const auto r = device_->control(setup, buffer, until(timeout));
        completionDelay();
        check(r, "control IN (" + std::to_string(buffer.size()) + " bytes)");
        return r.length;
    }

    void bulkOut(std::span<const std::uint8_t> chunk, rpiboot::Milliseconds timeout) override {
        requireEndpoint();
        const auto r = device_->bulkOut(outEndpoint_, chunk, until(timeout));
        completionDelay();
        checkBulk(r, chunk.size());
    }

    std::size_t bulkOutSlots() const noexcept override {
        return std::max<std::size_t>(1, options_.bulkOutSlots);
    }

    void submitBulkOut(std::span<const std::uint8_t> chunk) override {
        requireEndpoint();
        std::lock_guard lock(mutex_);
        if (queue_.size() >= bulkOutSlots()) {
            throw Error(Errc::InvalidArgument, name_ + ": bulk OUT queue is full");
        }
        auto transfer = std::make_shared<Queued>();
        transfer->data = chunk;
        queue_.push_back(transfer);
        toDevice_.push_back(std::move(transfer));
        if (!controller_.joinable()) {
            controller_ = std::jthread([this](std::stop_token stop) { feed(std::move(stop)); });
        }
        changed_.notify_all();
    }

    void reapBulkOut(rpiboot::Milliseconds timeout) override {
        const Deadline deadline = until(timeout);
        std::unique_lock lock(mutex_);
        if (queue_.empty()) {
            throw Error(Errc::InvalidArgument, name_ + ": no queued bulk OUT transfer");
        }
        const auto head = queue_.front();
        const auto finished = [&] { return head->finished; };
        if (deadline == Deadline::max()) {
            changed_.wait(lock, finished);
        } else if (!changed_.wait_until(lock, deadline, finished)) {
            // The per-transfer timeout: stop everything still queued (the
            // device keeps what it took) and name what this one had accepted.
            cancelLocked(lock);
            throw Error(Errc::Timeout,
                        name_ + ": bulk OUT of " + std::to_string(head->data.size()) + " bytes (" +
                            std::to_string(head->result.length) + " accepted) timed out");
        }
        queue_.pop_front();
        const auto completeAt = head->completeAt;
        lock.unlock();
        std::this_thread::sleep_until(completeAt);
        checkBulk(head->result, head->data.size());
    }

    void cancelBulkOut() noexcept override {
        std::unique_lock lock(mutex_);
        cancelLocked(lock);
    }

  private:
    struct Queued {
        std::span<const std::uint8_t> data;
        bool finished = false;
        TransferResult result;
        Clock::time_point completeAt{};
    };

    // The controller: hands queued transfers to the device one after the
    // other, without waiting for anyone to reap them.
    void feed(std::stop_token stop) {
        std::unique_lock lock(mutex_);
        while (true) {
            changed_.wait(lock, stop, [&] { return !toDevice_.empty(); });
            if (stop.stop_requested()) {
                return;
            }
            const auto transfer = toDevice_.front();
            toDevice_.pop_front();
            const std::stop_token cancel = batch_.get_token();
            feeding_ = true;
            lock.unlock();
            const TransferResult r =
                device_->bulkOut(outEndpoint_, transfer->data, Deadline::max(), cancel);
            lock.lock();
            feeding_ = false;
            transfer->result = r;
            transfer->finished = true;
            transfer->completeAt = Clock::now() + options_.completionLatency;
            changed_.notify_all();
        }
    }

    void cancelLocked(std::unique_lock<std::mutex>& lock) {
        if (queue_.empty()) {
            return;
        }
        for (const auto& t : toDevice_) {
            t->finished = true;
            t->result = {UsbStatus::Cancelled, 0};
        }
        toDevice_.clear();
        batch_.request_stop();
        changed_.wait(lock, [&] { return !feeding_; });
        batch_ = std::stop_source();
        queue_.clear();
    }

    void completionDelay() const {
        if (options_.completionLatency.count() > 0) {
            std::this_thread::sleep_for(options_.completionLatency);
        }
    }

    void requireEndpoint() const {
        if (outEndpoint_ == 0) {
            throw Error(Errc::Io, name_ + ": the device has no vendor bulk OUT endpoint");
        }
    }

    void checkBulk(const TransferResult& r, std::size_t size) const {
        check(r, "bulk OUT of " + std::to_string(size) + " bytes (" + std::to_string(r.length) +
                     " accepted)");
        if (r.length != size) {
            throw Error(Errc::Io, name_ + ": bulk OUT accepted " + std::to_string(r.length) +
                                      " of " + std::to_string(size) + " bytes");
        }
    }

    void check(const TransferResult& r, const std::string& what) const {
        switch (r.status) {
            case UsbStatus::Ok:
                return;
            case UsbStatus::Disconnected:
                throw Error(Errc::DeviceGone,
                            name_ + ": " + what + " failed: the device left the bus");
            case UsbStatus::Stall:
                throw Error(Errc::Stall, name_ + ": " + what + " failed: the device stalled");
            case UsbStatus::Timeout:
                throw Error(Errc::Timeout, name_ + ": " + what + " timed out");
            case UsbStatus::Cancelled:
                throw Error(Errc::Io, name_ + ": " + what + " was cancelled");
        }
    }

    std::shared_ptr<UsbDevice> device_;
    std::string name_;
    FakeTransportOptions options_;
    std::uint8_t outEndpoint_ = 0;

    std::mutex mutex_;
    std::condition_variable_any changed_;
    std::deque<std::shared_ptr<Queued>> queue_;     // submitted, not yet reaped
    std::deque<std::shared_ptr<Queued>> toDevice_;  // submitted, not yet fed
    std::stop_source batch_;                        // cancels the transfer being fed
    bool feeding_ = false;
    std::jthread controller_;  // last: stopped and joined first
};

}  // namespace

std::unique_ptr<rpiboot::Transport> makeFakeTransport(std::shared_ptr<UsbDevice> device,
                                                      std::string name,
                                                      FakeTransportOptions options) {
    if (!device) {
        throw Error(Errc::DeviceGone, (name.empty() ? std::string("virtual device") : name) +
                                          ": the device is not on the bus");
    }
    return std::make_unique<FakeTransport>(std::move(device), std::move(name), options);
}

}  // namespace virtualpi
