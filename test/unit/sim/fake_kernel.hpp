// The kernel's side of a USB/IP connection, for tests: sends CMD_SUBMIT /
// CMD_UNLINK as vhci-hcd does and reads the answers, with a timeout so a
// missing answer fails the test instead of hanging it.
#pragma once

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <vector>

#include "socket_pair.hpp"
#include "virtualpi/usb_device.hpp"
#include "wire.hpp"

namespace rpiboot::test {

// The kernel's side of USB/IP, in the front-end's terms.
using namespace ::usbip;

struct Answer {
    std::uint32_t command = 0;
    std::uint32_t seqnum = 0;
    std::int32_t status = 0;
    std::uint32_t actualLength = 0;
    std::vector<std::uint8_t> data;  // IN data of a RET_SUBMIT
};

class FakeKernel {
  public:
    explicit FakeKernel(UniqueFd socket) : socket_(std::move(socket)) {}

    // Control transfer on endpoint 0; returns the seqnum used.
    std::uint32_t control(const virtualpi::SetupPacket& setup,
                          const std::vector<std::uint8_t>& outData = {}) {
        CmdSubmit c;
        c.seqnum = ++seq_;
        c.direction = setup.isIn() ? kDirectionIn : kDirectionOut;
        c.endpoint = 0;
        c.transferBufferLength =
            setup.isIn() ? setup.length : static_cast<std::uint32_t>(outData.size());
        c.setup = setup.bytes();
        sendSubmit(c, outData);
        return c.seqnum;
    }

    std::uint32_t bulkOut(std::uint8_t endpoint, const std::vector<std::uint8_t>& data) {
        CmdSubmit c;
        c.seqnum = ++seq_;
        c.direction = kDirectionOut;
        c.endpoint = endpoint & 0x0f;
        c.transferBufferLength = static_cast<std::uint32_t>(data.size());
        sendSubmit(c, data);
        return c.seqnum;
    }

    std::uint32_t bulkIn(std::uint8_t endpoint, std::uint32_t length) {
        CmdSubmit c;
        c.seqnum = ++seq_;
        c.direction = kDirectionIn;
        c.endpoint = endpoint & 0x0f;
        c.transferBufferLength = length;
        sendSubmit(c, {});
        return c.seqnum;
    }

    std::uint32_t unlink(std::uint32_t seqnum) {
        CmdUnlink u;
        u.seqnum = ++seq_;
        u.unlinkSeqnum = seqnum;
        writeAll(encodeCmdUnlink(u).data(), kHeaderSize);
        return u.seqnum;
    }

    // The next answer, or nullopt if none arrives within `timeout`.
    std::optional<Answer> next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        HeaderBytes h;
        if (!readAll(h.data(), h.size(), timeout)) {
            return std::nullopt;
        }
        const auto reply = decodeReply(h);
        if (!reply) {
            return std::nullopt;
        }
        Answer a;
        a.command = reply->command;
        if (reply->submit) {
            a.seqnum = reply->submit->seqnum;
            a.status = reply->submit->status;
            a.actualLength = reply->submit->actualLength;
            if (inSeqnums_.count(a.seqnum) != 0 && a.actualLength > 0) {
                a.data.resize(a.actualLength);
                if (!readAll(a.data.data(), a.data.size(), timeout)) {
                    return std::nullopt;
                }
            }
        } else {
            a.seqnum = reply->unlink->seqnum;
            a.status = reply->unlink->status;
        }
        return a;
    }

    // Answers until the one for `seqnum` (others are kept for later).
    std::optional<Answer> answerTo(std::uint32_t seqnum,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        for (auto it = early_.begin(); it != early_.end(); ++it) {
            if (it->seqnum == seqnum) {
                Answer a = *it;
                early_.erase(it);
                return a;
            }
        }
        for (;;) {
            auto a = next(timeout);
            if (!a || a->seqnum == seqnum) {
                return a;
            }
            early_.push_back(*a);
        }
    }

    // True when nothing arrives within `wait`.
    bool silentFor(std::chrono::milliseconds wait) {
        pollfd p{socket_.get(), POLLIN, 0};
        return early_.empty() && ::poll(&p, 1, static_cast<int>(wait.count())) == 0;
    }

    void close() { socket_.reset(); }

  private:
    void sendSubmit(const CmdSubmit& c, const std::vector<std::uint8_t>& data) {
        if (c.isIn()) {
            inSeqnums_.insert(c.seqnum);
        }
        writeAll(encodeCmdSubmit(c).data(), kHeaderSize);
        if (!c.isIn() && !data.empty()) {
            writeAll(data.data(), data.size());
        }
    }

    void writeAll(const std::uint8_t* p, std::size_t n) {
        while (n > 0) {
            const ssize_t w = ::write(socket_.get(), p, n);
            if (w <= 0) {
                return;
            }
            p += w;
            n -= static_cast<std::size_t>(w);
        }
    }

    bool readAll(std::uint8_t* p, std::size_t n, std::chrono::milliseconds timeout) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (n > 0) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            pollfd pfd{socket_.get(), POLLIN, 0};
            if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
                return false;
            }
            const ssize_t r = ::read(socket_.get(), p, n);
            if (r <= 0) {
                return false;
            }
            p += r;
            n -= static_cast<std::size_t>(r);
        }
        return true;
    }

    UniqueFd socket_;
    std::uint32_t seq_ = 0;
    std::set<std::uint32_t> inSeqnums_;
    std::vector<Answer> early_;
};

}  // namespace rpiboot::test
