// Link's pipelined bulk OUT writer through the fake transport: several
// transfers queued at once, completions in order, the same bytes and chunks
// on the wire as one at a time, and what happens when the device stalls,
// leaves the bus or stops reading in the middle of a file.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/link.hpp"
#include "virtualpi/descriptors.hpp"
#include "virtualpi/fake_transport.hpp"

namespace {

using namespace std::chrono_literals;
using rpiboot::Errc;
using rpiboot::Error;
using rpiboot::kBulkChunkSize;
using rpiboot::Link;
using rpiboot::TransferTimeouts;
using virtualpi::Clock;
using virtualpi::Deadline;
using virtualpi::TransferResult;
using virtualpi::UsbStatus;

std::vector<std::uint8_t> pattern(std::size_t size) {
    std::vector<std::uint8_t> b(size);
    for (std::size_t i = 0; i < size; ++i) {
        b[i] = static_cast<std::uint8_t>(i * 7 + (i >> 11));
    }
    return b;
}

// A bulk OUT endpoint the test steers: it records every byte and every
// transfer, can hold transfers until released (a NAKing device), stall or
// stop reading after a given number of bytes, take its time per transfer, or
// leave the bus.
class TestDevice final : public virtualpi::UsbDevice {
  public:
    TestDevice() : descriptors_(virtualpi::romDescriptors(rpiboot::Chip::Bcm2711, "af04b2da")) {}

    const virtualpi::DescriptorSet& descriptors() const noexcept override { return descriptors_; }
    virtualpi::Stage stage() const noexcept override { return virtualpi::Stage::Rom; }
    std::uint64_t enumeration() const noexcept override { return 1; }
    bool attached() const noexcept override { return !gone_; }

    TransferResult control(const virtualpi::SetupPacket& setup, std::span<std::uint8_t>, Deadline,
                           std::stop_token) override {
        std::lock_guard lock(mutex_);
        if (gone_) {
            return {UsbStatus::Disconnected, 0};
        }
        lengths.push_back(static_cast<std::uint32_t>(setup.value) |
                          (static_cast<std::uint32_t>(setup.index) << 16));
        return {UsbStatus::Ok, 0};
    }

    TransferResult bulkOut(std::uint8_t, std::span<const std::uint8_t> data, Deadline deadline,
                           std::stop_token cancel) override {
        std::unique_lock lock(mutex_);
        ++started_;
        changed_.notify_all();
        // Held (NAKed) until released, cancelled, timed out or unplugged; a
        // silent device never releases past `silenceAfter`.
        const auto released = [&] { return gone_ || (open_ && received.size() < silenceAfter); };
        const bool ok = deadline == Deadline::max()
                            ? changed_.wait(lock, cancel, released)
                            : changed_.wait_until(lock, cancel, deadline, released);
        if (gone_) {
            return {UsbStatus::Disconnected, 0};
        }
        if (!ok) {
            return {cancel.stop_requested() ? UsbStatus::Cancelled : UsbStatus::Timeout, 0};
        }
        if (stalled_) {
            return {UsbStatus::Stall, 0};
        }
        std::size_t take = data.size();
        if (received.size() + take > stallAfter) {
            take = stallAfter - received.size();
            stalled_ = true;
        }
        received.insert(received.end(), data.begin(), data.begin() + static_cast<long>(take));
        transfers.push_back(data.size());
        if (perTransfer.count() > 0) {
            lock.unlock();
            std::this_thread::sleep_for(perTransfer);
            lock.lock();
        }
        return {stalled_ ? UsbStatus::Stall : UsbStatus::Ok, take};
    }

    TransferResult bulkIn(std::uint8_t, std::span<std::uint8_t>, Deadline,
                          std::stop_token) override {
        return {UsbStatus::Stall, 0};
    }

    void hold() {
        std::lock_guard lock(mutex_);
        open_ = false;
    }
    void release() {
        std::lock_guard lock(mutex_);
        open_ = true;
        changed_.notify_all();
    }
    void unplug() {
        std::lock_guard lock(mutex_);
        gone_ = true;
        changed_.notify_all();
    }
    // Waits until `n` transfers reached the device (true) or 5 s passed.
    bool waitStarted(std::size_t n) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, 5s, [&] { return started_ >= n; });
    }
    std::size_t started() {
        std::lock_guard lock(mutex_);
        return started_;
    }

    // Set before the transfer starts.
    std::size_t stallAfter = SIZE_MAX;
    std::size_t silenceAfter = SIZE_MAX;
    std::chrono::milliseconds perTransfer{0};

    std::vector<std::uint32_t> lengths;
    std::vector<std::uint8_t> received;
    std::vector<std::size_t> transfers;  // size of every transfer the device took

  private:
    virtualpi::DescriptorSet descriptors_;
    std::mutex mutex_;
    std::condition_variable_any changed_;
    bool open_ = true;
    bool gone_ = false;
    bool stalled_ = false;
    std::size_t started_ = 0;
};

// Wraps the fake transport and counts what the Link asks of it.
class CountingTransport final : public rpiboot::Transport {
  public:
    explicit CountingTransport(std::unique_ptr<rpiboot::Transport> inner)
        : inner_(std::move(inner)) {}

