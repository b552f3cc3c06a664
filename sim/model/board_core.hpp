// BoardCore: the state shared between a board's firmware thread and the host
// side of its UsbDevices (endpoint 0 and bulk). One mutex, one condition
// variable; the host side only moves bytes and flags, every decision is taken
// by the firmware thread. Internal to virtualpi.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <vector>

#include "sha256.hpp"
#include "virtualpi/bandwidth.hpp"
#include "virtualpi/mass_storage.hpp"
#include "virtualpi/sim_board.hpp"
#include "virtualpi/usb_device.hpp"

namespace virtualpi {

// How an endpoint behaves after a fault: answers normally, STALLs, or NAKs
// forever.
enum class EndpointMode { Normal, Stall, Silence };

class BoardCore : public std::enable_shared_from_this<BoardCore> {
  public:
    BoardCore(std::uint64_t boardBytesPerSecond, std::shared_ptr<BandwidthBudget> controller);

    // ---- host side (any thread), for enumeration `generation`
    TransferResult control(std::uint64_t generation, const SetupPacket& setup,
                           std::span<std::uint8_t> data, Deadline deadline,
                           const std::stop_token& cancel);
    TransferResult bulkOut(std::uint64_t generation, std::uint8_t endpoint,
                           std::span<const std::uint8_t> data, Deadline deadline,
                           const std::stop_token& cancel);
    TransferResult bulkIn(std::uint64_t generation, std::uint8_t endpoint,
                          std::span<std::uint8_t> buffer, Deadline deadline,
                          const std::stop_token& cancel);
    bool isCurrent(std::uint64_t generation);

    // ---- shared with the firmware thread; all fields below are guarded by mutex
    std::mutex mutex;
    std::condition_variable_any changed;

    std::uint64_t generation = 0;
    bool attached = false;
    Stage stage = Stage::Off;
    std::shared_ptr<const DescriptorSet> descriptors;
    std::shared_ptr<UsbDevice> currentDevice;
    std::uint8_t configurationValue = 0;

    std::deque<std::uint32_t> controlOuts;               // vendor OUT lengths not yet consumed
    std::optional<std::vector<std::uint8_t>> pendingIn;  // answer for the next vendor IN
    std::uint64_t inTaken = 0;                           // vendor IN answers collected so far

    // Bulk receive window opened by the firmware.
    bool windowOpen = false;
    std::uint64_t windowLimit = 0;  // accept up to this many bytes
    std::uint64_t windowReceived = 0;
    std::uint64_t windowInFlight = 0;  // accepted but still being paced
    detail::Sha256 windowHash;
    std::vector<std::uint8_t> windowKeep;  // first keepMax bytes
    std::size_t windowKeepMax = 0;
    Clock::time_point windowLastByte{};

    EndpointMode controlInMode = EndpointMode::Normal;
    EndpointMode controlOutMode = EndpointMode::Normal;
    // Applied to controlOutMode the instant the host collects pendingIn, so a
    // reply fault cannot be outrun by a fast host.
    std::optional<EndpointMode> controlOutModeOnCollect;
    std::set<std::uint8_t> haltedEndpoints;

    BoardRecord record;
    Clock::time_point poweredOn = Clock::now();

    // Mass-storage functions of the current enumeration (final identity with
    // backing files); their endpoints and class requests go to them.
    std::vector<std::shared_ptr<BulkOnlyStorage>> storage;
    // The disk (index) whose function reached its unplug limit: the firmware
    // then leaves the bus.
    std::optional<std::size_t> unpluggedDisk;

    // Resets the per-enumeration protocol state (caller holds mutex).
    void resetProtocolState();
    // Disconnects and forgets the storage functions (caller holds mutex).
    void dropStorage();
    // The storage function owning `endpoint`, or null (caller holds mutex).
    std::shared_ptr<BulkOnlyStorage> storageFor(std::uint8_t endpoint) const;

  private:
    TransferResult standardRequest(const SetupPacket& setup, std::span<std::uint8_t> data);
    TransferResult vendorIn(std::unique_lock<std::mutex>& lock, std::uint64_t generation,
                            const SetupPacket& setup, std::span<std::uint8_t> data,
                            Deadline deadline, const std::stop_token& cancel);
    TransferResult vendorOut(std::unique_lock<std::mutex>& lock, std::uint64_t generation,
                             const SetupPacket& setup, Deadline deadline,
                             const std::stop_token& cancel);
    // Waits for pred or the end of the transfer; returns Ok when pred holds.
    template <typename Pred>
    UsbStatus waitFor(std::unique_lock<std::mutex>& lock, std::uint64_t generation,
                      Deadline deadline, const std::stop_token& cancel, Pred pred);

    BandwidthBudget boardBudget_;
    std::shared_ptr<BandwidthBudget> controllerBudget_;
};

// The UsbDevice of one enumeration.
class BoardUsbDevice final : public UsbDevice {
  public:
    BoardUsbDevice(std::shared_ptr<BoardCore> core, std::uint64_t generation,
                   std::shared_ptr<const DescriptorSet> descriptors, Stage stage)
        : core_(std::move(core)),
          generation_(generation),
          descriptors_(std::move(descriptors)),
          stage_(stage) {}

    const DescriptorSet& descriptors() const noexcept override { return *descriptors_; }
    Stage stage() const noexcept override { return stage_; }
    std::uint64_t enumeration() const noexcept override { return generation_; }
    bool attached() const noexcept override { return core_->isCurrent(generation_); }
    TransferResult control(const SetupPacket& setup, std::span<std::uint8_t> data,
                           Deadline deadline, std::stop_token cancel) override {
        return core_->control(generation_, setup, data, deadline, cancel);
    }
    TransferResult bulkOut(std::uint8_t endpoint, std::span<const std::uint8_t> data,
                           Deadline deadline, std::stop_token cancel) override {
        return core_->bulkOut(generation_, endpoint, data, deadline, cancel);
    }
    TransferResult bulkIn(std::uint8_t endpoint, std::span<std::uint8_t> buffer, Deadline deadline,
                          std::stop_token cancel) override {
        return core_->bulkIn(generation_, endpoint, buffer, deadline, cancel);
    }

  private:
    std::shared_ptr<BoardCore> core_;
    std::uint64_t generation_;
    std::shared_ptr<const DescriptorSet> descriptors_;
    Stage stage_;
};

}  // namespace virtualpi
