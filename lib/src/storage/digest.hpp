// Incremental SHA-256 / SHA-1 over OpenSSL's EVP interface (storage-private).
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace rpiboot::storage {

class Digest {
  public:
    enum class Kind { Sha256, Sha1 };
    explicit Digest(Kind kind = Kind::Sha256);
    ~Digest();
    Digest(const Digest&) = delete;
    Digest& operator=(const Digest&) = delete;

    void update(const std::uint8_t* data, std::size_t size);
    // Lower-case hex of the digest; the object starts over afterwards.
    std::string finishHex();

  private:
    EVP_MD_CTX* ctx_;
    const EVP_MD* md_;
};

}  // namespace rpiboot::storage
