// The simulator's secure-boot checks (see secure_boot.hpp).
#include "secure_boot.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <map>
#include <memory>

#include "sha256.hpp"

namespace virtualpi::detail {

namespace {

constexpr std::size_t kBlock = 532;   // 2712 signature block
constexpr std::size_t kPubkey = 264;  // pubkey.bin
constexpr std::size_t kRsaBytes = 256;

std::uint32_t le32(ByteSpan b, std::size_t at) {
    return std::uint32_t{b[at]} | (std::uint32_t{b[at + 1]} << 8) |
           (std::uint32_t{b[at + 2]} << 16) | (std::uint32_t{b[at + 3]} << 24);
}

std::uint32_t be32(ByteSpan b, std::size_t at) {
    return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
           (std::uint32_t{b[at + 2]} << 8) | std::uint32_t{b[at + 3]};
}

// RSASSA-PKCS1-v1_5 / SHA-256 with the key of a pubkey.bin (n LE, e LE).
bool rsaVerify(ByteSpan pubkeyBin, ByteSpan data, ByteSpan signature) {
    if (pubkeyBin.size() != kPubkey || signature.size() != kRsaBytes) {
        return false;
    }
    std::unique_ptr<BIGNUM, decltype(&BN_free)> n(BN_lebin2bn(pubkeyBin.data(), kRsaBytes, nullptr),
                                                  BN_free);
    std::unique_ptr<BIGNUM, decltype(&BN_free)> e(
        BN_lebin2bn(pubkeyBin.data() + kRsaBytes, 8, nullptr), BN_free);
    std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(),
                                                                        OSSL_PARAM_BLD_free);
    if (!n || !e || !bld || BN_is_zero(e.get()) ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
        return false;
    }
    std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(
        OSSL_PARAM_BLD_to_param(bld.get()), OSSL_PARAM_free);
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
        EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr), EVP_PKEY_CTX_free);
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
        return false;
    }
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(raw, EVP_PKEY_free);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_PKEY_CTX* pctx = nullptr;
    if (!md || EVP_DigestVerifyInit(md.get(), &pctx, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
        return false;
    }
    return EVP_DigestVerify(md.get(), signature.data(), signature.size(), data.data(),
                            data.size()) == 1;
}

std::vector<std::uint8_t> fromHex(const std::string& hex) {
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

// Named files of the configuration partition [64 KiB, 64 KiB + 988 KiB).
std::optional<std::map<std::string, std::vector<std::uint8_t>>> eepromFiles(ByteSpan image) {
    if (image.size() != 512 * 1024 && image.size() != 2 * 1024 * 1024) {
        return std::nullopt;
    }
    std::map<std::string, std::vector<std::uint8_t>> files;
    std::size_t at = 0;
    while (at + 8 <= image.size()) {
        const std::uint32_t magic = be32(image, at);
        if (magic == 0 || magic == 0xffffffff) {
            break;
        }
        if ((magic & 0xfffff00f) != 0x55aaf00f) {
            return std::nullopt;
        }
        const std::uint32_t length = be32(image, at + 4);
        if (length > image.size() - at - 8) {
            return std::nullopt;
        }
        if (magic == 0x55aaf11f && length >= 16 && at >= 64 * 1024 && at < (64 + 988) * 1024) {
            std::string name(reinterpret_cast<const char*>(image.data() + at + 8), 12);
            name = name.substr(0, name.find('\0'));
            const auto* body = image.data() + at + 24;
            files[name].assign(body, body + (length - 16));
        }
        at = (at + 8 + length + 7) & ~std::size_t{7};
    }
    return files;
}

}  // namespace

std::string sha256Of(ByteSpan bytes) {
    Sha256 h;
    h.update(bytes);
    return h.finishHex();
}

std::string check2712Loader(ByteSpan loader, const std::string& otpKeyHash) {
    if (loader.size() < kBlock) {
        return "the loader is too short to carry a signature block";
    }
    const std::size_t at = loader.size() - kBlock;
    if (le32(loader, at) != at) {
        return "the loader has no customer signature block (secure boot needs a loader "
               "counter-signed with the key in OTP)";
    }
    const std::uint32_t keyNumber = le32(loader, at + 4);
    if (keyNumber != 16) {
        return "the loader's outer signature block is by ROM key " + std::to_string(keyNumber) +
               ", not the customer key (16): it is not counter-signed";
    }
    const ByteSpan pubkey = loader.subspan(at + 12 + kRsaBytes, kPubkey);
    if (sha256Of(pubkey) != otpKeyHash) {
        return "the loader is counter-signed with key " + sha256Of(pubkey) + ", but OTP holds " +
               otpKeyHash;
    }
    if (!rsaVerify(pubkey, loader.subspan(0, at + 12), loader.subspan(at + 12, kRsaBytes))) {
        return "the loader's customer signature does not verify";
    }
    return {};
}

