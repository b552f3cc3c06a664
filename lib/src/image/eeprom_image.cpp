// EEPROM image section chain and in-place file replacement (docs/protocol.md §10).
#include "rpiboot/image/eeprom_image.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/bootcode_signature.hpp"
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
    replaceSection(*found, content, kEepromMaxFileSize);
}

void EepromImage::replaceSection(const EepromSection& sectionRef, ByteView content,
                                 std::size_t maxSize) {
    const EepromSection section = sectionRef;
    const std::string& name = section.name;
    const std::string what = name + " in " + origin_;
    if (content.size() > maxSize) {
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

Bytes EepromImage::bootcode() const {
    const EepromSection& s = sections_.front();
    auto begin = image_.begin() + static_cast<std::ptrdiff_t>(s.offset + 8);
    return Bytes(begin, begin + static_cast<std::ptrdiff_t>(s.length));
}

bool EepromImage::isAbImage() const {
    for (const auto& s : sections_) {
        if (s.offset == kEepromPartitionStart) {
            return s.isFile() && s.name == "bootsys";
        }
    }
    return false;
}

void EepromImage::replaceBootcode(ByteView loader) {
    const EepromSection first = sections_.front();
    std::size_t next = image_.size() - kEepromReservedTail;
    for (std::size_t i = 1; i < sections_.size(); ++i) {
        if (!sections_[i].isPadding()) {
            next = sections_[i].offset;
            break;
        }
    }
    if (!isAbImage() && next < 128 * 1024) {
        throw Error(Errc::TooLarge, origin_ + " keeps only " + std::to_string(next) +
                                        " bytes for its bootcode; replacing it needs 128 KiB");
    }
    const std::size_t end = first.offset + 8 + loader.size();
    if (end > next) {
        throw Error(Errc::TooLarge, "the new bootcode of " + origin_ + " is " +
                                        std::to_string(loader.size()) + " bytes but only " +
                                        std::to_string(next - first.offset - 8) +
                                        " bytes fit before the section at " + hex(next));
    }
    writeBe32(image_, first.offset + 4, static_cast<std::uint32_t>(loader.size()));
    std::copy(loader.begin(), loader.end(),
              image_.begin() + static_cast<std::ptrdiff_t>(first.offset + 8));
    const std::size_t aligned = std::min(align8(end), next);
    std::fill(image_.begin() + static_cast<std::ptrdiff_t>(end),
              image_.begin() + static_cast<std::ptrdiff_t>(aligned), 0xff);
    std::size_t fillFrom = aligned;
    if (next - aligned >= 8) {
        writeBe32(image_, aligned, kEepromMagicPadding);
        writeBe32(image_, aligned + 4, static_cast<std::uint32_t>(next - aligned - 8));
        fillFrom = aligned + 8;
    }
    std::fill(image_.begin() + static_cast<std::ptrdiff_t>(fillFrom),
              image_.begin() + static_cast<std::ptrdiff_t>(next), 0xff);
    reparse();
}

void EepromImage::replaceBootsys(ByteView loader) {
    const EepromSection* found = findFile("bootsys");
    if (found == nullptr || !isAbImage()) {
        throw Error(Errc::NotFound, origin_ + " is not an A/B image: it has no bootsys section");
    }
    replaceSection(*found, loader, image_.size());
}

void EepromImage::setUpdateTimestamp(std::uint32_t timestamp) {
    const EepromSection* readOnly = nullptr;
    for (const auto& s : sections_) {
        if (s.isFile() && s.name == "updatetime" && s.offset < kEepromPartitionStart) {
            readOnly = &s;
            break;
        }
    }
    auto put = [&](std::size_t at) {
        const std::uint32_t inverse = ~timestamp;
        for (int i = 0; i < 4; ++i) {
            image_[at + static_cast<std::size_t>(i)] =
                static_cast<std::uint8_t>(inverse >> (8 * i));
            image_[at + 4 + static_cast<std::size_t>(i)] =
                static_cast<std::uint8_t>(timestamp >> (8 * i));
        }
    };
    if (readOnly == nullptr) {
        put(image_.size() - 8);
        return;
    }
    const EepromSection* inPartition = findFile("updatetime");
    if (inPartition == nullptr) {
        throw Error(Errc::NotFound, origin_ +
                                        " has an updatetime file in its read-only area "
                                        "but none in its configuration partition");
    }
    for (const EepromSection* s : {readOnly, inPartition}) {
        if (s->contentSize() < 8) {
            throw Error(Errc::Corrupt, origin_ + ": the updatetime file at " + hex(s->offset) +
                                           " is shorter than 8 bytes");
        }
    }
    put(readOnly->contentOffset());
    put(inPartition->contentOffset());
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

std::optional<std::int64_t> eepromBuildTimestamp(ByteView image) {
    static constexpr std::string_view kTag = "BUILD_TIMESTAMP=";
    const auto* begin = reinterpret_cast<const char*>(image.data());
    const std::string_view text(begin, image.size());
    for (std::size_t at = text.find(kTag); at != std::string_view::npos;
         at = text.find(kTag, at + 1)) {
        std::size_t end = at + kTag.size();
        std::int64_t value = 0;
        std::size_t digits = 0;
        while (end < text.size() && digits < 12 && text[end] >= '0' && text[end] <= '9') {
            value = value * 10 + (text[end] - '0');
            ++end;
            ++digits;
        }
        if (digits > 0) {
            return value;
        }
    }
    return std::nullopt;
}

RecoveryEeprom buildRecoveryEeprom(ByteView original, std::string_view originName,
                                   std::string_view config, std::int64_t timestamp,
                                   const Signer* signer, const RsaKey* publicKey,
                                   bool counterSign) {
    EepromImage image =
        EepromImage::parse(Bytes(original.begin(), original.end()), std::string(originName));
    const RsaKey* key = nullptr;
    if (signer != nullptr) {
        if (auto built = eepromBuildTimestamp(original);
            built && *built < kSecureBootMinBuildTimestamp) {
            throw Error(Errc::InvalidArgument,
                        std::string(originName) + " was built at " + std::to_string(*built) +
                            " (BUILD_TIMESTAMP), before the bootloader supported secure boot "
                            "(" +
                            std::to_string(kSecureBootMinBuildTimestamp) +
                            ", 2021-09-20); use a newer image");
        }
        key = publicKey != nullptr ? publicKey : signer->publicKey();
        if (key == nullptr) {
            throw Error(Errc::InvalidArgument,
                        "signing the boot configuration through an HSM needs the public key "
                        "as well, to embed it in the EEPROM image");
        }
    }
    if (counterSign) {
        if (key == nullptr) {
            throw Error(Errc::InvalidArgument,
                        "counter-signing the EEPROM's bootcode needs a signing key");
        }
        if (image.bytes().size() != kEepromSize2712) {
            throw Error(Errc::InvalidArgument,
                        std::string(originName) +
                            " is a BCM2711 image; only BCM2712 loaders are counter-signed");
        }
        image.replaceBootcode(signBootcode2712(image.bootcode(), *signer, *key));
        if (image.isAbImage()) {
            image.replaceBootsys(signBootcode2712(*image.file("bootsys"), *signer, *key));
        }
    }
    image.setBootConfig(config);
    if (signer != nullptr) {
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
