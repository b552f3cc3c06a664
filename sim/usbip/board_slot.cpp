#include "board_slot.hpp"

#include "rpiboot/core/error.hpp"
#include "wire.hpp"

namespace usbip {
namespace {

// How long a board that left the bus waits for its last answers to reach
// the kernel before the port is detached. With the board gone every URB
// ends at once, so this is only a bound.
constexpr std::chrono::milliseconds kDrainTimeout{2000};

}  // namespace

BoardSlot::BoardSlot(const Vhci& vhci, virtualpi::Scenario scenario, SlotOptions options)
    : vhci_(vhci), options_(std::move(options)) {
    virtualpi::BoardOptions boardOptions;
    boardOptions.portPath = options_.portPath;
    boardOptions.disks = options_.disks;
    boardOptions.listener = [this](const virtualpi::AttachEvent& event) {
        const bool attached = event.kind == virtualpi::AttachEventKind::Attached;
        post({attached ? EventKind::Attached : EventKind::Detached, event.device,
              event.device ? event.device->enumeration() : 0});
    };
    board_ = std::make_unique<virtualpi::SimBoard>(std::move(scenario), std::move(boardOptions));
    thread_ = std::thread([this] { run(); });
}

BoardSlot::~BoardSlot() {
    powerOff();
}

void BoardSlot::start() {
    board_->start();
    watcher_ = std::thread([this] { watchOutcome(); });
}

void BoardSlot::powerOff() {
    std::lock_guard powerLock(powerMutex_);
    if (poweredOff_) {
        return;
    }
    poweredOff_ = true;
    board_->stop();  // queues the last Detached, if the board was on the bus
    post({EventKind::Quit, nullptr, 0});
    if (thread_.joinable()) {
        thread_.join();
    }
    if (watcher_.joinable()) {
        watcher_.join();
    }
}

SlotStats BoardSlot::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

void BoardSlot::post(Event event) {
    std::lock_guard lock(mutex_);
    if (event.kind == EventKind::Quit) {
        quitting_ = true;
    }
    events_.push_back(std::move(event));
    wake_.notify_all();
}

void BoardSlot::log(const std::string& message) const {
    if (options_.log) {
        options_.log(options_.label + ": " + message);
    }
}

void BoardSlot::problem(const std::string& message) {
    log(message);
    std::lock_guard lock(mutex_);
    stats_.problems.push_back(message);
}

void BoardSlot::run() {
    for (;;) {
        Event event;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return !events_.empty(); });
            event = std::move(events_.front());
            events_.pop_front();
        }
        switch (event.kind) {
            case EventKind::Attached:
                detach();  // a board never attaches twice, but stay consistent
                attach(event.device);
                break;
            case EventKind::Detached:
                if (server_ && server_->device() == event.device) {
                    if (!server_->drain(kDrainTimeout)) {
                        log("answers of enumeration " + std::to_string(serverEnumeration_) +
                            " still unread by the kernel after " +
                            std::to_string(kDrainTimeout.count()) + " ms; detaching anyway");
                    }
                    detach();
                }
                break;
            case EventKind::PeerClosed:
                if (server_ && serverEnumeration_ == event.enumeration) {
                    problem("the kernel dropped the USB/IP connection of enumeration " +
                            std::to_string(event.enumeration) + " while the board was on the bus");
                    retireServer();
                }
                break;
            case EventKind::Quit:
                detach();
                return;
        }
    }
}

void BoardSlot::attach(const std::shared_ptr<virtualpi::UsbDevice>& device) {
    const std::uint64_t enumeration = device->enumeration();
    const std::string what = std::string(virtualpi::stageName(device->stage())) + " enumeration " +
                             std::to_string(enumeration);
    if (!device->attached()) {
        log(what + " left the bus before it could be attached");
        return;
    }
    // The previous enumeration's detach finishes asynchronously in the kernel.
    if (!vhci_.waitUntilFree(options_.port, options_.portFreeTimeout)) {
        problem("vhci-hcd port " + std::to_string(options_.port) + " did not become free within " +
                std::to_string(options_.portFreeTimeout.count()) + " ms; cannot attach " + what);
        return;
    }
    try {
        auto [ours, kernels] = options_.tcp ? loopbackTcpPair() : streamSocketPair();
        UrbServerOptions serverOptions;
        serverOptions.name = options_.label + " " + what;
        serverOptions.log = options_.log;
        serverOptions.trace = options_.trace;
        serverOptions.onPeerClosed = [this, enumeration] {
            post({EventKind::PeerClosed, nullptr, enumeration});
        };
        auto server = std::make_unique<UrbServer>(std::move(ours), device, serverOptions);
        // devid is only echoed back by the kernel: board and enumeration.
        const auto devid =
            static_cast<std::uint32_t>(((options_.index + 1) << 16) | (enumeration & 0xffff));
        vhci_.attach(options_.port, kernels.get(), devid, kSpeedHigh);
        server_ = std::move(server);
        serverEnumeration_ = enumeration;
        std::lock_guard lock(mutex_);
        ++stats_.attached;
    } catch (const rpiboot::Error& e) {
        problem("cannot attach " + what + ": " + e.what());
        return;
    }
    log("attached " + what + " on vhci port " + std::to_string(options_.port) + " (" +
        options_.portPath + ")");
}

void BoardSlot::detach() {
    if (!server_) {
        return;
    }
    // The kernel shuts its end of the socket down; pending URBs end there.
    server_->expectPeerClose();
    const bool wasAttached = vhci_.detach(options_.port);
    const UrbCounters c = retireServer();
    log("detached enumeration " + std::to_string(serverEnumeration_) + " (" +
        std::to_string(c.submitted) + " URBs, " + std::to_string(c.unlinkedPending) +
        " unlinked, " + std::to_string(c.bulkOutBytes) + " bulk bytes)" +
        (wasAttached ? "" : "; the kernel had already let it go"));
}

UrbCounters BoardSlot::retireServer() {
    server_->stop();
    const UrbCounters c = server_->counters();
    server_.reset();
    {
        std::lock_guard lock(mutex_);
        stats_.urbs.submitted += c.submitted;
        stats_.urbs.answered += c.answered;
        stats_.urbs.unlinkedPending += c.unlinkedPending;
        stats_.urbs.unlinkedLate += c.unlinkedLate;
        stats_.urbs.bulkOutBytes += c.bulkOutBytes;
        stats_.urbs.controlRequests += c.controlRequests;
        stats_.urbs.replyMicros.insert(stats_.urbs.replyMicros.end(), c.replyMicros.begin(),
                                       c.replyMicros.end());
    }
    return c;
}

void BoardSlot::watchOutcome() {
    // SimBoard::stop() ends a Running outcome, so powerOff() always ends this.
    while (board_->waitForOutcome(std::chrono::hours(1)) == virtualpi::Outcome::Running) {
    }
    if (options_.onOutcome) {
        options_.onOutcome(options_.index);
    }
}

}  // namespace usbip
