#include "urb_server.hpp"

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <stop_token>

#include "standard_requests.hpp"

namespace usbip {
namespace {

using virtualpi::SetupPacket;
using virtualpi::TransferResult;
using virtualpi::UsbStatus;

// A second-stage request: LE command + 256-byte name (docs/protocol.md).
constexpr std::size_t kFileRequestLength = 260;

bool isVendorRequest(const SetupPacket& setup) noexcept {
    return (setup.requestType & 0x60) == 0x40;
}

// Larger transfers than this are not a boot protocol transfer: the
// connection is considered broken (usbfs itself caps URBs far lower).
constexpr std::uint32_t kMaxTransferLength = 64U * 1024 * 1024;
// ISO packet descriptors are 16 bytes each; no virtual board has ISO
// endpoints, so any are read, discarded and the URB refused.
constexpr std::size_t kIsoDescriptorSize = 16;
constexpr std::uint32_t kMaxIsoPackets = 1024;
constexpr std::uint32_t kNoIsoPackets = 0xffffffff;
// Standard requests other than GET_DESCRIPTOR are answered by the board at
// once; the deadline only guards the reader thread against a board bug.
constexpr virtualpi::Milliseconds kStandardRequestDeadline{1000};

std::int32_t statusCode(UsbStatus status) {
    switch (status) {
        case UsbStatus::Ok:
            return kStatusOk;
        case UsbStatus::Stall:
            return kStatusStall;
        case UsbStatus::Timeout:
            return kStatusTimedOut;
        case UsbStatus::Disconnected:
        case UsbStatus::Cancelled:
            return kStatusNoDevice;
    }
    return kStatusNoDevice;
}

bool readExact(int fd, std::span<std::uint8_t> buffer) {
    std::size_t done = 0;
    while (done < buffer.size()) {
        const ssize_t n = ::read(fd, buffer.data() + done, buffer.size() - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n == 0 || errno != EINTR) {
            return false;
        }
    }
    return true;
}

std::string hex(std::uint32_t value, int digits) {
    char text[16];
    std::snprintf(text, sizeof text, "%0*x", digits, value);
    return text;
}

std::string describe(const CmdSubmit& c) {
    std::string s = "seq " + std::to_string(c.seqnum) + " ep " +
                    hex(c.endpointAddress() | (c.endpoint == 0 && c.isIn() ? 0x80 : 0), 2) +
                    (c.isIn() ? " IN " : " OUT ") + std::to_string(c.transferBufferLength);
    if (c.endpoint == 0) {
        s += " setup";
        for (std::uint8_t b : c.setup) {
            s += ' ';  // not `" " + hex(...)`: GCC 12 -O3 warns -Wrestrict (GCC bug 105329)
            s += hex(b, 2);
        }
    }
    return s;
}

}  // namespace

struct UrbServer::Urb {
    CmdSubmit cmd;
    SetupPacket setup;
    std::uint8_t endpoint = 0;       // address with the direction bit; 0 for control
    std::vector<std::uint8_t> data;  // OUT payload, or the IN buffer
    std::stop_source cancel;
};

UrbServer::UrbServer(UniqueFd socket, std::shared_ptr<virtualpi::UsbDevice> device,
                     UrbServerOptions options)
    : socket_(std::move(socket)), device_(std::move(device)), options_(std::move(options)) {
    reader_ = std::thread([this] { readLoop(); });
}

UrbServer::~UrbServer() {
    stop();
}

void UrbServer::stop() {
    std::lock_guard stopLock(stopMutex_);
    if (stopped_) {
        return;
    }
    stopped_ = true;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        for (auto& [seq, urb] : pending_) {
            urb->cancel.request_stop();
        }
        pending_.clear();
        idle_.notify_all();
        for (auto& [ep, worker] : workers_) {
            worker->wake.notify_all();
        }
    }
    ::shutdown(socket_.get(), SHUT_RDWR);
    if (reader_.joinable()) {
        reader_.join();
    }
    // The reader has stopped: no new workers can appear.
    for (auto& [ep, worker] : workers_) {
        if (worker->thread.joinable()) {
            worker->thread.join();
        }
    }
    socket_.reset();
}

