// The USB seam of the protocol engine (protocol.md §2).
//
// A Transport moves bytes to and from one opened boot-mode device: vendor
// control transfers on endpoint 0 and bulk OUT transfers on the selected
// interface. Implementations: LibusbTransport (real hardware) and the
// in-process fake of the simulator (sim/). A Transport never interprets what it
// carries and never retries; it throws rpiboot::Error with Errc::DeviceGone
// when the device has left the bus, so callers can tell an unplug from a
// failure.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

namespace rpiboot {

using Milliseconds = std::chrono::milliseconds;

// Per-call timeouts. Defaults follow the boards' behaviour (protocol.md §2,
// protocol-details.md §2): control 1 s, 5 s per 16 KiB bulk chunk, and the
// device may hold a control IN for up to 20 s while it works.
struct TransferTimeouts {
    Milliseconds control{1000};
    Milliseconds bulkChunk{5000};
    Milliseconds controlIn{20000};
};

// Largest bulk OUT transfer issued in one call (protocol.md §2).
inline constexpr std::size_t kBulkChunkSize = std::size_t{16} * 1024;

class Transport {
  public:
    virtual ~Transport() = default;

    // Vendor control OUT, bmRequestType 0x40, bRequest 0, wValue = length &
    // 0xffff, wIndex = length >> 16, wLength 0 (no data stage).
    virtual void controlOutLength(std::uint32_t length, Milliseconds timeout) = 0;

    // Vendor control IN, bmRequestType 0xC0, bRequest 0, wValue/wIndex =
    // buffer.size() split as above, wLength = buffer.size(). Returns the number
    // of bytes the device put in the data stage (may be short).
    virtual std::size_t controlIn(std::span<std::uint8_t> buffer, Milliseconds timeout) = 0;

    // One bulk OUT transfer of at most kBulkChunkSize bytes on the selected
    // OUT endpoint. Throws unless every byte was accepted.
    virtual void bulkOut(std::span<const std::uint8_t> chunk, Milliseconds timeout) = 0;
};

}  // namespace rpiboot
