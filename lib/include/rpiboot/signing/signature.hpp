// Digests, RSA-2048 signatures and `.sig` files (protocol.md §9).
//
// Everything works on byte buffers so the daemon can sign pieeprom.bin,
// bootconf.txt or boot.img in memory; file helpers are thin wrappers. A key
// is only ever accepted if it is RSA with a 2048-bit modulus, because that is
// all the Raspberry Pi bootloader can check. This module must never write a
// private key anywhere, never log key material, and never accept a signature
// without checking it against the bytes it claims to cover.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rpiboot {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// The only key size the bootloader verifies (protocol.md §9).
inline constexpr int kRsaKeyBits = 2048;
inline constexpr std::size_t kRsaSignatureSize = kRsaKeyBits / 8;  // 256
// pubkey.bin: modulus (256 bytes LE) then exponent (8 bytes LE), protocol.md §10.
inline constexpr std::size_t kPubkeyBinSize = kRsaSignatureSize + 8;  // 264

std::array<std::uint8_t, 32> sha256(ByteView data);
std::string sha256Hex(ByteView data);  // 64 lower-case hex digits

std::string toHex(ByteView data);  // lower case
// Decodes hex (either case); throws Errc::Corrupt naming `what` on odd length
// or a non-hex digit.
Bytes fromHex(std::string_view hex, std::string_view what);

Bytes readFileBytes(const std::filesystem::path& path);  // Errc::NotFound / Errc::Io
// Writes through a temporary file in the same directory and renames it over
// `path`, so a reader never sees half a file.
void writeFileBytes(const std::filesystem::path& path, ByteView data);

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
};

// Signs with a private key held in this process.
class KeySigner final : public Signer {
  public:
    explicit KeySigner(RsaKey key);  // throws Errc::Crypto unless it is a private key
    Bytes sign(ByteView data) const override;
    const RsaKey& key() const noexcept { return key_; }

  private:
    RsaKey key_;
};

// Signs through an external program, as Raspberry Pi's tooling allows for
// HSMs: `WRAPPER -a rsa2048-sha256 FILE` must print the signature as hex on
// stdout and exit 0. In-memory data is written to a private temporary file
// for the call and removed afterwards.
class HsmSigner final : public Signer {
  public:
    explicit HsmSigner(std::filesystem::path wrapper,
                       std::chrono::milliseconds timeout = std::chrono::seconds(120));
    Bytes sign(ByteView data) const override;
    Bytes signFile(const std::filesystem::path& file) const;

  private:
    std::filesystem::path wrapper_;
    std::chrono::milliseconds timeout_;
};

// A `.sig` file (protocol.md §9): "<sha256 hex>\nts: N\n[target-soc: S\n][rsa2048: HEX\n]".
struct SignatureFile {
    std::string sha256;                    // 64 lower-case hex digits
    std::int64_t timestamp = 0;            // ts:
    std::optional<std::string> targetSoc;  // target-soc: 2711|2712
    std::optional<Bytes> rsa2048;          // 256 bytes when signed

    std::string toText() const;
    // Throws Errc::Corrupt naming `origin` when the text is not a .sig file,
    // including an rsa2048 line that is not exactly 512 hex digits.
    static SignatureFile parse(std::string_view text, std::string_view origin);
};

// SOURCE_DATE_EPOCH when set (Errc::InvalidArgument if it is not a number),
// otherwise the current time, in Unix seconds.
std::int64_t signatureTimestamp();

// Hash (and, with a signer, signature) of `data`. `targetSoc` must be empty,
// "2711" or "2712".
SignatureFile makeSignatureFile(ByteView data, std::int64_t timestamp,
                                const Signer* signer = nullptr,
                                std::optional<std::string> targetSoc = std::nullopt);

// Checks `sig` against `data`: the SHA-256 line must match, and the rsa2048
// line must be present and verify with `key`. Throws Errc::Crypto with a
// message naming `dataName` and `sigName` and the reason otherwise.
void verifySignatureFile(ByteView data, const SignatureFile& sig, const RsaKey& key,
                         std::string_view dataName, std::string_view sigName);
// Only the SHA-256 line (for unsigned digests such as pieeprom.sig).
void verifyDigest(ByteView data, const SignatureFile& sig, std::string_view dataName,
                  std::string_view sigName);

}  // namespace rpiboot
