#include "digest.hpp"

#include "rpiboot/core/error.hpp"

namespace rpiboot::storage {

Digest::Digest(Kind kind)
    : ctx_(EVP_MD_CTX_new()), md_(kind == Kind::Sha256 ? EVP_sha256() : EVP_sha1()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, md_, nullptr) != 1) {
        EVP_MD_CTX_free(ctx_);
        throw Error(Errc::Crypto, "cannot start a digest");
    }
}

Digest::~Digest() {
    EVP_MD_CTX_free(ctx_);
}

void Digest::update(const std::uint8_t* data, std::size_t size) {
    if (size != 0 && EVP_DigestUpdate(ctx_, data, size) != 1) {
        throw Error(Errc::Crypto, "digest update failed");
    }
}

std::string Digest::finishHex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_, out, &len) != 1 || EVP_DigestInit_ex(ctx_, md_, nullptr) != 1) {
        throw Error(Errc::Crypto, "digest final failed");
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 * len);
    for (unsigned int i = 0; i < len; ++i) {
        hex.push_back(kHex[out[i] >> 4]);
        hex.push_back(kHex[out[i] & 15]);
    }
    return hex;
}

}  // namespace rpiboot::storage