    void controlOutLength(std::uint32_t length, rpiboot::Milliseconds timeout) override {
        inner_->controlOutLength(length, timeout);
    }
    std::size_t controlIn(std::span<std::uint8_t> buffer, rpiboot::Milliseconds timeout) override {
        return inner_->controlIn(buffer, timeout);
    }
    void bulkOut(std::span<const std::uint8_t> chunk, rpiboot::Milliseconds timeout) override {
        ++blocking;
        inner_->bulkOut(chunk, timeout);
    }
    std::size_t bulkOutSlots() const noexcept override { return inner_->bulkOutSlots(); }
    void submitBulkOut(std::span<const std::uint8_t> chunk) override {
        inner_->submitBulkOut(chunk);
        const int now = ++queued;
        int seen = maxQueued.load();
        while (now > seen && !maxQueued.compare_exchange_weak(seen, now)) {
        }
        ++submitted;
    }
    void reapBulkOut(rpiboot::Milliseconds timeout) override {
        try {
            inner_->reapBulkOut(timeout);
        } catch (...) {
            --queued;
            throw;
        }
        --queued;
        ++reaped;
    }
    void cancelBulkOut() noexcept override {
        cancelledWith = queued.load();
        ++cancels;
        inner_->cancelBulkOut();
        queued = 0;
    }

    rpiboot::Transport& inner() { return *inner_; }

    std::atomic<int> blocking{0};
    std::atomic<int> submitted{0};
    std::atomic<int> reaped{0};
    std::atomic<int> queued{0};
    std::atomic<int> maxQueued{0};
    std::atomic<int> cancels{0};
    std::atomic<int> cancelledWith{-1};

  private:
    std::unique_ptr<rpiboot::Transport> inner_;
};

class Progress final : public rpiboot::BootObserver {
  public:
    void onTransferProgress(std::uint64_t sent, std::uint64_t of) override {
        std::lock_guard lock(mutex);
        seen.push_back(sent);
        total = of;
    }
    std::mutex mutex;
    std::vector<std::uint64_t> seen;
    std::uint64_t total = 0;
};

struct Rig {
    explicit Rig(std::size_t inFlight, TransferTimeouts timeouts = {})
        : device(std::make_shared<TestDevice>()),
          transport(virtualpi::makeFakeTransport(device, "test board")),
          link(transport, timeouts, inFlight) {}
    std::shared_ptr<TestDevice> device;
    CountingTransport transport;
    Link link;
};

std::string messageOf(const std::function<void()>& fn, Errc* code = nullptr) {
    try {
        fn();
    } catch (const Error& e) {
        if (code != nullptr) {
            *code = e.code();
        }
        return e.what();
    }
    return "(no error)";
}

TEST(PipelinedLink, KeepsSeveralTransfersQueuedWhileTheDeviceHoldsTheFirst) {
    Rig rig(4);
    const auto data = pattern(10 * kBulkChunkSize);
    rig.device->hold();
    auto writing = std::async(std::launch::async, [&] { rig.link.write(data); });
    ASSERT_TRUE(rig.device->waitStarted(1));
    // Nothing completed, yet four transfers are queued on the endpoint.
    for (int i = 0; i < 500 && rig.transport.submitted < 4; ++i) {
        std::this_thread::sleep_for(1ms);
    }
    EXPECT_EQ(rig.transport.submitted, 4);
    EXPECT_EQ(rig.transport.reaped, 0);
    rig.device->release();
    writing.get();
    EXPECT_EQ(rig.transport.maxQueued, 4);
    EXPECT_EQ(rig.transport.blocking, 0);
    EXPECT_EQ(rig.transport.reaped, 10);
    EXPECT_EQ(rig.device->received, data);
}

TEST(PipelinedLink, OneInFlightSendsEveryChunkWithABlockingTransfer) {
    Rig rig(1);
    const auto data = pattern(3 * kBulkChunkSize + 5);
    rig.link.write(data);
    EXPECT_EQ(rig.transport.blocking, 4);
    EXPECT_EQ(rig.transport.submitted, 0);
    EXPECT_EQ(rig.device->received, data);
}

TEST(PipelinedLink, SameBytesAndTransfersOnTheWireAtEveryDepth) {
    const auto data = pattern(7 * kBulkChunkSize + 1234);
    std::vector<std::size_t> reference;
    for (std::size_t depth : {1, 2, 4, 16}) {
        Rig rig(depth);
        rig.link.write(data);
        EXPECT_EQ(rig.device->lengths, std::vector<std::uint32_t>{7 * kBulkChunkSize + 1234})
            << depth;
        EXPECT_EQ(rig.device->received, data) << depth;
        if (reference.empty()) {
            reference = rig.device->transfers;
            ASSERT_EQ(reference.size(), 8u);
            EXPECT_EQ(reference.back(), 1234u);
        }
        EXPECT_EQ(rig.device->transfers, reference) << depth;
    }
}

