// Keys kept in a PKCS#11 token (`pkcs11:` URIs), through OpenSSL's pkcs11
// engine, and the choice between such a key and a PEM file.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "rpiboot/signing/rsa_key.hpp"

namespace rpiboot {

// True for an RFC 7512 PKCS#11 URI ("pkcs11:token=...;object=...").
bool isPkcs11Uri(std::string_view keySpec) noexcept;

// Signs with an RSA-2048 private key that stays inside a PKCS#11 token,
// through OpenSSL's pkcs11 engine and the token's PKCS#11 module (for
// example SoftHSM2's libsofthsm2.so). The URI may carry the PIN as
// `pin-value=`. The key must be RSA-2048; its public half is read from the
// token. Throws Errc::Crypto naming the URI (without the PIN) when the engine,
// the module or the key cannot be loaded. Signing is serialised.
class Pkcs11Signer final : public Signer {
  public:
    Pkcs11Signer(std::string uri, std::filesystem::path module);
    ~Pkcs11Signer() override;
    Pkcs11Signer(const Pkcs11Signer&) = delete;
    Pkcs11Signer& operator=(const Pkcs11Signer&) = delete;

    Bytes sign(ByteView data) const override;
    const RsaKey* publicKey() const noexcept override;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The key of a tool option or profile: a `pkcs11:` URI (through `module`,
// required then) or the path of an unencrypted PEM private key.
std::unique_ptr<Signer> openSigningKey(const std::string& keySpec,
                                       const std::filesystem::path& pkcs11Module);
// The URI without any `pin-value` attribute, for messages and logs.
std::string redactPkcs11Uri(std::string_view uri);

}  // namespace rpiboot
