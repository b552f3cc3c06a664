// The endpoint-level face of one enumeration of a virtual board.
//
// A front-end (the in-process fake Transport, a USB/IP server) drives a
// UsbDevice exactly as a USB host controller would: control transfers on
// endpoint 0 (standard requests are answered from the descriptors, vendor
// requests carry the boot protocol, docs/protocol.md §3.5) and bulk
// transfers. Calls block like a NAKing endpoint until the device can answer,
// the deadline passes or the caller cancels. A UsbDevice never outlives its
// enumeration: once the board disconnects, every call returns Disconnected,
// even if the same board has re-appeared as a new UsbDevice.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stop_token>

#include "virtualpi/descriptors.hpp"

namespace virtualpi {

using Clock = std::chrono::steady_clock;
using Milliseconds = std::chrono::milliseconds;
// Clock::time_point::max() means "no deadline".
using Deadline = Clock::time_point;

struct SetupPacket {
    std::uint8_t requestType = 0;  // bmRequestType
    std::uint8_t request = 0;      // bRequest
    std::uint16_t value = 0;       // wValue
    std::uint16_t index = 0;       // wIndex
    std::uint16_t length = 0;      // wLength

    bool isIn() const noexcept { return (requestType & 0x80) != 0; }
    std::array<std::uint8_t, 8> bytes() const noexcept;
    static SetupPacket fromBytes(std::span<const std::uint8_t, 8> bytes) noexcept;
};

// The boot protocol's two vendor requests (docs/protocol.md §3).
inline constexpr std::uint8_t kVendorOut = 0x40;
inline constexpr std::uint8_t kVendorIn = 0xC0;

enum class UsbStatus {
    Ok,
    Stall,         // the endpoint answered STALL (halted, or request refused)
    Timeout,       // the endpoint NAKed until the deadline
    Disconnected,  // the device left the bus before or during the transfer
    Cancelled,     // the caller's stop_token was triggered
};

struct TransferResult {
    UsbStatus status = UsbStatus::Ok;
    // Bytes moved in the data stage (OUT: accepted; IN: written to buffer),
    // also when the transfer ended with an error part way.
    std::size_t length = 0;
};

enum class Stage { Off, Rom, SecondStage, Final };
const char* stageName(Stage stage) noexcept;

class UsbDevice {
  public:
    virtual ~UsbDevice() = default;

    // The descriptors of this enumeration; immutable.
    virtual const DescriptorSet& descriptors() const noexcept = 0;
    virtual Stage stage() const noexcept = 0;
    // 1 for the board's first enumeration, then counting up.
    virtual std::uint64_t enumeration() const noexcept = 0;
    virtual bool attached() const noexcept = 0;

    // A control transfer. For OUT requests `data` holds the wLength bytes of
    // the data stage (empty when wLength is 0); for IN requests the device
    // writes at most setup.length bytes into `data` (whose size must be at
    // least setup.length) and reports how many. Standard requests
    // (GET_DESCRIPTOR, SET_CONFIGURATION, GET_STATUS, CLEAR_FEATURE, ...) are
    // answered at once; the vendor IN request may block until the device has
    // something to say.
    virtual TransferResult control(const SetupPacket& setup, std::span<std::uint8_t> data,
                                   Deadline deadline, std::stop_token cancel = {}) = 0;
    // Bulk OUT on `endpoint` (e.g. 0x01): the device accepts bytes only while
    // it expects data, in any packetisation; otherwise it NAKs.
    virtual TransferResult bulkOut(std::uint8_t endpoint, std::span<const std::uint8_t> data,
                                   Deadline deadline, std::stop_token cancel = {}) = 0;
    // Bulk IN on `endpoint` (e.g. 0x82): the boot protocol never uses it, so
    // the device NAKs until the deadline (or stalls an unknown endpoint).
    virtual TransferResult bulkIn(std::uint8_t endpoint, std::span<std::uint8_t> buffer,
                                  Deadline deadline, std::stop_token cancel = {}) = 0;
};

// Deadline helper: now + timeout, or no deadline for a negative timeout.
Deadline deadlineAfter(Milliseconds timeout) noexcept;

}  // namespace virtualpi