bool UrbServer::drain(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    {
        std::unique_lock lock(mutex_);
        if (!idle_.wait_until(lock, until, [&] { return pending_.empty() || stopping_; })) {
            return false;
        }
        if (stopping_) {
            return true;
        }
    }
    // Every answer is written; wait until the kernel has read them. On an
    // AF_UNIX socket SIOCOUTQ counts what the peer has not consumed yet. The
    // kernel's receive thread reads at once, so this rarely waits at all.
    std::lock_guard wl(writeMutex_);
    auto pause = std::chrono::microseconds(100);
    for (;;) {
        int unread = 0;
        if (::ioctl(socket_.get(), SIOCOUTQ, &unread) != 0 || unread <= 0) {
            return true;
        }
        if (std::chrono::steady_clock::now() >= until) {
            return false;
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
}

bool UrbServer::waitForPeerClose(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    idle_.wait_for(lock, timeout, [&] { return stopping_; });
    return peerClosed_;
}

void UrbServer::expectPeerClose() {
    std::lock_guard lock(mutex_);
    closeExpected_ = true;
}

bool UrbServer::peerClosed() const {
    std::lock_guard lock(mutex_);
    return peerClosed_;
}

UrbCounters UrbServer::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

void UrbServer::note(const std::string& message) const {
    if (options_.log) {
        options_.log(options_.name + ": " + message);
    }
}

void UrbServer::trace(const std::string& message) const {
    if (options_.trace) {
        note(message);
    }
}

void UrbServer::closeFromPeer(const std::string& why) {
    bool expected = false;
    {
        std::lock_guard lock(mutex_);
        expected = closeExpected_;
        if (stopping_) {
            return;  // our own stop(): not news
        }
        stopping_ = true;
        peerClosed_ = true;
        for (auto& [seq, urb] : pending_) {
            urb->cancel.request_stop();
        }
        pending_.clear();
        idle_.notify_all();
        for (auto& [ep, worker] : workers_) {
            worker->wake.notify_all();
        }
    }
    if (expected) {
        return;
    }
    note(why);
    if (options_.onPeerClosed) {
        options_.onPeerClosed();
    }
}

void UrbServer::readLoop() {
    for (;;) {
        HeaderBytes header;
        if (!readExact(socket_.get(), header)) {
            closeFromPeer("the kernel closed the USB/IP connection");
            return;
        }
        const auto command = decodeCommand(header);
        if (!command) {
            closeFromPeer("the kernel sent an unknown USB/IP command 0x" +
                          hex((std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
                                  (std::uint32_t{header[2]} << 8) | header[3],
                              8) +
                          "; dropping the connection");
            return;
        }
        if (command->unlink) {
            unlink(*command->unlink);
            continue;
        }
        const CmdSubmit& cmd = *command->submit;
        if (cmd.transferBufferLength > kMaxTransferLength) {
            closeFromPeer("the kernel announced a " + std::to_string(cmd.transferBufferLength) +
                          "-byte transfer; dropping the connection");
            return;
        }
        std::vector<std::uint8_t> out(cmd.outDataLength());
        if (!readExact(socket_.get(), out)) {
            closeFromPeer("the USB/IP connection ended inside an OUT transfer");
            return;
        }
        if (cmd.numberOfPackets != 0 && cmd.numberOfPackets != kNoIsoPackets) {
            if (cmd.numberOfPackets > kMaxIsoPackets) {
                closeFromPeer("the kernel announced " + std::to_string(cmd.numberOfPackets) +
                              " ISO packets; dropping the connection");
                return;
            }
            std::vector<std::uint8_t> iso(cmd.numberOfPackets * kIsoDescriptorSize);
            if (!readExact(socket_.get(), iso)) {
                closeFromPeer("the USB/IP connection ended inside ISO descriptors");
                return;
            }
            note("refused an ISO transfer (" + describe(cmd) + ")");
            std::lock_guard wl(writeMutex_);
            send(encodeRetSubmit({cmd.seqnum, kStatusBadRequest, 0}), {});
            continue;
        }
        submit(cmd, std::move(out));
    }
}

void UrbServer::submit(const CmdSubmit& cmd, std::vector<std::uint8_t> outData) {
    trace("submit " + describe(cmd));
    const SetupPacket setup = SetupPacket::fromBytes(std::span<const std::uint8_t, 8>(cmd.setup));
    const bool control = (cmd.endpoint & 0x0f) == 0;
    {
        std::lock_guard lock(mutex_);
        ++counters_.submitted;
        if (control) {
            ++counters_.controlRequests;
            if (isVendorRequest(setup) && !setup.isIn() && requestPosted_) {
                const auto waited = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - *requestPosted_);
                counters_.replyMicros.push_back(static_cast<std::uint32_t>(waited.count()));
                requestPosted_.reset();
            }
        }
    }
    if (control && isStandardRequest(setup)) {
        answerStandard(cmd, setup, std::move(outData));
        return;
    }
    auto urb = std::make_shared<Urb>();
    urb->cmd = cmd;
    urb->setup = setup;
    urb->endpoint = control ? 0 : cmd.endpointAddress();
    if (cmd.isIn()) {
        // A control IN's buffer holds wLength bytes (what the device may
        // answer); the URB's own buffer caps what goes back.
        urb->data.resize(control ? setup.length : cmd.transferBufferLength);
    } else {
        urb->data = std::move(outData);
    }
    std::lock_guard lock(mutex_);
    if (stopping_) {
        return;
    }
    pending_[cmd.seqnum] = urb;
    auto& worker = workers_[urb->endpoint];
    if (!worker) {
        worker = std::make_unique<Worker>();
        const std::uint8_t ep = urb->endpoint;
        worker->thread = std::thread([this, ep] { workerLoop(ep); });
    }
    worker->queue.push_back(std::move(urb));
    worker->wake.notify_one();
}

void UrbServer::answerStandard(const CmdSubmit& cmd, const SetupPacket& setup,
                               std::vector<std::uint8_t> outData) {
    std::int32_t status = kStatusOk;
    std::vector<std::uint8_t> in;
    if (auto answer = answerGetDescriptor(device_->descriptors(), setup)) {
        status = answer->stall ? kStatusStall : kStatusOk;
        in = std::move(answer->data);
    } else if (setup.request == kRequestSetAddress) {
        // vhci-hcd answers SET_ADDRESS itself; one reaching us is harmless.
    } else {
        // State-changing and state-reading requests: the board's own
        // answer keeps its configuration and halt state authoritative.
        std::vector<std::uint8_t> buffer =
            setup.isIn() ? std::vector<std::uint8_t>(setup.length) : std::move(outData);
        const TransferResult r =
            device_->control(setup, buffer, virtualpi::deadlineAfter(kStandardRequestDeadline));
        status = statusCode(r.status);
        if (setup.isIn()) {
            buffer.resize(r.length);
            in = std::move(buffer);
        }
    }
    if (cmd.isIn() && in.size() > cmd.transferBufferLength) {
        in.resize(cmd.transferBufferLength);
    }
    const auto actual = static_cast<std::uint32_t>(cmd.isIn() ? in.size() : 0);
    trace("answer seq " + std::to_string(cmd.seqnum) + " status " + std::to_string(status) +
          " length " + std::to_string(actual));
    std::lock_guard wl(writeMutex_);
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            return;
        }
        ++counters_.answered;
    }
    send(encodeRetSubmit({cmd.seqnum, status, actual}), in);
}

