// Virtual Raspberry Pi boards as a device source (rpibootd --virtual).
//
// Plugs the boards of a --virtual SPEC into an in-process virtualpi
// VirtualBus and reports their enumerations like udev reports real ones:
// the bus's listener thread only posts to the main loop. A board that
// re-enumerates after its boot (the mass-storage gadget, 0a5c:0104) is
// reported as the USB device it became, with one virtual disk per disk of
// its scenario: a sparse regular file in a private temporary directory
// (removed when the device leaves, and with the source), so the storage step
// can run on it. Lets a person watch
// the daemon boot boards on a machine without a Raspberry Pi, and lets tests
// drive the real daemon process. After start() it plugs and unplugs only
// when asked (plug()/unplug(), from --virtual-control).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "device_source.hpp"
#include "event_loop.hpp"
#include "journal.hpp"
#include "virtualpi/virtual_bus.hpp"

namespace rpibootd {

// SPEC: comma-separated items, each either CHIP[:COUNT[:PROFILE]] (CHIP as
// rpiboot::parseChip reads it; PROFILE msd, mass-storage-gadget or recovery;
// default msd, mass-storage-gadget for 2712) or a scenario file
// PATH.json[:COUNT]. "2711:4,2712:2,2837:2" is eight boards. Throws
// rpiboot::Error(InvalidArgument) naming the item that is wrong.
std::vector<virtualpi::BoardSpec> parseVirtualSpec(std::string_view spec);

// Size of each virtual disk (the scenarios give none).
inline constexpr std::uint64_t kVirtualDiskBytes = 64ULL << 20;

class VirtualSource final : public DeviceSource {
  public:
    VirtualSource(EventLoop& loop, Logger& log, std::vector<virtualpi::BoardSpec> boards);
    ~VirtualSource() override;

    std::string_view name() const noexcept override { return "virtual"; }
    void start(DeviceEvents& events) override;
    OpenedDevice open(const DeviceInfo& device) override;

    // After start(), on the loop thread. Plugs `boards` (into their
    // portPath, or the next free port) and returns the ports; throws
    // rpiboot::Error(InvalidArgument) for an occupied or malformed port
    // (boards plugged before the one that failed stay plugged).
    std::vector<std::string> plug(std::vector<virtualpi::BoardSpec> boards);
    // Unplugs the board at `port`; throws rpiboot::Error(NotFound) when the
    // port is empty. Its device leaves the bus as a yanked cable would.
    void unplug(const std::string& port);
    // Occupied ports, sorted.
    std::vector<std::string> ports() const;
    // What the board at `port` has received and answered so far
    // (virtualpi::recordToJson); throws rpiboot::Error(NotFound).
    std::string record(const std::string& port) const;
    // The bus, after start(): what the boards recorded (for tests).
    virtualpi::VirtualBus* bus() const noexcept { return bus_.get(); }
    // Before start(): the size of the virtual disks.
    void setDiskSize(std::uint64_t bytes) { diskSize_ = bytes; }
    // Where the virtual disks are (empty before start()).
    const std::filesystem::path& diskDirectory() const noexcept { return diskDir_; }
    // Stops events and unplugs every board, so their sessions fail fast.
    // The bus stays until destruction: workers may still hold its devices.
    void unplugAll();

  private:
    std::optional<DeviceInfo> toDeviceInfo(const virtualpi::SimDeviceInfo& device);
    // A bus event, as DeviceEvents calls made through `deliver` (posted to
    // the loop from the bus thread, or called at once during start()).
    void report(const virtualpi::DeviceEvent& event, DeviceEvents& events,
                const std::function<void(std::function<void()>)>& deliver);
    std::vector<DiskInfo> createDisks(const virtualpi::SimDeviceInfo& device);
    std::string plugOne(virtualpi::BoardSpec spec);

    EventLoop& loop_;
    Logger& log_;
    std::vector<virtualpi::BoardSpec> specs_;
    std::unique_ptr<virtualpi::VirtualBus> bus_;
    virtualpi::ListenerId listener_ = 0;
    std::uint64_t diskSize_ = kVirtualDiskBytes;
    std::filesystem::path diskDir_;
    std::mutex disksMutex_;
    std::map<std::uint64_t, std::vector<DiskInfo>> disksOf_;  // by device id
    std::uint64_t nextDisk_ = 0;
};

}  // namespace rpibootd
