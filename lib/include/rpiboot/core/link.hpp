// The two transfer primitives of the boot protocol (docs/protocol.md §3) on top of
// a Transport: write(len, bytes) and read(len). Every other part of the engine
// talks to the board through a Link.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "rpiboot/core/observer.hpp"
#include "rpiboot/core/transport.hpp"

namespace rpiboot {

class Link {
  public:
    // `transfersInFlight`: bulk OUT transfers kept queued while writing
    // (bounded by the transport's bulkOutSlots()); 1 sends each chunk with a
    // blocking bulkOut() and waits for it before the next.
    Link(Transport& transport, TransferTimeouts timeouts,
         std::size_t transfersInFlight = kDefaultBulkTransfersInFlight)
        : transport_(transport), timeouts_(timeouts), transfersInFlight_(transfersInFlight) {}

    // Control OUT announcing `length`, no bulk data (a size reply, an empty ack).
    void sendLength(std::uint32_t length);

    // Control OUT announcing data.size(), then the bytes in bulk chunks of at
    // most kBulkChunkSize. Reports progress to `observer` when given. Throws
    // Errc::TooLarge for more than 4 GiB - 1 bytes.
    void write(std::span<const std::uint8_t> data, BootObserver* observer = nullptr);

    // The bulk half of write(), for a caller that has already announced
    // data.size() with sendLength(). Every chunk has timeouts().bulkChunk to
    // complete, counted from when the one before it completed; on a failure
    // the transfers still queued are cancelled before the error propagates.
    void writeBulk(std::span<const std::uint8_t> data, BootObserver* observer = nullptr);

    // Control IN of exactly buffer.size() bytes. Throws Errc::Protocol when the
    // device answers with fewer bytes.
    void read(std::span<std::uint8_t> buffer);

    const TransferTimeouts& timeouts() const noexcept { return timeouts_; }
    // Transfers actually kept in flight with this transport.
    std::size_t transfersInFlight() const noexcept;

  private:
    void writeQueued(std::span<const std::uint8_t> data, std::size_t depth, BootObserver* observer);

    Transport& transport_;
    TransferTimeouts timeouts_;
    std::size_t transfersInFlight_;
};

}  // namespace rpiboot
