// RSA-2048 keys through OpenSSL 3 (EVP interfaces only, no deprecated RSA*).
#include "rpiboot/signing/rsa_key.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/bytes_io.hpp"

namespace rpiboot {

namespace {

template <auto Free>
struct Deleter {
    template <typename T>
    void operator()(T* p) const noexcept {
        Free(p);
    }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using DecoderCtxPtr = std::unique_ptr<OSSL_DECODER_CTX, Deleter<OSSL_DECODER_CTX_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;

// OpenSSL keeps a per-thread error queue; take its newest entry as the reason
// and leave the queue empty for the next caller.
std::string opensslReason() {
    unsigned long code = ERR_peek_last_error();
    std::string reason;
    if (code != 0) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        reason = buf;
    }
    ERR_clear_error();
    return reason.empty() ? std::string("unknown OpenSSL error") : reason;
}

[[noreturn]] void cryptoFailure(const std::string& what) {
    throw Error(Errc::Crypto, what + ": " + opensslReason());
}

BnPtr getBn(const EVP_PKEY* pkey, const char* name) {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) {
        ERR_clear_error();
        return nullptr;
    }
    return BnPtr(bn);
}

// A passphrase callback that refuses, so an encrypted PEM fails instead of
// prompting on a terminal the daemon does not have.
int refusePassphrase(char*, size_t, size_t*, const OSSL_PARAM[], void*) {
    return 0;
}

}  // namespace

struct RsaKey::Impl {
    PkeyPtr pkey;
};

RsaKey::RsaKey(std::unique_ptr<Impl> impl, std::string origin, bool hasPrivate)
    : impl_(std::move(impl)), origin_(std::move(origin)), hasPrivate_(hasPrivate) {}
RsaKey::RsaKey(RsaKey&&) noexcept = default;
RsaKey& RsaKey::operator=(RsaKey&&) noexcept = default;
RsaKey::~RsaKey() = default;

namespace {

// Accepts a decoded key only if it is plain RSA with a 2048-bit modulus.
void requireRsa2048(const EVP_PKEY* pkey, std::string_view origin) {
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        const char* type = EVP_PKEY_get0_type_name(pkey);
        throw Error(Errc::Crypto, std::string(origin) + " holds a key of type " +
                                      (type ? type : "unknown") +
                                      "; only RSA-2048 keys are supported by the Raspberry Pi "
                                      "bootloader");
    }
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits != kRsaKeyBits) {
        throw Error(Errc::Crypto, std::string(origin) + " is an RSA-" + std::to_string(bits) +
                                      " key; only RSA-2048 keys are supported by the "
                                      "Raspberry Pi bootloader");
    }
}

}  // namespace

RsaKey RsaKey::fromPem(std::string_view pem, std::string_view origin) {
    EVP_PKEY* raw = nullptr;
    DecoderCtxPtr dctx(
        OSSL_DECODER_CTX_new_for_pkey(&raw, "PEM", nullptr, nullptr, 0, nullptr, nullptr));
    if (!dctx) {
        cryptoFailure("cannot set up a PEM decoder for " + std::string(origin));
    }
    OSSL_DECODER_CTX_set_passphrase_cb(dctx.get(), refusePassphrase, nullptr);
    auto* data = reinterpret_cast<const unsigned char*>(pem.data());
    std::size_t len = pem.size();
    if (OSSL_DECODER_from_data(dctx.get(), &data, &len) != 1 || raw == nullptr) {
        ERR_clear_error();
        throw Error(Errc::Crypto, std::string(origin) +
                                      " does not hold a readable key (expected an unencrypted "
                                      "PEM RSA-2048 public or private key)");
    }
    PkeyPtr pkey(raw);
    requireRsa2048(pkey.get(), origin);
    bool hasPrivate = getBn(pkey.get(), OSSL_PKEY_PARAM_RSA_D) != nullptr;
    auto impl = std::make_unique<Impl>();
    impl->pkey = std::move(pkey);
    return RsaKey(std::move(impl), std::string(origin), hasPrivate);
}

RsaKey RsaKey::loadPem(const std::filesystem::path& path) {
    Bytes bytes = readFileBytes(path);
    std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return fromPem(text, path.string());
}

