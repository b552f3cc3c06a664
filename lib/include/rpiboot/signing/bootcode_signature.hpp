// Signature blocks of BCM2712 second-stage loaders (protocol.md §10.6):
// counter-signing a Raspberry-Pi-signed bootcode5.bin / recovery.bin / EEPROM
// bootcode or bootsys with the customer key, and reading the blocks back.
//
// A block is appended to the bytes it covers: their length, the key number,
// the anti-rollback version (32-bit little-endian each), a PKCS#1 v1.5
// SHA-256 signature over everything before the signature, and the signing
// public key (modulus, exponent little-endian). Nothing here trusts a length
// read from a file before checking it against the file's size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "rpiboot/signing/rsa_key.hpp"

namespace rpiboot {

inline constexpr std::size_t kBootcodeSignatureBlockSize2712 =
    12 + kRsaSignatureSize + kPubkeyBinSize;  // 532
// The ROM refuses a signed loader larger than this.
inline constexpr std::size_t kMaxSignedBootcodeSize = std::size_t{110} * 1024;
// Key numbers 0-4 are Raspberry Pi's ROM keys; 16 is the customer key.
inline constexpr std::uint32_t kCustomerKeyNumber = 16;
inline constexpr std::uint32_t kMaxBootcodeVersion = 32;

struct BootcodeSignatureBlock {
    std::size_t offset = 0;  // where the block starts = length of what it covers
    std::uint32_t keyNumber = 0;
    std::uint32_t version = 0;
    Bytes signature;  // 256 bytes
    Bytes pubkeyBin;  // 264 bytes: the key that made the signature
};

// Appends a signature block made by `signer` (whose public key is
// `publicKey`) to `loader`. Refuses a key number other than 0-4 or 16, a
// version over 32, or a result over 110 KiB (Errc::InvalidArgument /
// Errc::TooLarge); checks the signature with `publicKey` before returning.
Bytes signBootcode2712(ByteView loader, const Signer& signer, const RsaKey& publicKey,
                       std::uint32_t keyNumber = kCustomerKeyNumber, std::uint32_t version = 0);

// The signature blocks at the end of `loader`, outermost (last appended)
// first. A trailer whose length field does not equal its own offset ends the
// list, so an unsigned file gives an empty list.
std::vector<BootcodeSignatureBlock> bootcodeSignatures2712(ByteView loader);

// True if `block` is a valid signature of `loader`'s first block.offset + 12
// bytes by the key it carries.
bool verifyBootcodeBlock2712(ByteView loader, const BootcodeSignatureBlock& block);

}  // namespace rpiboot
