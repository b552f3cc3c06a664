// Signing with a key held in a PKCS#11 token through OpenSSL's pkcs11 engine
// (libp11). Debian 12 ships the engine, not the pkcs11 provider, so this file
// uses the ENGINE interface that OpenSSL 3 still provides but marks deprecated.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "rpiboot/signing/pkcs11_signer.hpp"

#include <openssl/bio.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cctype>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot/signing/signature_file.hpp"

namespace rpiboot {

namespace {

std::string lastOpensslError() {
    unsigned long code = ERR_peek_last_error();
    std::string reason = "unknown OpenSSL error";
    if (code != 0) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        reason = buf;
    }
    ERR_clear_error();
    return reason;
}

}  // namespace

bool isPkcs11Uri(std::string_view keySpec) noexcept {
    return keySpec.substr(0, 7) == "pkcs11:";
}

std::string redactPkcs11Uri(std::string_view uri) {
    // Attributes are separated by ';' in the path and '&' in the query.
    std::string out;
    std::size_t pos = 0;
    while (pos <= uri.size()) {
        std::size_t end = uri.find_first_of(";&?", pos);
        if (end == std::string_view::npos) {
            end = uri.size();
        }
        std::string_view part = uri.substr(pos, end - pos);
        if (part.substr(0, 10) == "pin-value=") {
            out += "pin-value=***";
        } else {
            out += part;
        }
        if (end < uri.size()) {
            out += uri[end];
        }
        pos = end + 1;
    }
    return out;
}

namespace {

// Splits the PIN off a URI: `pin-value=PIN`, or `pin-source=file:PATH` (the
// first line of PATH). The engine then gets the URI without it, so its own
// diagnostics on stderr cannot show the PIN.
struct UriAndPin {
    std::string uri;
    std::optional<std::string> pin;
};

std::string percentDecode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() &&
            std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

std::vector<std::string_view> splitOn(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t end = text.find(separator, pos);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        if (end > pos) {
            parts.push_back(text.substr(pos, end - pos));
        }
        pos = end + 1;
    }
    return parts;
}

UriAndPin splitPin(std::string_view uri) {
    UriAndPin result;
    const std::size_t question = uri.find('?');
    const std::string_view path =
        uri.substr(7, question == std::string_view::npos ? std::string_view::npos : question - 7);
    const std::string_view query =
        question == std::string_view::npos ? std::string_view{} : uri.substr(question + 1);
    auto keep = [&](std::string_view attribute) {
        if (attribute.substr(0, 10) == "pin-value=") {
            result.pin = percentDecode(attribute.substr(10));
            return false;
        }
        if (attribute.substr(0, 16) == "pin-source=file:") {
            const Bytes bytes = readFileBytes(percentDecode(attribute.substr(16)));
            std::string text(bytes.begin(), bytes.end());
            result.pin = text.substr(0, text.find('\n'));
            return false;
        }
        return true;
    };
    result.uri = "pkcs11:";
    bool first = true;
    for (std::string_view a : splitOn(path, ';')) {
        if (keep(a)) {
            result.uri += (first ? "" : ";") + std::string(a);
            first = false;
        }
    }
    first = true;
    for (std::string_view a : splitOn(query, '&')) {
        if (keep(a)) {
            result.uri += (first ? "?" : "&") + std::string(a);
            first = false;
        }
    }
    return result;
}

}  // namespace

struct Pkcs11Signer::Impl {
    std::string uri;  // redacted, for messages
    ENGINE* engine = nullptr;
    bool initialised = false;
    EVP_PKEY* key = nullptr;
    std::optional<RsaKey> publicKey;
    std::mutex mutex;

    ~Impl() {
        if (key != nullptr) {
            EVP_PKEY_free(key);
        }
        if (engine != nullptr) {
            if (initialised) {
                ENGINE_finish(engine);
            }
            ENGINE_free(engine);
        }
    }

    [[noreturn]] void fail(const std::string& what) const {
        throw Error(Errc::Crypto, "PKCS#11 key " + uri + ": " + what + ": " + lastOpensslError());
    }
};

