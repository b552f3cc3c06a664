// VirtualBus: many virtual boards on numbered ports, attached in-process.
//
// Plays the part of the kernel + udev for tests, benchmarks and
// `rpibootd --virtual`: boards are plugged into port paths like "1-1.3", each
// enumeration gets a unique device id, listeners hear "added"/"removed"
// events, and open() hands out an rpiboot::Transport to the device (the fake
// transport). All bulk data of boards on bus N shares that controller's
// budget. It never drives the protocol itself; the boards do.
//
// Threads: every listener call happens on the bus's single event thread, in
// the order the changes happened, never with a bus lock held. A listener may
// call open(), devices(), board() and removeListener(); it must not call
// plug(), unplug() or destroy the bus. Everything else is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rpiboot/core/device.hpp"
#include "rpiboot/core/transport.hpp"
#include "virtualpi/sim_board.hpp"

namespace virtualpi {

struct BusOptions {
    // Budget shared by all boards of one controller (bus number); 0 =
    // unlimited. E.g. kHighSpeedBytesPerSecond.
    std::uint64_t controllerBytesPerSecond = 0;
    // The host side of every transfer through open(): time from the device's
    // last byte to the caller seeing the completion (FakeTransportOptions).
    std::chrono::microseconds transferCompletionLatency{0};
};

struct BoardSpec {
    Scenario scenario;
    // "<bus>-<port>[.<port>...]"; empty: the next free "1-<n>".
    std::string portPath;
    // Overrides the scenario's serial; when both are empty the bus picks a
    // unique 8-hex-digit serial.
    std::string serial;
};

struct SimDeviceInfo {
    std::uint64_t deviceId = 0;  // unique per enumeration, never reused
    std::string portPath;
    rpiboot::UsbDescriptorSummary summary;
    std::string serial;  // the string at iSerialNumber ("" for index 0)
    Stage stage = Stage::Off;
};

enum class DeviceEventKind { Added, Removed };
struct DeviceEvent {
    DeviceEventKind kind = DeviceEventKind::Added;
    SimDeviceInfo device;
};
using DeviceListener = std::function<void(const DeviceEvent&)>;
using ListenerId = std::uint64_t;

class VirtualBus {
  public:
    explicit VirtualBus(BusOptions options = {});
    // Unplugs every board (joining their threads), delivers the last events
    // (so whatever listeners capture must outlive the bus, or be removed
    // first), stops the event thread.
    ~VirtualBus();
    VirtualBus(const VirtualBus&) = delete;
    VirtualBus& operator=(const VirtualBus&) = delete;

    // Creates the board and powers it on. Returns its port path. Throws
    // rpiboot::Error(InvalidArgument) for a malformed or occupied port path or
    // an unusable scenario.
    std::string plug(BoardSpec spec);
    // Powers the board off and removes it (its device, if any, is removed
    // first). Throws rpiboot::Error(NotFound) for an empty port.
    void unplug(const std::string& portPath);

    std::shared_ptr<SimBoard> board(const std::string& portPath) const;
    std::vector<std::string> ports() const;
    // The devices currently enumerated (coldplug).
    std::vector<SimDeviceInfo> devices() const;
    std::optional<SimDeviceInfo> device(std::uint64_t deviceId) const;
    std::optional<SimDeviceInfo> deviceAt(const std::string& portPath) const;

    // Registers a listener for events after this call. `existing`, if given,
    // receives the devices present at that instant, so nothing is missed or
    // seen twice.
    ListenerId addListener(DeviceListener listener, std::vector<SimDeviceInfo>* existing = nullptr);
    // After this returns the listener is not running and will not be called
    // again (unless called from within that listener itself).
    void removeListener(ListenerId id);
    // Waits until every event so far has been delivered.
    void flushEvents();

    // A Transport to an enumerated device. Throws rpiboot::Error(DeviceGone)
    // if that enumeration has left the bus, NotFound if the id never existed.
    std::unique_ptr<rpiboot::Transport> open(std::uint64_t deviceId);
    // The endpoint interface itself (for other front-ends); same errors.
    std::shared_ptr<UsbDevice> usbDevice(std::uint64_t deviceId);

    // Waits for a device matching `predicate` (checked against present
    // devices and new arrivals). nullopt on timeout.
    std::optional<SimDeviceInfo> waitForDevice(
        const std::function<bool(const SimDeviceInfo&)>& predicate,
        std::chrono::milliseconds timeout);

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

// Splits "1-1.3" into bus 1 and ports {1, 3}; nullopt if malformed.
struct PortPath {
    unsigned bus = 0;
    std::vector<unsigned> ports;
};
std::optional<PortPath> parsePortPath(std::string_view text);

}  // namespace virtualpi
