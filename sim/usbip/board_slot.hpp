// One virtual board plugged into one vhci-hcd root-hub port for its whole
// life: every time the board enumerates (ROM, second stage, final identity)
// the slot attaches a fresh USB/IP connection to the same port, and every
// time it leaves the bus the slot detaches the port, so the kernel sees the
// disconnects and re-enumerations of a real board at a stable port path.
//
// Attach and detach run on the slot's own thread, in the order the board
// produced them; the board's listener only queues. It never drives the boot
// protocol (the kernel's host does) and never judges the board's outcome.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "urb_server.hpp"
#include "vhci.hpp"
#include "virtualpi/sim_board.hpp"

namespace usbip {

struct SlotOptions {
    unsigned index = 0;
    std::string label;  // "board 2 (msd-2711, serial 7e570003)"
    unsigned port = 0;  // vhci-hcd port
    std::string portPath;
    bool tcp = false;  // loopback TCP instead of a socket pair
    bool trace = false;
    std::chrono::milliseconds portFreeTimeout{10000};
    std::function<void(const std::string&)> log;
    // Called once on the slot's watcher thread when the board's outcome is
    // no longer Running.
    std::function<void(unsigned index)> onOutcome;
    // Backing files of the board's disks (virtualpi::BoardOptions::disks).
    std::vector<virtualpi::DiskAttachment> disks;
};

struct SlotStats {
    unsigned attached = 0;              // enumerations handed to the kernel
    UrbCounters urbs;                   // summed over every enumeration
    std::vector<std::string> problems;  // attach failures, dropped connections
};

class BoardSlot {
  public:
    BoardSlot(const Vhci& vhci, virtualpi::Scenario scenario, SlotOptions options);
    ~BoardSlot();
    BoardSlot(const BoardSlot&) = delete;
    BoardSlot& operator=(const BoardSlot&) = delete;

    // Powers the board on; its first enumeration is attached at once.
    void start();
    // Powers the board off (a Running outcome becomes Failed), detaches its
    // port, stops the threads. Idempotent.
    void powerOff();

    const virtualpi::SimBoard& board() const { return *board_; }
    const SlotOptions& options() const noexcept { return options_; }
    SlotStats stats() const;

  private:
    enum class EventKind { Attached, Detached, PeerClosed, Quit };
    struct Event {
        EventKind kind = EventKind::Quit;
        std::shared_ptr<virtualpi::UsbDevice> device;
        std::uint64_t enumeration = 0;
    };

    void post(Event event);
    void run();
    void attach(const std::shared_ptr<virtualpi::UsbDevice>& device);
    void detach();
    // Stops the current server and adds its counters to the stats.
    UrbCounters retireServer();
    void watchOutcome();
    void problem(const std::string& message);
    void log(const std::string& message) const;

    const Vhci& vhci_;
    SlotOptions options_;
    std::unique_ptr<virtualpi::SimBoard> board_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Event> events_;
    bool quitting_ = false;
    SlotStats stats_;

    // Owned by the slot thread.
    std::unique_ptr<UrbServer> server_;
    std::uint64_t serverEnumeration_ = 0;

    std::mutex powerMutex_;
    bool poweredOff_ = false;
    std::thread thread_;
    std::thread watcher_;
};

}  // namespace usbip