void UrbServer::unlink(const CmdUnlink& cmd) {
    // Claim-then-send under the write lock: if a worker answered the URB
    // first, its RET_SUBMIT is already on the wire before this RET_UNLINK;
    // if we claim it, the worker will not answer it at all (vhci-hcd drops
    // the connection on a RET_SUBMIT for a URB it already gave back).
    std::lock_guard wl(writeMutex_);
    std::int32_t status = kStatusOk;
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            return;
        }
        const auto it = pending_.find(cmd.unlinkSeqnum);
        if (it != pending_.end()) {
            it->second->cancel.request_stop();
            pending_.erase(it);
            if (pending_.empty()) {
                idle_.notify_all();
            }
            status = kStatusUnlinked;
            ++counters_.unlinkedPending;
        } else {
            ++counters_.unlinkedLate;
        }
    }
    trace("unlink seq " + std::to_string(cmd.unlinkSeqnum) +
          (status == kStatusUnlinked ? ": was pending" : ": already answered"));
    send(encodeRetUnlink({cmd.seqnum, status}), {});
}

void UrbServer::workerLoop(std::uint8_t endpoint) {
    std::unique_lock lock(mutex_);
    Worker& worker = *workers_.at(endpoint);
    for (;;) {
        worker.wake.wait(lock, [&] { return stopping_ || !worker.queue.empty(); });
        if (stopping_) {
            return;
        }
        std::shared_ptr<Urb> urb = std::move(worker.queue.front());
        worker.queue.pop_front();
        if (pending_.count(urb->cmd.seqnum) == 0) {
            continue;  // unlinked while queued; RET_UNLINK already said so
        }
        lock.unlock();
        const TransferResult result = execute(*urb);
        complete(*urb, result);
        lock.lock();
    }
}

