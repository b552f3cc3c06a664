#include "rpiboot/core/link.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "rpiboot/core/error.hpp"

namespace rpiboot {

void Transport::submitBulkOut(std::span<const std::uint8_t> /*chunk*/) {
    throw Error(Errc::InvalidArgument, "this transport cannot queue bulk OUT transfers");
}

void Transport::reapBulkOut(Milliseconds /*timeout*/) {
    throw Error(Errc::InvalidArgument, "this transport has no queued bulk OUT transfer");
}

void Link::sendLength(std::uint32_t length) {
    transport_.controlOutLength(length, timeouts_.control);
}

std::size_t Link::transfersInFlight() const noexcept {
    return std::max<std::size_t>(1, std::min(transfersInFlight_, transport_.bulkOutSlots()));
}

void Link::write(std::span<const std::uint8_t> data, BootObserver* observer) {
    if (data.size() > std::numeric_limits<std::uint32_t>::max()) {
        throw Error(Errc::TooLarge, "cannot send " + std::to_string(data.size()) +
                                        " bytes: the protocol carries 32-bit lengths");
    }
    transport_.controlOutLength(static_cast<std::uint32_t>(data.size()), timeouts_.control);
    writeBulk(data, observer);
}

void Link::writeBulk(std::span<const std::uint8_t> data, BootObserver* observer) {
    if (data.size() > std::numeric_limits<std::uint32_t>::max()) {
        throw Error(Errc::TooLarge, "cannot send " + std::to_string(data.size()) +
                                        " bytes: the protocol carries 32-bit lengths");
    }
    const std::size_t depth = transfersInFlight();
    if (depth > 1 && data.size() > kBulkChunkSize) {
        writeQueued(data, depth, observer);
        return;
    }
    const auto total = static_cast<std::uint32_t>(data.size());
    std::size_t sent = 0;
    while (sent < data.size()) {
        const std::size_t n = std::min(kBulkChunkSize, data.size() - sent);
        transport_.bulkOut(data.subspan(sent, n), timeouts_.bulkChunk);
        sent += n;
        if (observer != nullptr) {
            observer->onTransferProgress(sent, total);
        }
    }
}

// Keeps up to `depth` chunks queued: the host controller always has the next
// chunk when one completes, so the bus does not idle while the completion
// travels back to this thread. Chunks complete in order; the oldest one is
// reaped with the per-chunk timeout, so a board that stops reading fails
// within one timeout of its last completed chunk, as with one in flight.
void Link::writeQueued(std::span<const std::uint8_t> data, std::size_t depth,
                       BootObserver* observer) {
    const auto total = static_cast<std::uint32_t>(data.size());
    std::size_t submitted = 0;  // bytes handed to the transport
    std::size_t completed = 0;  // bytes whose transfers completed
    std::size_t pending = 0;    // transfers queued and not yet reaped
    try {
        while (completed < data.size()) {
            while (pending < depth && submitted < data.size()) {
                const std::size_t n = std::min(kBulkChunkSize, data.size() - submitted);
                transport_.submitBulkOut(data.subspan(submitted, n));
                submitted += n;
                ++pending;
            }
            transport_.reapBulkOut(timeouts_.bulkChunk);
            --pending;
            completed += std::min(kBulkChunkSize, data.size() - completed);
            if (observer != nullptr) {
                observer->onTransferProgress(completed, total);
            }
        }
    } catch (...) {
        if (pending > 0) {
            transport_.cancelBulkOut();
        }
        throw;
    }
}

void Link::read(std::span<std::uint8_t> buffer) {
    const std::size_t got = transport_.controlIn(buffer, timeouts_.controlIn);
    if (got != buffer.size()) {
        throw Error(Errc::Protocol, "device answered " + std::to_string(got) + " of " +
                                        std::to_string(buffer.size()) + " expected bytes");
    }
}

}  // namespace rpiboot