std::string checkSigFile(ByteSpan data, const std::string& sigText, ByteSpan pubkeyBin) {
    const std::string digest = sigText.substr(0, sigText.find('\n'));
    if (digest != sha256Of(data)) {
        return "its SHA-256 line does not match the data";
    }
    const auto pos = sigText.find("rsa2048: ");
    if (pos == std::string::npos) {
        return "it has no rsa2048 signature";
    }
    std::string hex = sigText.substr(pos + 9);
    hex = hex.substr(0, hex.find_first_not_of("0123456789abcdefABCDEF"));
    if (hex.size() != 2 * kRsaBytes) {
        return "its rsa2048 signature is not 256 bytes";
    }
    if (!rsaVerify(pubkeyBin, data, fromHex(hex))) {
        return "its rsa2048 signature does not verify with the board's key";
    }
    return {};
}

ProvisionOutcome applyRecovery(SecureBootState& state, const std::string& configTxt,
                               ByteSpan pieeprom) {
    ProvisionOutcome out;
    auto setting = [&](const std::string& key) {
        std::size_t at = 0;
        std::string value;
        while (at < configTxt.size()) {
            std::size_t end = configTxt.find('\n', at);
            if (end == std::string::npos) {
                end = configTxt.size();
            }
            const std::string line = configTxt.substr(at, end - at);
            if (line.rfind(key + "=", 0) == 0) {
                value = line.substr(key.size() + 1);  // the last one wins
            }
            at = end + 1;
        }
        return value == "1";
    };
    const auto files = eepromFiles(pieeprom);
    if (!files) {
        out.eepromUpdate = "failed";
        out.provision = "failed";
        out.notes.push_back("pieeprom.bin is not an EEPROM image");
        return out;
    }
    const auto file = [&](const char* name) -> std::vector<std::uint8_t> {
        const auto it = files->find(name);
        return it == files->end() ? std::vector<std::uint8_t>{} : it->second;
    };
    const auto pubkey = file("pubkey.bin");
    const auto conf = file("bootconf.txt");
    const auto sigBytes = file("bootconf.sig");
    const std::string sigText(sigBytes.begin(), sigBytes.end());
    const bool keyPresent =
        pubkey.size() >= kPubkey && std::any_of(pubkey.begin(), pubkey.begin() + kPubkey,
                                                [](std::uint8_t b) { return b != 0; });
    const ByteSpan key = keyPresent ? ByteSpan(pubkey).first(kPubkey) : ByteSpan{};
    const std::string confProblem =
        keyPresent ? checkSigFile(conf, sigText, key) : std::string("the image has no pubkey.bin");
    if (state.locked()) {
        // A locked board's firmware keeps only images signed with its own key.
        if (!keyPresent || sha256Of(key) != state.otpKeyHash || !confProblem.empty()) {
            out.eepromUpdate = "failed";
            out.provision = "failed";
            out.notes.push_back(
                "EEPROM update refused: the image is not signed with the key in "
                "OTP (" +
                (confProblem.empty() ? std::string("another key") : confProblem) + ")");
            return out;
        }
    }
    state.eepromPubkey = keyPresent ? toHex(key) : std::string();
    if (setting("program_pubkey")) {
        if (!keyPresent || !confProblem.empty()) {
            out.provision = "failed";
            out.notes.push_back("program_pubkey: not programmed: bootconf.sig " + confProblem);
        } else if (state.locked() && state.otpKeyHash != sha256Of(key)) {
            out.provision = "failed";
            out.notes.push_back("program_pubkey: OTP already holds another key " +
                                state.otpKeyHash);
        } else if (state.locked()) {
            out.notes.push_back("program_pubkey: key " + state.otpKeyHash + " already programmed");
        } else {
            state.otpKeyHash = sha256Of(key);
            out.notes.push_back("program_pubkey: programmed key " + state.otpKeyHash + " into OTP");
        }
    }
    if (out.provision == "success") {
        if (setting("revoke_devkey") && !state.devkeyRevoked) {
            state.devkeyRevoked = true;
            out.notes.push_back("revoke_devkey: development key revoked");
        }
        if (setting("program_jtag_lock") && !state.jtagLocked) {
            state.jtagLocked = true;
            out.notes.push_back("program_jtag_lock: JTAG locked");
        }
    }
    return out;
}

}  // namespace virtualpi::detail
