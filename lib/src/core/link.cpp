#include "rpiboot/core/link.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "rpiboot/core/error.hpp"

namespace rpiboot {

void Link::sendLength(std::uint32_t length) {
    transport_.controlOutLength(length, timeouts_.control);
}

void Link::write(std::span<const std::uint8_t> data, BootObserver* observer) {
    if (data.size() > std::numeric_limits<std::uint32_t>::max()) {
        throw Error(Errc::TooLarge, "cannot send " + std::to_string(data.size()) +
                                        " bytes: the protocol carries 32-bit lengths");
    }
    const auto total = static_cast<std::uint32_t>(data.size());
    transport_.controlOutLength(total, timeouts_.control);
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

void Link::read(std::span<std::uint8_t> buffer) {
    const std::size_t got = transport_.controlIn(buffer, timeouts_.controlIn);
    if (got != buffer.size()) {
        throw Error(Errc::Protocol, "device answered " + std::to_string(got) + " of " +
                                        std::to_string(buffer.size()) + " expected bytes");
    }
}

}  // namespace rpiboot
