// SHA-256 digests and RSA-2048 keys (docs/protocol.md §9).
//
// Everything works on byte buffers so the daemon can sign pieeprom.bin,
// bootconf.txt or boot.img in memory; file helpers are thin wrappers. A key
// is only ever accepted if it is RSA with a 2048-bit modulus, because that is
// all the Raspberry Pi bootloader can check. This module must never write a
// private key anywhere, never log key material, and never accept a signature
// without checking it against the bytes it claims to cover.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "rpiboot/signing/bytes_io.hpp"

namespace rpiboot {

// The only key size the bootloader verifies (docs/protocol.md §9.2).
inline constexpr int kRsaKeyBits = 2048;
inline constexpr std::size_t kRsaSignatureSize = kRsaKeyBits / 8;  // 256
// pubkey.bin: modulus (256 bytes LE) then exponent (8 bytes LE), docs/protocol.md §10.4.
inline constexpr std::size_t kPubkeyBinSize = kRsaSignatureSize + 8;  // 264

std::array<std::uint8_t, 32> sha256(ByteView data);
std::string sha256Hex(ByteView data);  // 64 lower-case hex digits

// An RSA-2048 key, public or private. Loading anything else (another size,
// another algorithm, an encrypted PEM) throws Errc::Crypto with the reason.
class RsaKey {
  public:
    // `origin` names the key in error messages ("key.pem", "pubkey.bin in pieeprom.bin").
    static RsaKey fromPem(std::string_view pem, std::string_view origin);
    static RsaKey loadPem(const std::filesystem::path& path);
    // The 264-byte bootloader encoding (modulus LE, exponent LE).
    static RsaKey fromPubkeyBin(ByteView pubkeyBin, std::string_view origin);

    RsaKey(RsaKey&&) noexcept;
    RsaKey& operator=(RsaKey&&) noexcept;
    ~RsaKey();

    bool hasPrivateKey() const noexcept { return hasPrivate_; }
    const std::string& origin() const noexcept { return origin_; }

    // RSASSA-PKCS1-v1_5 with SHA-256 over `data` (what `openssl dgst -sha256
    // -sign` produces). Throws Errc::Crypto if this is a public key.
    Bytes sign(ByteView data) const;
    // True only if `signature` is a valid PKCS#1 v1.5 SHA-256 signature of `data`.
    bool verify(ByteView data, ByteView signature) const;
    // The bootloader's pubkey.bin encoding of the public half.
    Bytes pubkeyBin() const;
    std::string publicPem() const;

  private:
    struct Impl;
    RsaKey(std::unique_ptr<Impl> impl, std::string origin, bool hasPrivate);
    std::unique_ptr<Impl> impl_;
    std::string origin_;
    bool hasPrivate_ = false;
};

// Produces an `rsa2048` signature (256 bytes) over a buffer.
class Signer {
  public:
    virtual ~Signer() = default;
    virtual Bytes sign(ByteView data) const = 0;
    // The public half of the signing key when the signer knows it (a PEM
    // private key, a PKCS#11 token); nullptr for an HSM wrapper.
    virtual const RsaKey* publicKey() const noexcept { return nullptr; }
};

}  // namespace rpiboot
