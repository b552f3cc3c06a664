// BCM2712 loader signature blocks (protocol.md §10.6).
#include "rpiboot/signing/bootcode_signature.hpp"

#include <string>

#include "rpiboot/core/error.hpp"

namespace rpiboot {

namespace {

void appendLe32(Bytes& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
}

std::uint32_t readLe32(ByteView b, std::size_t at) {
    return std::uint32_t{b[at]} | (std::uint32_t{b[at + 1]} << 8) |
           (std::uint32_t{b[at + 2]} << 16) | (std::uint32_t{b[at + 3]} << 24);
}

constexpr std::size_t kSignedHeader = 12;  // length, key number, version

}  // namespace

Bytes signBootcode2712(ByteView loader, const Signer& signer, const RsaKey& publicKey,
                       std::uint32_t keyNumber, std::uint32_t version) {
    if (keyNumber > 4 && keyNumber != kCustomerKeyNumber) {
        throw Error(Errc::InvalidArgument, "key number " + std::to_string(keyNumber) +
                                               " is not a ROM key (0-4) or the customer key (16)");
    }
    if (version > kMaxBootcodeVersion) {
        throw Error(Errc::InvalidArgument, "version " + std::to_string(version) +
                                               " is out of range: the anti-rollback version is "
                                               "0-32");
    }
    const std::size_t total = loader.size() + kBootcodeSignatureBlockSize2712;
    if (total > kMaxSignedBootcodeSize) {
        throw Error(Errc::TooLarge, "the signed loader would be " + std::to_string(total) +
                                        " bytes; the boot ROM accepts at most " +
                                        std::to_string(kMaxSignedBootcodeSize));
    }
    Bytes out(loader.begin(), loader.end());
    out.reserve(total);
    appendLe32(out, static_cast<std::uint32_t>(loader.size()));
    appendLe32(out, keyNumber);
    appendLe32(out, version);
    const Bytes signature = signer.sign(out);
    if (signature.size() != kRsaSignatureSize || !publicKey.verify(out, signature)) {
        throw Error(Errc::Crypto, "the loader's signature does not verify with " +
                                      publicKey.origin() + "; wrong public key for this signer?");
    }
    out.insert(out.end(), signature.begin(), signature.end());
    const Bytes pub = publicKey.pubkeyBin();
    out.insert(out.end(), pub.begin(), pub.end());
    return out;
}

std::vector<BootcodeSignatureBlock> bootcodeSignatures2712(ByteView loader) {
    std::vector<BootcodeSignatureBlock> blocks;
    std::size_t end = loader.size();
    while (end >= kBootcodeSignatureBlockSize2712) {
        const std::size_t at = end - kBootcodeSignatureBlockSize2712;
        if (readLe32(loader, at) != at) {
            break;
        }
        BootcodeSignatureBlock b;
        b.offset = at;
        b.keyNumber = readLe32(loader, at + 4);
        b.version = readLe32(loader, at + 8);
        const auto* sig = loader.data() + at + kSignedHeader;
        b.signature.assign(sig, sig + kRsaSignatureSize);
        b.pubkeyBin.assign(sig + kRsaSignatureSize, sig + kRsaSignatureSize + kPubkeyBinSize);
        blocks.push_back(std::move(b));
        end = at;
    }
    return blocks;
}

bool verifyBootcodeBlock2712(ByteView loader, const BootcodeSignatureBlock& block) {
    if (block.offset + kBootcodeSignatureBlockSize2712 > loader.size()) {
        return false;
    }
    try {
        const RsaKey key = RsaKey::fromPubkeyBin(block.pubkeyBin, "the loader's signature block");
        return key.verify(loader.subspan(0, block.offset + kSignedHeader), block.signature);
    } catch (const Error&) {
        return false;
    }
}

}  // namespace rpiboot
