#include "sha256.hpp"

#include <openssl/evp.h>

#include <cctype>

#include "rpiboot/core/error.hpp"

namespace virtualpi::detail {

struct Sha256::Ctx {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
};

namespace {
void initOrThrow(EVP_MD_CTX* md) {
    if (md == nullptr || EVP_DigestInit_ex(md, EVP_sha256(), nullptr) != 1) {
        throw rpiboot::Error(rpiboot::Errc::Crypto, "virtual board: cannot start SHA-256");
    }
}
}  // namespace

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
    initOrThrow(ctx_->md.get());
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const std::uint8_t> bytes) {
    if (!bytes.empty()) {
        EVP_DigestUpdate(ctx_->md.get(), bytes.data(), bytes.size());
    }
}

std::string Sha256::finishHex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx_->md.get(), digest, &length);
    initOrThrow(ctx_->md.get());
    return toHex({digest, length});
}

std::string toHex(std::span<const std::uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (std::uint8_t b : bytes) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 0x0f]);
    }
    return out;
}

std::string normaliseSha256(std::string_view hex, std::string_view what) {
    std::string out;
    for (char c : hex) {
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    const bool valid =
        out.size() == 64 && out.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!valid) {
        throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                             "scenario: " + std::string(what) +
                                 " is not a SHA-256 of 64 hex digits: \"" + std::string(hex) +
                                 "\"");
    }
    return out;
}

}  // namespace virtualpi::detail
