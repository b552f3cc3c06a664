// The two transfer primitives of the boot protocol (protocol.md §2) on top of
// a Transport: write(len, bytes) and read(len). Every other part of the engine
// talks to the board through a Link.
#pragma once

#include <cstdint>
#include <span>

#include "rpiboot/core/observer.hpp"
#include "rpiboot/core/transport.hpp"

namespace rpiboot {

class Link {
  public:
    Link(Transport& transport, TransferTimeouts timeouts)
        : transport_(transport), timeouts_(timeouts) {}

    // Control OUT announcing `length`, no bulk data (a size reply, an empty ack).
    void sendLength(std::uint32_t length);

    // Control OUT announcing data.size(), then the bytes in bulk chunks of at
    // most kBulkChunkSize. Reports progress to `observer` when given. Throws
    // Errc::TooLarge for more than 4 GiB - 1 bytes.
    void write(std::span<const std::uint8_t> data, BootObserver* observer = nullptr);

    // Control IN of exactly buffer.size() bytes. Throws Errc::Protocol when the
    // device answers with fewer bytes.
    void read(std::span<std::uint8_t> buffer);

    const TransferTimeouts& timeouts() const noexcept { return timeouts_; }

  private:
    Transport& transport_;
    TransferTimeouts timeouts_;
};

}  // namespace rpiboot