TEST(PipelinedLink, ReportsProgressOncePerCompletedChunkInOrder) {
    Rig rig(8);
    const auto data = pattern(5 * kBulkChunkSize + 100);
    Progress progress;
    rig.link.write(data, &progress);
    const std::vector<std::uint64_t> expected{kBulkChunkSize,     2 * kBulkChunkSize,
                                              3 * kBulkChunkSize, 4 * kBulkChunkSize,
                                              5 * kBulkChunkSize, 5 * kBulkChunkSize + 100};
    EXPECT_EQ(progress.seen, expected);
    EXPECT_EQ(progress.total, data.size());
}

TEST(PipelinedLink, AStallInTheMiddleNamesTheAcceptedBytesAndCancelsTheRest) {
    Rig rig(4);
    const auto data = pattern(10 * kBulkChunkSize);
    rig.device->stallAfter = 2 * kBulkChunkSize + 7232;
    Errc code{};
    const std::string what = messageOf([&] { rig.link.write(data); }, &code);
    EXPECT_EQ(code, Errc::Stall) << what;
    EXPECT_NE(what.find("bulk OUT of 16384 bytes (7232 accepted)"), std::string::npos) << what;
    EXPECT_NE(what.find("stalled"), std::string::npos) << what;
    EXPECT_EQ(rig.transport.cancels, 1);
    EXPECT_GT(rig.transport.cancelledWith, 0);
    EXPECT_EQ(rig.transport.reaped, 2);
    EXPECT_EQ(rig.device->received.size(), 2 * kBulkChunkSize + 7232);
    // Nothing is left queued: there is nothing to wait for.
    const std::string after = messageOf([&] { rig.transport.inner().reapBulkOut(100ms); }, &code);
    EXPECT_EQ(code, Errc::InvalidArgument) << after;
    EXPECT_NE(after.find("no queued bulk OUT transfer"), std::string::npos) << after;
}

TEST(PipelinedLink, UnplugWhileTransfersAreQueuedFailsAsDeviceGone) {
    Rig rig(4);
    const auto data = pattern(10 * kBulkChunkSize);
    rig.device->hold();
    auto writing = std::async(std::launch::async, [&] {
        Errc code{};
        const std::string what = messageOf([&] { rig.link.write(data); }, &code);
        return std::make_pair(code, what);
    });
    ASSERT_TRUE(rig.device->waitStarted(1));
    rig.device->unplug();
    const auto [code, what] = writing.get();
    EXPECT_EQ(code, Errc::DeviceGone) << what;
    EXPECT_NE(what.find("left the bus"), std::string::npos) << what;
    EXPECT_NE(what.find("(0 accepted)"), std::string::npos) << what;
    EXPECT_EQ(rig.transport.cancels, 1);
    EXPECT_TRUE(rig.device->received.empty());
}

TEST(PipelinedLink, ABoardThatStopsReadingTimesOutAfterOneChunkTimeout) {
    TransferTimeouts timeouts;
    timeouts.bulkChunk = 300ms;
    Rig rig(4, timeouts);
    const auto data = pattern(10 * kBulkChunkSize);
    rig.device->silenceAfter = 3 * kBulkChunkSize;
    Errc code{};
    const std::string what = messageOf([&] { rig.link.write(data); }, &code);
    EXPECT_EQ(code, Errc::Timeout) << what;
    EXPECT_NE(what.find("bulk OUT of 16384 bytes (0 accepted) timed out"), std::string::npos)
        << what;
    EXPECT_EQ(rig.transport.reaped, 3);
    EXPECT_EQ(rig.transport.cancels, 1);
    EXPECT_EQ(rig.device->received.size(), 3 * kBulkChunkSize);
    // The transfers still queued were withdrawn from the device: none is
    // taken later.
    const std::size_t started = rig.device->started();
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(rig.device->started(), started);
}

// The timeout runs per chunk, from the completion of the one before, not
// from submission: 8 queued chunks of 100 ms each finish under a 400 ms
// chunk timeout although the last one waits 800 ms in the queue.
TEST(PipelinedLink, TheTimeoutCountsFromThePreviousCompletionNotFromSubmission) {
    TransferTimeouts timeouts;
    timeouts.bulkChunk = 400ms;
    Rig rig(8, timeouts);
    rig.device->perTransfer = 100ms;
    const auto data = pattern(8 * kBulkChunkSize);
    EXPECT_NO_THROW(rig.link.write(data));
    EXPECT_EQ(rig.device->received, data);
    EXPECT_EQ(rig.transport.maxQueued, 8);
}

TEST(PipelinedLink, ATransportWithoutAQueueIsUsedOneTransferAtATime) {
    auto device = std::make_shared<TestDevice>();
    virtualpi::FakeTransportOptions options;
    options.bulkOutSlots = 1;
    CountingTransport transport(virtualpi::makeFakeTransport(device, "test board", options));
    Link link(transport, {}, 8);
    EXPECT_EQ(link.transfersInFlight(), 1u);
    const auto data = pattern(3 * kBulkChunkSize);
    link.write(data);
    EXPECT_EQ(transport.blocking, 3);
    EXPECT_EQ(device->received, data);
}

}  // namespace
