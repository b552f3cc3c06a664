// `.sig` files (docs/protocol.md §9.1): making them, with or without a signer, and
// checking them against the bytes they cover.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rpiboot/signing/rsa_key.hpp"

namespace rpiboot {

// Signs with a private key held in this process.
class KeySigner final : public Signer {
  public:
    explicit KeySigner(RsaKey key);  // throws Errc::Crypto unless it is a private key
    Bytes sign(ByteView data) const override;
    const RsaKey* publicKey() const noexcept override { return &key_; }
    const RsaKey& key() const noexcept { return key_; }

  private:
    RsaKey key_;
};

// A `.sig` file (docs/protocol.md §9.1): "<sha256 hex>\nts: N\n[target-soc: S\n][rsa2048: HEX\n]".
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
