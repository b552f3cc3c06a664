#include "virtualpi/virtual_bus.hpp"

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "rpiboot/core/error.hpp"
#include "virtualpi/fake_transport.hpp"

namespace virtualpi {

using rpiboot::Errc;
using rpiboot::Error;

std::optional<PortPath> parsePortPath(std::string_view text) {
    PortPath path;
    const auto dash = text.find('-');
    if (dash == std::string_view::npos || dash == 0) {
        return std::nullopt;
    }
    const auto number = [](std::string_view digits) -> std::optional<unsigned> {
        if (digits.empty() || digits.size() > 3) {
            return std::nullopt;
        }
        unsigned n = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') {
                return std::nullopt;
            }
            n = n * 10 + static_cast<unsigned>(c - '0');
        }
        return n;
    };
    const auto bus = number(text.substr(0, dash));
    if (!bus || *bus == 0) {
        return std::nullopt;
    }
    path.bus = *bus;
    std::string_view rest = text.substr(dash + 1);
    while (true) {
        const auto dot = rest.find('.');
        const auto port = number(rest.substr(0, dot));
        if (!port || *port == 0 || *port > 255) {
            return std::nullopt;
        }
        path.ports.push_back(*port);
        if (dot == std::string_view::npos) {
            break;
        }
        rest = rest.substr(dot + 1);
    }
    // USB allows at most 7 tiers (5 hubs deep).
    if (path.ports.size() > 7) {
        return std::nullopt;
    }
    return path;
}

struct VirtualBus::Impl : std::enable_shared_from_this<Impl> {
    struct Present {
        SimDeviceInfo info;
        std::shared_ptr<UsbDevice> device;
    };
    struct Listener {
        ListenerId id = 0;
        std::uint64_t fromSeq = 0;
        std::shared_ptr<DeviceListener> fn;
    };

    explicit Impl(BusOptions o) : options(o) {}

    BusOptions options;
    mutable std::mutex mutex;
    mutable std::condition_variable changed;
    std::map<std::string, std::shared_ptr<SimBoard>> boards;
    std::map<std::uint64_t, Present> present;
    std::uint64_t nextDeviceId = 1;
    std::uint32_t boardsPlugged = 0;
    std::map<unsigned, std::shared_ptr<BandwidthBudget>> controllers;

    std::deque<std::pair<std::uint64_t, DeviceEvent>> queue;
    std::uint64_t nextSeq = 0;
    std::uint64_t delivered = 0;
    std::vector<Listener> listeners;
    ListenerId nextListener = 1;
    ListenerId dispatching = 0;
    bool stopping = false;
    std::thread eventThread;

    void enqueue(DeviceEvent event) {  // mutex held
        queue.emplace_back(nextSeq++, std::move(event));
        changed.notify_all();
    }

    void onBoardEvent(const std::string& port, const AttachEvent& event) {
        std::lock_guard lock(mutex);
        if (event.kind == AttachEventKind::Attached) {
            Present p;
            p.device = event.device;
            p.info.deviceId = nextDeviceId++;
            p.info.portPath = port;
            p.info.summary = event.device->descriptors().summary();
            p.info.serial = event.device->descriptors().serialString();
            p.info.stage = event.device->stage();
            enqueue({DeviceEventKind::Added, p.info});
            present.emplace(p.info.deviceId, std::move(p));
            return;
        }
        for (auto it = present.begin(); it != present.end(); ++it) {
            if (it->second.device == event.device) {
                enqueue({DeviceEventKind::Removed, it->second.info});
                present.erase(it);
                return;
            }
        }
    }

