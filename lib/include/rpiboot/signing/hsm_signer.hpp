// Signing through an external program (an HSM wrapper).
#pragma once

#include <chrono>
#include <filesystem>

#include "rpiboot/signing/rsa_key.hpp"

namespace rpiboot {

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

}  // namespace rpiboot