Pkcs11Signer::Pkcs11Signer(std::string uri, std::filesystem::path module)
    : impl_(std::make_unique<Impl>()) {
    impl_->uri = redactPkcs11Uri(uri);
    if (!isPkcs11Uri(uri)) {
        throw Error(Errc::InvalidArgument, impl_->uri + " is not a pkcs11: URI");
    }
    if (module.empty()) {
        throw Error(Errc::InvalidArgument,
                    "PKCS#11 key " + impl_->uri + ": no PKCS#11 module is configured");
    }
    std::error_code ec;
    if (!std::filesystem::is_regular_file(module, ec)) {
        throw Error(Errc::NotFound, "PKCS#11 key " + impl_->uri + ": the PKCS#11 module " +
                                        module.string() + " does not exist");
    }
    ENGINE_load_builtin_engines();
    impl_->engine = ENGINE_by_id("pkcs11");
    if (impl_->engine == nullptr) {
        impl_->fail("OpenSSL's pkcs11 engine is not installed (Debian: libengine-pkcs11-openssl)");
    }
    if (ENGINE_ctrl_cmd_string(impl_->engine, "MODULE_PATH", module.c_str(), 0) != 1) {
        impl_->fail("cannot use the PKCS#11 module " + module.string());
    }
    if (ENGINE_init(impl_->engine) != 1) {
        impl_->fail("cannot start the pkcs11 engine with " + module.string());
    }
    impl_->initialised = true;
    const UriAndPin split = splitPin(uri);
    if (split.pin && ENGINE_ctrl_cmd_string(impl_->engine, "PIN", split.pin->c_str(), 0) != 1) {
        impl_->fail("cannot pass the PIN to the pkcs11 engine");
    }
    impl_->key = ENGINE_load_private_key(impl_->engine, split.uri.c_str(), nullptr, nullptr);
    if (impl_->key == nullptr) {
        impl_->fail("cannot find the private key in the token (check the URI and its PIN)");
    }
    // The public half, as PEM, through the same checks as any other key.
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio == nullptr || PEM_write_bio_PUBKEY(bio, impl_->key) != 1) {
        BIO_free(bio);
        impl_->fail("cannot read the public key from the token");
    }
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<std::size_t>(len));
    BIO_free(bio);
    impl_->publicKey = RsaKey::fromPem(pem, impl_->uri);
}

Pkcs11Signer::~Pkcs11Signer() = default;

const RsaKey* Pkcs11Signer::publicKey() const noexcept {
    return impl_->publicKey ? &*impl_->publicKey : nullptr;
}

Bytes Pkcs11Signer::sign(ByteView data) const {
    std::lock_guard lock(impl_->mutex);
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    if (md == nullptr) {
        impl_->fail("out of memory");
    }
    EVP_PKEY_CTX* pctx = nullptr;  // owned by md
    Bytes sig;
    bool ok = EVP_DigestSignInit(md, &pctx, EVP_sha256(), nullptr, impl_->key) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    std::size_t len = 0;
    ok = ok && EVP_DigestSignUpdate(md, data.data(), data.size()) == 1 &&
         EVP_DigestSignFinal(md, nullptr, &len) == 1;
    if (ok) {
        sig.resize(len);
        ok = EVP_DigestSignFinal(md, sig.data(), &len) == 1;
        sig.resize(len);
    }
    EVP_MD_CTX_free(md);
    if (!ok) {
        impl_->fail("signing in the token failed");
    }
    if (sig.size() != kRsaSignatureSize || !impl_->publicKey->verify(data, sig)) {
        throw Error(Errc::Crypto, "PKCS#11 key " + impl_->uri +
                                      ": the token returned a signature that does not verify "
                                      "with its own public key");
    }
    return sig;
}

std::unique_ptr<Signer> openSigningKey(const std::string& keySpec,
                                       const std::filesystem::path& pkcs11Module) {
    if (isPkcs11Uri(keySpec)) {
        return std::make_unique<Pkcs11Signer>(keySpec, pkcs11Module);
    }
    return std::make_unique<KeySigner>(RsaKey::loadPem(keySpec));
}

}  // namespace rpiboot
