#include "rpiboot/core/rom_stage.hpp"

#include <cstdio>
#include <limits>
#include <string>

#include "rpiboot/core/error.hpp"

namespace rpiboot {
namespace {

void putLe32(std::uint8_t* out, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) {
        out[i] = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

std::uint32_t getLe32(const std::uint8_t* in) {
    return std::uint32_t{in[0]} | std::uint32_t{in[1]} << 8 | std::uint32_t{in[2]} << 16 |
           std::uint32_t{in[3]} << 24;
}

}  // namespace

std::array<std::uint8_t, kBootMessageSize> makeBootMessage(std::uint32_t bootcodeLength,
                                                           const BootSignature& signature) {
    std::array<std::uint8_t, kBootMessageSize> message{};
    putLe32(message.data(), bootcodeLength);
    std::copy(signature.begin(), signature.end(), message.begin() + 4);
    return message;
}

void uploadBootcode(Link& link, std::span<const std::uint8_t> bootcode,
                    const BootSignature& signature, BootObserver* observer) {
    if (bootcode.empty()) {
        throw Error(Errc::TooLarge, "the second-stage loader is empty");
    }
    if (bootcode.size() > std::numeric_limits<std::int32_t>::max()) {
        throw Error(Errc::TooLarge, "the second-stage loader is larger than 2 GiB");
    }
    const auto length = static_cast<std::uint32_t>(bootcode.size());
    const auto message = makeBootMessage(length, signature);
    link.write(message);
    if (observer != nullptr) {
        observer->onTransferStarted("bootcode", length);
    }
    link.write(bootcode, observer);
    if (observer != nullptr) {
        observer->onTransferFinished("bootcode", length);
    }
    // docs/protocol.md §4.4: the ROM answers a 4-byte return code; the control IN
    // simply waits until it is ready (no fixed sleep).
    std::array<std::uint8_t, 4> status{};
    link.read(status);
    const std::uint32_t code = getLe32(status.data());
    if (code != 0) {
        char hex[16];
        std::snprintf(hex, sizeof hex, "0x%x", code);
        throw Error(Errc::Protocol,
                    std::string("boot ROM rejected the loader with return code ") + hex);
    }
}

}  // namespace rpiboot