    void deliverEvents() {
        std::unique_lock lock(mutex);
        for (;;) {
            changed.wait(lock, [&] { return stopping || !queue.empty(); });
            if (queue.empty()) {
                return;  // stopping, and everything was delivered
            }
            auto [seq, event] = std::move(queue.front());
            queue.pop_front();
            std::vector<ListenerId> targets;
            for (const auto& l : listeners) {
                if (l.fromSeq <= seq) {
                    targets.push_back(l.id);
                }
            }
            for (ListenerId id : targets) {
                // Skip listeners removed while earlier ones ran.
                std::shared_ptr<DeviceListener> fn;
                for (const auto& l : listeners) {
                    if (l.id == id) {
                        fn = l.fn;
                    }
                }
                if (!fn) {
                    continue;
                }
                dispatching = id;
                lock.unlock();
                try {
                    (*fn)(event);
                } catch (...) {
                    // A listener's failure is its own; the bus keeps going.
                }
                lock.lock();
                dispatching = 0;
                changed.notify_all();
            }
            delivered = seq + 1;
            changed.notify_all();
        }
    }

    std::string nextFreePort() const {  // mutex held
        for (unsigned n = 1;; ++n) {
            std::string path = "1-" + std::to_string(n);
            if (boards.count(path) == 0) {
                return path;
            }
        }
    }

    std::string uniqueSerial() {  // mutex held
        // Multiplying by an odd constant is a bijection on 32 bits: unique,
        // yet looks like a real SoC serial.
        const std::uint32_t value = (++boardsPlugged) * 2654435761u;
        char buffer[16];
        std::snprintf(buffer, sizeof buffer, "%08x", static_cast<unsigned>(value));
        return buffer;
    }
};

VirtualBus::VirtualBus(BusOptions options) : impl_(std::make_shared<Impl>(options)) {
    impl_->eventThread = std::thread([impl = impl_.get()] { impl->deliverEvents(); });
}

VirtualBus::~VirtualBus() {
    std::map<std::string, std::shared_ptr<SimBoard>> boards;
    {
        std::lock_guard lock(impl_->mutex);
        boards.swap(impl_->boards);
    }
    for (auto& [port, board] : boards) {
        board->stop();
    }
    boards.clear();
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
        impl_->changed.notify_all();
    }
    impl_->eventThread.join();
}

std::string VirtualBus::plug(BoardSpec spec) {
    std::shared_ptr<SimBoard> board;
    std::string port;
    {
        std::lock_guard lock(impl_->mutex);
        port = spec.portPath.empty() ? impl_->nextFreePort() : spec.portPath;
        const auto path = parsePortPath(port);
        if (!path) {
            throw Error(Errc::InvalidArgument,
                        "virtual bus: \"" + port + "\" is not a USB port path like 1-1.3");
        }
        if (impl_->boards.count(port) != 0) {
            throw Error(Errc::InvalidArgument,
                        "virtual bus: port " + port + " already has a board plugged in");
        }
        BoardOptions options;
        options.portPath = port;
        options.serial = !spec.serial.empty()            ? spec.serial
                         : !spec.scenario.serial.empty() ? spec.scenario.serial
                                                         : impl_->uniqueSerial();
        if (impl_->options.controllerBytesPerSecond > 0) {
            auto& budget = impl_->controllers[path->bus];
            if (!budget) {
                budget = std::make_shared<BandwidthBudget>(impl_->options.controllerBytesPerSecond);
            }
            options.controllerBudget = budget;
        }
        std::weak_ptr<Impl> weak = impl_;
        options.listener = [weak, port](const AttachEvent& event) {
            if (auto impl = weak.lock()) {
                impl->onBoardEvent(port, event);
            }
        };
        board = std::make_shared<SimBoard>(std::move(spec.scenario), std::move(options));
        impl_->boards.emplace(port, board);
    }
    board->start();
    return port;
}

void VirtualBus::unplug(const std::string& portPath) {
    std::shared_ptr<SimBoard> board;
    {
        std::lock_guard lock(impl_->mutex);
        const auto it = impl_->boards.find(portPath);
        if (it == impl_->boards.end()) {
            throw Error(Errc::NotFound, "virtual bus: no board is plugged into " + portPath);
        }
        board = std::move(it->second);
        impl_->boards.erase(it);
    }
    board->stop();
}

std::shared_ptr<SimBoard> VirtualBus::board(const std::string& portPath) const {
    std::lock_guard lock(impl_->mutex);
    const auto it = impl_->boards.find(portPath);
    return it == impl_->boards.end() ? nullptr : it->second;
}