RsaKey RsaKey::fromPubkeyBin(ByteView pubkeyBin, std::string_view origin) {
    if (pubkeyBin.size() != kPubkeyBinSize) {
        throw Error(Errc::Corrupt, std::string(origin) + " is " + std::to_string(pubkeyBin.size()) +
                                       " bytes; a pubkey.bin is " + std::to_string(kPubkeyBinSize) +
                                       " bytes");
    }
    BnPtr n(BN_lebin2bn(pubkeyBin.data(), static_cast<int>(kRsaSignatureSize), nullptr));
    BnPtr e(BN_lebin2bn(pubkeyBin.data() + kRsaSignatureSize, 8, nullptr));
    if (!n || !e) {
        cryptoFailure("cannot read the modulus of " + std::string(origin));
    }
    if (BN_is_zero(e.get()) || BN_num_bits(n.get()) != kRsaKeyBits) {
        throw Error(Errc::Crypto,
                    std::string(origin) + " does not hold an RSA-2048 public key (modulus of " +
                        std::to_string(BN_num_bits(n.get())) + " bits, or a zero exponent)");
    }
    ParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
        cryptoFailure("cannot build a key from " + std::string(origin));
    }
    ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
        cryptoFailure("cannot build a key from " + std::string(origin));
    }
    auto impl = std::make_unique<Impl>();
    impl->pkey.reset(raw);
    return RsaKey(std::move(impl), std::string(origin), false);
}

Bytes RsaKey::sign(ByteView data) const {
    if (!hasPrivate_) {
        throw Error(Errc::Crypto, "cannot sign with " + origin_ +
                                      ": it is a public key, a private key is needed");
    }
    MdCtxPtr md(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;  // owned by md
    if (!md || EVP_DigestSignInit(md.get(), &pctx, EVP_sha256(), nullptr, impl_->pkey.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
        cryptoFailure("cannot start signing with " + origin_);
    }
    std::size_t len = 0;
    if (EVP_DigestSign(md.get(), nullptr, &len, data.data(), data.size()) != 1) {
        cryptoFailure("cannot sign with " + origin_);
    }
    Bytes sig(len);
    if (EVP_DigestSign(md.get(), sig.data(), &len, data.data(), data.size()) != 1) {
        cryptoFailure("cannot sign with " + origin_);
    }
    sig.resize(len);
    if (sig.size() != kRsaSignatureSize) {
        throw Error(Errc::Crypto, "signing with " + origin_ + " gave " +
                                      std::to_string(sig.size()) + " bytes instead of 256");
    }
    return sig;
}

bool RsaKey::verify(ByteView data, ByteView signature) const {
    if (signature.size() != kRsaSignatureSize) {
        return false;
    }
    MdCtxPtr md(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;  // owned by md
    if (!md ||
        EVP_DigestVerifyInit(md.get(), &pctx, EVP_sha256(), nullptr, impl_->pkey.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
        cryptoFailure("cannot start verifying with " + origin_);
    }
    int rc =
        EVP_DigestVerify(md.get(), signature.data(), signature.size(), data.data(), data.size());
    ERR_clear_error();
    return rc == 1;
}

Bytes RsaKey::pubkeyBin() const {
    BnPtr n = getBn(impl_->pkey.get(), OSSL_PKEY_PARAM_RSA_N);
    BnPtr e = getBn(impl_->pkey.get(), OSSL_PKEY_PARAM_RSA_E);
    if (!n || !e) {
        throw Error(Errc::Crypto, "cannot read the modulus and exponent of " + origin_);
    }
    Bytes out(kPubkeyBinSize);
    if (BN_bn2lebinpad(n.get(), out.data(), static_cast<int>(kRsaSignatureSize)) < 0 ||
        BN_bn2lebinpad(e.get(), out.data() + kRsaSignatureSize, 8) < 0) {
        cryptoFailure("cannot encode the public key of " + origin_);
    }
    return out;
}

std::string RsaKey::publicPem() const {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), impl_->pkey.get()) != 1) {
        cryptoFailure("cannot write the public key of " + origin_);
    }
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

std::array<std::uint8_t, 32> sha256(ByteView data) {
    std::array<std::uint8_t, 32> out{};
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
        len != out.size()) {
        cryptoFailure("cannot compute a SHA-256 digest");
    }
    return out;
}

std::string sha256Hex(ByteView data) {
    return toHex(sha256(data));
}

}  // namespace rpiboot
