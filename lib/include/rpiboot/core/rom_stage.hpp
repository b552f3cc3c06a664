// ROM stage (docs/protocol.md §4): hand the boot ROM its second-stage loader.
//
// Sends the 24-byte boot message, the loader, then reads the ROM's 4-byte
// return code. Never sleeps: the status read simply waits (control IN) until
// the ROM answers. Knows nothing about where the loader came from.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "rpiboot/core/link.hpp"
#include "rpiboot/core/observer.hpp"

namespace rpiboot {

inline constexpr std::size_t kBootSignatureSize = 20;
inline constexpr std::size_t kBootMessageSize = 4 + kBootSignatureSize;

using BootSignature = std::array<std::uint8_t, kBootSignatureSize>;

// The 24-byte boot message: int32 LE length, then the signature.
std::array<std::uint8_t, kBootMessageSize> makeBootMessage(std::uint32_t bootcodeLength,
                                                           const BootSignature& signature);

// Throws Errc::Protocol (message carries the code) when the ROM answers a
// non-zero return code; Errc::TooLarge for an empty or oversized loader.
void uploadBootcode(Link& link, std::span<const std::uint8_t> bootcode,
                    const BootSignature& signature, BootObserver* observer = nullptr);

}  // namespace rpiboot
