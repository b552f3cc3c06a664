// Incremental SHA-256 for the board's records (OpenSSL EVP). Internal.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace virtualpi::detail {

class Sha256 {
  public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;
    void update(std::span<const std::uint8_t> bytes);
    // Lower-case hex of everything so far; the hasher restarts afterwards.
    std::string finishHex();

  private:
    struct Ctx;
    std::unique_ptr<Ctx> ctx_;
};

std::string toHex(std::span<const std::uint8_t> bytes);
// Lower-cases and checks a 64-digit hash; throws InvalidArgument naming `what`.
std::string normaliseSha256(std::string_view hex, std::string_view what);

}  // namespace virtualpi::detail