TransferResult UrbServer::execute(Urb& urb) {
    const auto token = urb.cancel.get_token();
    const auto forever = virtualpi::Deadline::max();
    if (urb.endpoint == 0) {
        return device_->control(urb.setup, urb.data, forever, token);
    }
    if ((urb.endpoint & 0x80) != 0) {
        return device_->bulkIn(urb.endpoint, urb.data, forever, token);
    }
    return device_->bulkOut(urb.endpoint, urb.data, forever, token);
}

void UrbServer::complete(Urb& urb, const TransferResult& result) {
    const bool in = urb.cmd.isIn();
    std::size_t actual = result.length;
    if (in) {
        actual = std::min<std::size_t>(actual, urb.cmd.transferBufferLength);
    }
    const std::int32_t status = statusCode(result.status);
    std::lock_guard wl(writeMutex_);
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || pending_.erase(urb.cmd.seqnum) == 0) {
            return;  // unlinked or shutting down: nobody waits for this answer
        }
        if (pending_.empty()) {
            idle_.notify_all();
        }
        ++counters_.answered;
        if (!in && urb.endpoint != 0) {
            counters_.bulkOutBytes += result.length;
        }
    }
    trace("answer seq " + std::to_string(urb.cmd.seqnum) + " status " + std::to_string(status) +
          " length " + std::to_string(actual));
    if (in && urb.endpoint == 0 && status == 0 && actual == kFileRequestLength &&
        isVendorRequest(urb.setup)) {
        // Stamped before the answer goes out, so that the host's reply (read by
        // the other thread) always finds it; the send itself takes microseconds.
        std::lock_guard lock(mutex_);
        requestPosted_ = std::chrono::steady_clock::now();
    }
    send(encodeRetSubmit({urb.cmd.seqnum, status, static_cast<std::uint32_t>(actual)}),
         in ? std::span<const std::uint8_t>(urb.data.data(), actual)
            : std::span<const std::uint8_t>());
}

bool UrbServer::send(const HeaderBytes& header, std::span<const std::uint8_t> data) {
    iovec parts[2] = {{const_cast<std::uint8_t*>(header.data()), header.size()},
                      {const_cast<std::uint8_t*>(data.data()), data.size()}};
    std::size_t total = header.size() + data.size();
    std::size_t sent = 0;
    while (sent < total) {
        // Skip what went out already.
        iovec now[2];
        int count = 0;
        std::size_t skip = sent;
        for (const iovec& part : parts) {
            if (skip >= part.iov_len) {
                skip -= part.iov_len;
                continue;
            }
            now[count++] = {static_cast<std::uint8_t*>(part.iov_base) + skip, part.iov_len - skip};
            skip = 0;
        }
        msghdr msg{};
        msg.msg_iov = now;
        msg.msg_iovlen = static_cast<std::size_t>(count);
        const ssize_t n = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;  // the reader sees the end of the connection too
        }
        sent += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace usbip
