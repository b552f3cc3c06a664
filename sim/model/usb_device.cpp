#include "virtualpi/usb_device.hpp"

namespace virtualpi {

std::array<std::uint8_t, 8> SetupPacket::bytes() const noexcept {
    return {requestType,
            request,
            static_cast<std::uint8_t>(value & 0xff),
            static_cast<std::uint8_t>(value >> 8),
            static_cast<std::uint8_t>(index & 0xff),
            static_cast<std::uint8_t>(index >> 8),
            static_cast<std::uint8_t>(length & 0xff),
            static_cast<std::uint8_t>(length >> 8)};
}

SetupPacket SetupPacket::fromBytes(std::span<const std::uint8_t, 8> b) noexcept {
    SetupPacket s;
    s.requestType = b[0];
    s.request = b[1];
    s.value = static_cast<std::uint16_t>(b[2] | (b[3] << 8));
    s.index = static_cast<std::uint16_t>(b[4] | (b[5] << 8));
    s.length = static_cast<std::uint16_t>(b[6] | (b[7] << 8));
    return s;
}

const char* stageName(Stage stage) noexcept {
    switch (stage) {
        case Stage::Off:
            return "off";
        case Stage::Rom:
            return "rom";
        case Stage::SecondStage:
            return "second-stage";
        case Stage::Final:
            return "final";
    }
    return "?";
}

Deadline deadlineAfter(Milliseconds timeout) noexcept {
    if (timeout.count() < 0) {
        return Deadline::max();
    }
    const auto now = Clock::now();
    if (Deadline::max() - now < timeout) {
        return Deadline::max();
    }
    return now + timeout;
}

}  // namespace virtualpi
