// The USB seam of the protocol engine (docs/protocol.md §3).
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

// Per-call timeouts. Defaults follow the boards' behaviour (docs/protocol.md §3.4):
// control 1 s, 5 s per 16 KiB bulk chunk, and the
// device may hold a control IN for up to 20 s while it works.
struct TransferTimeouts {
    Milliseconds control{1000};
    Milliseconds bulkChunk{5000};
    Milliseconds controlIn{20000};
};

// Largest bulk OUT transfer issued in one call (docs/protocol.md §3.4).
inline constexpr std::size_t kBulkChunkSize = std::size_t{16} * 1024;

// Bulk OUT transfers a Link keeps queued on the endpoint by default (when the
// transport can queue that many): enough that the host controller always has
// the next 16 KiB ready while the previous completion travels back to the
// worker thread, few enough to stay far below usbfs's memory limit.
inline constexpr std::size_t kDefaultBulkTransfersInFlight = 4;

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

    // ---- Queued (asynchronous) bulk OUT, for transports that can keep
    // several transfers pending on the endpoint. The device sees them in
    // submission order, exactly as if bulkOut() had been called for each.
    //
    // How many transfers may be queued at once; 1 means the transport has no
    // queue and callers use bulkOut().
    virtual std::size_t bulkOutSlots() const noexcept { return 1; }
    // Queues one transfer of at most kBulkChunkSize bytes and returns without
    // waiting. `chunk` must stay valid until the transfer has been reaped or
    // cancelled. At most bulkOutSlots() may be pending. Throws like bulkOut()
    // when the transfer cannot be queued (e.g. Errc::DeviceGone).
    virtual void submitBulkOut(std::span<const std::uint8_t> chunk);
    // Waits at most `timeout` for the oldest pending transfer to complete and
    // removes it from the queue. Throws like bulkOut() (naming the bytes that
    // transfer had accepted) when it failed, or with Errc::Timeout when it did
    // not complete in time; the caller then owes a cancelBulkOut().
    virtual void reapBulkOut(Milliseconds timeout);
    // Cancels every pending transfer and returns once the transport no longer
    // uses any of their buffers. Does nothing when none is pending.
    virtual void cancelBulkOut() noexcept {}
};

}  // namespace rpiboot
