// EEPROM image section chain and in-place file replacement (docs/protocol.md §10).
#include "rpiboot/image/eeprom_image.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/signature_file.hpp"

namespace rpiboot {

namespace {

std::uint32_t readBe32(const Bytes& b, std::size_t at) {
    return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
           (std::uint32_t{b[at + 2]} << 8) | std::uint32_t{b[at + 3]};
}

void writeBe32(Bytes& b, std::size_t at, std::uint32_t v) {
    b[at] = static_cast<std::uint8_t>(v >> 24);
    b[at + 1] = static_cast<std::uint8_t>(v >> 16);
    b[at + 2] = static_cast<std::uint8_t>(v >> 8);
    b[at + 3] = static_cast<std::uint8_t>(v);
}

constexpr std::size_t align8(std::size_t v) {
    return (v + 7) & ~std::size_t{7};
}

std::string hex(std::size_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%zx", v);
    return buf;
}

std::string hex32(std::uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

bool isChainEnd(std::uint32_t magic) {
    return magic == 0x00000000 || magic == 0xffffffff;
}

bool isSectionMagic(std::uint32_t magic) {
    return (magic & 0xfffff00f) == 0x55aaf00f;
}

}  // namespace

EepromImage::EepromImage(Bytes image, std::string origin)
    : image_(std::move(image)), origin_(std::move(origin)) {}

EepromImage EepromImage::parse(Bytes image, std::string origin) {
    if (image.size() != kEepromSize2711 && image.size() != kEepromSize2712) {
        throw Error(Errc::Corrupt, origin + " is not an EEPROM image: it is " +
                                       std::to_string(image.size()) +
                                       " bytes, an EEPROM image "
                                       "is 524288 (BCM2711) or 2097152 (BCM2712) bytes");
    }
    EepromImage result(std::move(image), std::move(origin));
    result.reparse();
    return result;
}

void EepromImage::reparse() {
    const std::size_t size = image_.size();
    std::uint32_t first = readBe32(image_, 0);
    if (first != kEepromMagicCode) {
        throw Error(Errc::Corrupt, origin_ + " is not an EEPROM image: it starts with " +
                                       hex32(first) + " instead of the bootcode section magic " +
                                       hex32(kEepromMagicCode));
    }
    std::vector<EepromSection> sections;
    std::size_t offset = 0;
    while (offset + 8 <= size) {
        EepromSection s;
        s.offset = offset;
        s.magic = readBe32(image_, offset);
        if (isChainEnd(s.magic)) {
            break;
        }
        if (!isSectionMagic(s.magic)) {
            throw Error(Errc::Corrupt, origin_ + " is corrupted: the section at " + hex(offset) +
                                           " has the unknown magic " + hex32(s.magic));
        }
        s.length = readBe32(image_, offset + 4);
        if (s.length > size - offset - 8) {
            throw Error(Errc::Corrupt, origin_ + " is corrupted: the section at " + hex(offset) +
                                           " claims " + std::to_string(s.length) +
                                           " bytes, which runs past the end of the image");
        }
        if (s.isFile()) {
            if (s.length < kEepromFileHeaderSize - 8) {
                throw Error(Errc::Corrupt, origin_ + " is corrupted: the file section at " +
                                               hex(offset) + " is too short (" +
                                               std::to_string(s.length) +
                                               " bytes) to hold its name");
            }
            const auto* name = image_.data() + offset + 8;
            std::size_t len = 0;
            while (len < kEepromFileNameSize && name[len] != 0) {
                ++len;
            }
            s.name.assign(reinterpret_cast<const char*>(name), len);
        }
        sections.push_back(s);
        offset = align8(offset + 8 + s.length);
    }
    sections_ = std::move(sections);
}

const EepromSection* EepromImage::findFile(std::string_view name) const {
    for (const auto& s : sections_) {
        if (s.isFile() && s.name == name && s.offset >= kEepromPartitionStart &&
            s.offset < kEepromPartitionStart + kEepromPartitionSize) {
            return &s;
        }
    }
    return nullptr;
}

std::optional<Bytes> EepromImage::file(std::string_view name) const {
    const EepromSection* s = findFile(name);
    if (s == nullptr) {
        return std::nullopt;
    }
    auto begin = image_.begin() + static_cast<std::ptrdiff_t>(s->contentOffset());
    return Bytes(begin, begin + static_cast<std::ptrdiff_t>(s->contentSize()));
}

std::string EepromImage::bootConfig() const {
    auto content = file("bootconf.txt");
    if (!content) {
        throw Error(Errc::NotFound, origin_ + " has no bootconf.txt section");
    }
    return std::string(content->begin(), content->end());
}

void EepromImage::replaceFile(std::string_view name, ByteView content) {
    const EepromSection* found = findFile(name);
    if (found == nullptr) {
        throw Error(Errc::NotFound,
                    origin_ + " has no " + std::string(name) + " section to replace");
    }
    const EepromSection section = *found;
    const std::string what = std::string(name) + " in " + origin_;
    if (content.size() > kEepromMaxFileSize) {
        throw Error(Errc::TooLarge, "the new " + what + " is " + std::to_string(content.size()) +
                                        " bytes; at most " + std::to_string(kEepromMaxFileSize) +
                                        " bytes fit in an EEPROM file section");
    }

    // The first following section that is not padding bounds the space we may use;
    // without one, the end of the partition or of the usable image does.
    const std::size_t usableEnd = image_.size() - kEepromReservedTail;
    std::size_t next = std::min(usableEnd, kEepromPartitionStart + kEepromPartitionSize);
    bool isLast = true;
    for (const auto& s : sections_) {
        if (s.offset <= section.offset) {
            continue;
        }
        isLast = false;
        if (!s.isPadding()) {
            next = s.offset;
            break;
        }
    }
    // Content starts 24 bytes into the section (not 20): the bound uses the real start.
    const std::size_t contentStart = section.offset + kEepromFileHeaderSize;
    const std::size_t contentEnd = contentStart + content.size();
    const std::size_t limit = std::min(next, usableEnd);
    if (contentEnd > limit) {
        std::size_t room = limit > contentStart ? limit - contentStart : 0;
        throw Error(Errc::TooLarge,
                    "the new " + what + " is " + std::to_string(content.size()) +
                        " bytes but only " + std::to_string(room) + " bytes fit before " +
                        (limit == next && next < usableEnd
                             ? "the next section at " + hex(next)
                             : "the bootloader's reserved last 4 KiB at " + hex(limit)));
    }

    writeBe32(image_, section.offset + 4, static_cast<std::uint32_t>(16 + content.size()));
    std::copy(content.begin(), content.end(),
              image_.begin() + static_cast<std::ptrdiff_t>(contentStart));
    const std::size_t aligned = align8(contentEnd);
    std::fill(image_.begin() + static_cast<std::ptrdiff_t>(contentEnd),
              image_.begin() + static_cast<std::ptrdiff_t>(aligned), 0xff);
    std::size_t fillFrom = aligned;
    if (!isLast && limit - aligned >= 8) {
        writeBe32(image_, aligned, kEepromMagicPadding);
        writeBe32(image_, aligned + 4, static_cast<std::uint32_t>(limit - aligned - 8));
        fillFrom = aligned + 8;
    }
    if (fillFrom < limit) {
        std::fill(image_.begin() + static_cast<std::ptrdiff_t>(fillFrom),
                  image_.begin() + static_cast<std::ptrdiff_t>(limit), 0xff);
    }
    reparse();
}

void EepromImage::setBootConfig(std::string_view text) {
    replaceFile("bootconf.txt",
                ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

void EepromImage::setBootConfigSignature(std::string_view sigText) {
    replaceFile("bootconf.sig",
                ByteView(reinterpret_cast<const std::uint8_t*>(sigText.data()), sigText.size()));
}

void EepromImage::setPublicKey(const RsaKey& key) {
    replaceFile("pubkey.bin", key.pubkeyBin());
}

RecoveryEeprom buildRecoveryEeprom(ByteView original, std::string_view originName,
                                   std::string_view config, std::int64_t timestamp,
                                   const Signer* signer, const RsaKey* publicKey) {
    EepromImage image =
        EepromImage::parse(Bytes(original.begin(), original.end()), std::string(originName));
    image.setBootConfig(config);
    if (signer != nullptr) {
        const auto* keySigner = dynamic_cast<const KeySigner*>(signer);
        const RsaKey* key = publicKey != nullptr   ? publicKey
                            : keySigner != nullptr ? &keySigner->key()
                                                   : nullptr;
        if (key == nullptr) {
            throw Error(Errc::InvalidArgument,
                        "signing the boot configuration through an HSM needs the public key "
                        "as well, to embed it in the EEPROM image");
        }
        ByteView configBytes(reinterpret_cast<const std::uint8_t*>(config.data()), config.size());
        SignatureFile sig = makeSignatureFile(configBytes, timestamp, signer);
        verifySignatureFile(configBytes, sig, *key, "the boot configuration", "its new signature");
        image.setBootConfigSignature(sig.toText());
        image.setPublicKey(*key);
    }
    RecoveryEeprom out;
    out.digest = makeSignatureFile(image.bytes(), timestamp).toText();
    out.image = std::move(image).release();
    return out;
}

}  // namespace rpiboot