std::vector<std::string> VirtualBus::ports() const {
    std::lock_guard lock(impl_->mutex);
    std::vector<std::string> out;
    for (const auto& [port, board] : impl_->boards) {
        out.push_back(port);
    }
    return out;
}

std::vector<SimDeviceInfo> VirtualBus::devices() const {
    std::lock_guard lock(impl_->mutex);
    std::vector<SimDeviceInfo> out;
    for (const auto& [id, p] : impl_->present) {
        out.push_back(p.info);
    }
    return out;
}

std::optional<SimDeviceInfo> VirtualBus::device(std::uint64_t deviceId) const {
    std::lock_guard lock(impl_->mutex);
    const auto it = impl_->present.find(deviceId);
    if (it == impl_->present.end()) {
        return std::nullopt;
    }
    return it->second.info;
}

std::optional<SimDeviceInfo> VirtualBus::deviceAt(const std::string& portPath) const {
    std::lock_guard lock(impl_->mutex);
    for (const auto& [id, p] : impl_->present) {
        if (p.info.portPath == portPath) {
            return p.info;
        }
    }
    return std::nullopt;
}

ListenerId VirtualBus::addListener(DeviceListener listener, std::vector<SimDeviceInfo>* existing) {
    std::lock_guard lock(impl_->mutex);
    Impl::Listener l;
    l.id = impl_->nextListener++;
    l.fromSeq = impl_->nextSeq;
    l.fn = std::make_shared<DeviceListener>(std::move(listener));
    if (existing != nullptr) {
        existing->clear();
        for (const auto& [id, p] : impl_->present) {
            existing->push_back(p.info);
        }
    }
    impl_->listeners.push_back(std::move(l));
    return impl_->listeners.back().id;
}

void VirtualBus::removeListener(ListenerId id) {
    std::unique_lock lock(impl_->mutex);
    std::erase_if(impl_->listeners, [&](const Impl::Listener& l) { return l.id == id; });
    if (std::this_thread::get_id() == impl_->eventThread.get_id()) {
        return;  // called from a listener: it is running right now, by design
    }
    impl_->changed.wait(lock, [&] { return impl_->dispatching != id; });
}

void VirtualBus::flushEvents() {
    std::unique_lock lock(impl_->mutex);
    if (std::this_thread::get_id() == impl_->eventThread.get_id()) {
        return;
    }
    const std::uint64_t target = impl_->nextSeq;
    impl_->changed.wait(lock, [&] { return impl_->delivered >= target; });
}

std::shared_ptr<UsbDevice> VirtualBus::usbDevice(std::uint64_t deviceId) {
    std::lock_guard lock(impl_->mutex);
    const auto it = impl_->present.find(deviceId);
    if (it != impl_->present.end()) {
        return it->second.device;
    }
    if (deviceId != 0 && deviceId < impl_->nextDeviceId) {
        throw Error(Errc::DeviceGone,
                    "virtual bus: device " + std::to_string(deviceId) + " has left the bus");
    }
    throw Error(Errc::NotFound,
                "virtual bus: there never was a device " + std::to_string(deviceId));
}

std::unique_ptr<rpiboot::Transport> VirtualBus::open(std::uint64_t deviceId) {
    auto device = usbDevice(deviceId);
    std::string name;
    {
        std::lock_guard lock(impl_->mutex);
        const auto it = impl_->present.find(deviceId);
        name = "virtual device " + std::to_string(deviceId) +
               (it != impl_->present.end() ? " at " + it->second.info.portPath : std::string());
    }
    FakeTransportOptions options;
    options.completionLatency = impl_->options.transferCompletionLatency;
    return makeFakeTransport(std::move(device), std::move(name), options);
}

std::optional<SimDeviceInfo> VirtualBus::waitForDevice(
    const std::function<bool(const SimDeviceInfo&)>& predicate, std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mutex);
    std::optional<SimDeviceInfo> found;
    impl_->changed.wait_for(lock, timeout, [&] {
        for (const auto& [id, p] : impl_->present) {
            if (predicate(p.info)) {
                found = p.info;
                return true;
            }
        }
        return false;
    });
    return found;
}

}  // namespace virtualpi
