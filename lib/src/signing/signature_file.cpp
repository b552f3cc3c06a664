// `.sig` files: formatting, parsing, creation and verification (docs/protocol.md §9.1).
#include "rpiboot/signing/signature_file.hpp"

#include <cstdlib>
#include <ctime>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/rsa_key.hpp"

namespace rpiboot {

namespace {

constexpr std::size_t kSha256HexDigits = 64;
constexpr std::size_t kRsaHexDigits = kRsaSignatureSize * 2;  // 512

bool isHex(std::string_view s) {
    for (char c : s) {
        bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!digit) {
            return false;
        }
    }
    return true;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'F') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

bool parseDecimal(std::string_view s, std::int64_t& out) {
    if (s.empty() || s.size() > 18) {
        return false;
    }
    std::int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    out = v;
    return true;
}

}  // namespace

std::string SignatureFile::toText() const {
    std::string out = sha256 + "\nts: " + std::to_string(timestamp) + "\n";
    if (targetSoc) {
        out += "target-soc: " + *targetSoc + "\n";
    }
    if (rsa2048) {
        out += "rsa2048: " + toHex(*rsa2048) + "\n";
    }
    return out;
}

SignatureFile SignatureFile::parse(std::string_view text, std::string_view origin) {
    const std::string where(origin);
    if (text.find('\0') != std::string_view::npos) {
        throw Error(Errc::Corrupt, where + " is not a signature file (it holds binary data)");
    }
    SignatureFile sig;
    bool haveTs = false;
    std::size_t lineNo = 0;
    while (!text.empty()) {
        std::size_t eol = text.find('\n');
        std::string_view line = trim(text.substr(0, eol));
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        ++lineNo;
        if (lineNo == 1) {
            if (line.size() != kSha256HexDigits || !isHex(line)) {
                throw Error(Errc::Corrupt, where +
                                               " is not a signature file: its first line must be "
                                               "a SHA-256 digest of 64 hex digits");
            }
            sig.sha256 = lower(line);
            continue;
        }
        if (line.empty()) {
            continue;
        }
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            throw Error(Errc::Corrupt, where + " line " + std::to_string(lineNo) +
                                           " is not of the form 'name: value'");
        }
        std::string_view key = trim(line.substr(0, colon));
        std::string_view value = trim(line.substr(colon + 1));
        if (key == "ts") {
            if (!parseDecimal(value, sig.timestamp)) {
                throw Error(Errc::Corrupt, where +
                                               " has a 'ts:' line that is not a number of "
                                               "seconds");
            }
            haveTs = true;
        } else if (key == "target-soc") {
            sig.targetSoc = std::string(value);
        } else if (key == "rsa2048") {
            if (!isHex(value)) {
                throw Error(Errc::Corrupt,
                            where +
                                " has an rsa2048 signature with characters that are not hex "
                                "digits");
            }
            if (value.size() != kRsaHexDigits) {
                throw Error(Errc::Corrupt,
                            where + " has an rsa2048 signature of " + std::to_string(value.size()) +
                                " hex digits instead of " + std::to_string(kRsaHexDigits) +
                                (value.size() < kRsaHexDigits ? " (truncated)" : ""));
            }
            sig.rsa2048 = fromHex(value, where + " rsa2048");
        }
        // Other fields are ignored, as newer tooling may add some.
    }
    if (lineNo == 0) {
        throw Error(Errc::Corrupt, where + " is empty, not a signature file");
    }
    if (!haveTs) {
        throw Error(Errc::Corrupt, where + " has no 'ts:' line (truncated signature file?)");
    }
    return sig;
}

std::int64_t signatureTimestamp() {
    if (const char* env = std::getenv("SOURCE_DATE_EPOCH"); env != nullptr && *env != '\0') {
        std::int64_t value = 0;
        if (!parseDecimal(env, value)) {
            throw Error(Errc::InvalidArgument,
                        std::string("SOURCE_DATE_EPOCH is set to '") + env +
                            "', which is not a number of seconds since 1970");
        }
        return value;
    }
    return static_cast<std::int64_t>(std::time(nullptr));
}

SignatureFile makeSignatureFile(ByteView data, std::int64_t timestamp, const Signer* signer,
                                std::optional<std::string> targetSoc) {
    if (targetSoc && *targetSoc != "2711" && *targetSoc != "2712") {
        throw Error(Errc::InvalidArgument,
                    "target SoC '" + *targetSoc + "' is not one of 2711 or 2712");
    }
    SignatureFile sig;
    sig.sha256 = sha256Hex(data);
    sig.timestamp = timestamp;
    sig.targetSoc = std::move(targetSoc);
    if (signer != nullptr) {
        sig.rsa2048 = signer->sign(data);
    }
    return sig;
}

void verifyDigest(ByteView data, const SignatureFile& sig, std::string_view dataName,
                  std::string_view sigName) {
    std::string actual = sha256Hex(data);
    if (actual != lower(sig.sha256)) {
        throw Error(Errc::Crypto, std::string(dataName) + " does not match " +
                                      std::string(sigName) + ": its SHA-256 is " + actual +
                                      " but the signature file records " + sig.sha256 +
                                      " (file changed or wrong signature file)");
    }
}

void verifySignatureFile(ByteView data, const SignatureFile& sig, const RsaKey& key,
                         std::string_view dataName, std::string_view sigName) {
    if (!sig.rsa2048) {
        throw Error(Errc::Crypto, std::string(sigName) +
                                      " has no rsa2048 line: it is an unsigned digest, so " +
                                      std::string(dataName) + " cannot be verified with a key");
    }
    verifyDigest(data, sig, dataName, sigName);
    if (!key.verify(data, *sig.rsa2048)) {
        throw Error(Errc::Crypto, "the rsa2048 signature in " + std::string(sigName) +
                                      " does not verify for " + std::string(dataName) +
                                      " with the public key " + key.origin() +
                                      " (signed with another key, or the signature was altered)");
    }
}

KeySigner::KeySigner(RsaKey key) : key_(std::move(key)) {
    if (!key_.hasPrivateKey()) {
        throw Error(Errc::Crypto,
                    key_.origin() + " is a public key; signing needs the private key");
    }
}

Bytes KeySigner::sign(ByteView data) const {
    return key_.sign(data);
}

}  // namespace rpiboot
