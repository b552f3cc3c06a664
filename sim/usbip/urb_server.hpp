// Serves one enumeration of a virtual board (a virtualpi::UsbDevice) to
// vhci-hcd over one connected stream socket: reads USBIP_CMD_SUBMIT and
// USBIP_CMD_UNLINK, answers with USBIP_RET_SUBMIT / USBIP_RET_UNLINK.
//
// GET_DESCRIPTOR is answered from the descriptor bytes; every other request
// and all bulk traffic go to the board. Each endpoint has its own worker, so
// a control IN the board holds (the second stage waiting before it posts a
// request) stays pending without holding up bulk data or descriptor reads;
// URBs of one endpoint complete in order. An unlinked URB is cancelled in
// the board and answered only by RET_UNLINK (-ECONNRESET); a URB that already
// completed gets RET_UNLINK with status 0, after its RET_SUBMIT. It never
// answers a URB twice and never decides anything about the boot protocol.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "socket_pair.hpp"
#include "virtualpi/usb_device.hpp"
#include "wire.hpp"

namespace usbip {

struct UrbCounters {
    std::uint64_t submitted = 0;
    std::uint64_t answered = 0;
    std::uint64_t unlinkedPending = 0;  // RET_UNLINK -ECONNRESET
    std::uint64_t unlinkedLate = 0;     // RET_UNLINK 0: already answered
    std::uint64_t bulkOutBytes = 0;
    std::uint64_t controlRequests = 0;
    // Reply time of every second-stage file request, in microseconds (CLOCK_MONOTONIC):
    // from the RET_SUBMIT that hands the kernel a 260-byte vendor IN (the board's request)
    // to the CMD_SUBMIT of the next vendor control OUT (the host's reply: a size, or the
    // length-0 ack of a metadata request). Requests the host never answers are not counted.
    std::vector<std::uint32_t> replyMicros;
};

struct UrbServerOptions {
    std::string name;  // for messages: "board 3 (2711 at 1-1), enumeration 2"
    // Notable events (protocol errors, peer gone) and, with `trace`, every URB.
    std::function<void(const std::string&)> log;
    bool trace = false;
    // Called once, on the reader thread, when the kernel closed the
    // connection or sent something unreadable. Must not call stop().
    std::function<void()> onPeerClosed;
};

class UrbServer {
  public:
    // Starts serving at once on its own threads.
    UrbServer(UniqueFd socket, std::shared_ptr<virtualpi::UsbDevice> device,
              UrbServerOptions options);
    ~UrbServer();
    UrbServer(const UrbServer&) = delete;
    UrbServer& operator=(const UrbServer&) = delete;

    // Cancels every pending URB without answering it, shuts the socket down
    // and joins the threads. Idempotent; not from an onPeerClosed callback.
    void stop();
    // Waits until every URB taken so far has been answered and, on a socket
    // pair, the kernel has read every answer; false on timeout. Used when a
    // board leaves the bus: on a real bus the host has completed a transfer
    // the device acknowledged before it sees the disconnect, so the last
    // answers must reach vhci-hcd before the port is detached.
    bool drain(std::chrono::milliseconds timeout);
    bool peerClosed() const;
    // Waits until the kernel has closed the connection (after a detach);
    // false on timeout or when stop() came first.
    bool waitForPeerClose(std::chrono::milliseconds timeout);
    // The caller is about to detach the port: the kernel closing the
    // connection is then expected, not news (no log, no onPeerClosed).
    void expectPeerClose();
    UrbCounters counters() const;
    const std::shared_ptr<virtualpi::UsbDevice>& device() const noexcept { return device_; }

  private:
    struct Urb;
    struct Worker {
        std::deque<std::shared_ptr<Urb>> queue;
        std::condition_variable wake;
        std::thread thread;
    };

    void readLoop();
    void submit(const CmdSubmit& cmd, std::vector<std::uint8_t> outData);
    void answerStandard(const CmdSubmit& cmd, const virtualpi::SetupPacket& setup,
                        std::vector<std::uint8_t> outData);
    void unlink(const CmdUnlink& cmd);
    void workerLoop(std::uint8_t endpoint);
    virtualpi::TransferResult execute(Urb& urb);
    void complete(Urb& urb, const virtualpi::TransferResult& result);
    // Writes one answer (header + IN data); false when the socket is gone.
    bool send(const HeaderBytes& header, std::span<const std::uint8_t> data);
    void note(const std::string& message) const;
    void trace(const std::string& message) const;
    void closeFromPeer(const std::string& why);

    UniqueFd socket_;
    std::shared_ptr<virtualpi::UsbDevice> device_;
    UrbServerOptions options_;

    mutable std::mutex mutex_;  // guards everything below but writing
    bool stopping_ = false;
    bool peerClosed_ = false;
    bool closeExpected_ = false;
    std::map<std::uint32_t, std::shared_ptr<Urb>> pending_;    // by seqnum
    std::condition_variable idle_;                             // pending_ became empty
    std::map<std::uint8_t, std::unique_ptr<Worker>> workers_;  // by endpoint address
    UrbCounters counters_;
    // When the last 260-byte vendor IN (a board's request) went to the kernel, until
    // the host's reply to it arrives.
    std::optional<std::chrono::steady_clock::time_point> requestPosted_;

    std::mutex writeMutex_;  // one answer at a time, and claim-then-send order
    std::mutex stopMutex_;
    bool stopped_ = false;
    std::thread reader_;
};

}  // namespace usbip
