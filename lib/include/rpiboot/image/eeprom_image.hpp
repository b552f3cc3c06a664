// Raspberry Pi bootloader EEPROM images (`pieeprom*.bin`, docs/protocol.md §10):
// reading the section chain, and replacing the
// configuration (`bootconf.txt`), its signature (`bootconf.sig`) and the
// customer public key (`pubkey.bin`) in place.
//
// Works on an in-memory copy of the image. Every offset and length read from
// the image is checked against its size before use; a replacement that would
// run into the next section or into the bootloader's reserved last 4 KiB is
// refused, never truncated. This module must never change a byte outside the
// section being replaced and the free space that follows it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/rsa_key.hpp"

namespace rpiboot {

inline constexpr std::size_t kEepromSize2711 = std::size_t{512} * 1024;
inline constexpr std::size_t kEepromSize2712 = std::size_t{2} * 1024 * 1024;
// Section magics (big-endian in the image).
inline constexpr std::uint32_t kEepromMagicCode = 0x55aaf00f;
inline constexpr std::uint32_t kEepromMagicFile = 0x55aaf11f;
inline constexpr std::uint32_t kEepromMagicPadding = 0x55aafeef;
// A named file's header: magic, length, 12-byte name, 4 reserved bytes.
inline constexpr std::size_t kEepromFileHeaderSize = 24;
inline constexpr std::size_t kEepromFileNameSize = 12;
// Largest content of a replaceable named file (4096 - 20).
inline constexpr std::size_t kEepromMaxFileSize = 4076;
// The bootloader keeps the last 4 KiB of the image for itself.
inline constexpr std::size_t kEepromReservedTail = 4096;
// Named files that configuration tools replace live in this window.
inline constexpr std::size_t kEepromPartitionStart = std::size_t{64} * 1024;
inline constexpr std::size_t kEepromPartitionSize = std::size_t{988} * 1024;

struct EepromSection {
    std::size_t offset = 0;  // of the 8-byte header
    std::uint32_t magic = 0;
    std::uint32_t length = 0;  // bytes after the 8-byte header
    std::string name;          // named files only

    bool isFile() const noexcept { return magic == kEepromMagicFile; }
    bool isPadding() const noexcept { return magic == kEepromMagicPadding; }
    std::size_t contentOffset() const noexcept {
        return offset + (isFile() ? kEepromFileHeaderSize : 8);
    }
    std::size_t contentSize() const noexcept { return isFile() ? length - 16u : length; }
};

class EepromImage {
  public:
    // Takes the image bytes; `origin` names it in errors ("pieeprom.bin").
    // Throws Errc::Corrupt if the size is not 512 KiB / 2 MiB, the chain does
    // not start with a bootcode section, or any section is malformed.
    static EepromImage parse(Bytes image, std::string origin);

    const std::string& origin() const noexcept { return origin_; }
    const Bytes& bytes() const noexcept { return image_; }
    Bytes release() && { return std::move(image_); }
    const std::vector<EepromSection>& sections() const noexcept { return sections_; }

    // The named file in the configuration partition (where tools look), or nullptr.
    const EepromSection* findFile(std::string_view name) const;
    std::optional<Bytes> file(std::string_view name) const;

    // bootconf.txt as text; Errc::NotFound if the image has none.
    std::string bootConfig() const;

    // Replaces a named file's content in place (docs/protocol.md §10.3). Throws
    // Errc::NotFound if the image has no such file, Errc::TooLarge if the
    // content is over 4076 bytes or does not fit before the next section.
    void replaceFile(std::string_view name, ByteView content);
    void setBootConfig(std::string_view text);
    // Embeds a `.sig` text as bootconf.sig.
    void setBootConfigSignature(std::string_view sigText);
    // Embeds the 264-byte pubkey.bin encoding of `key`'s public half.
    void setPublicKey(const RsaKey& key);

    // The EEPROM's own second-stage loader: the body of the first section.
    Bytes bootcode() const;
    // Replaces it (a counter-signed loader, BCM2712): writes the new length
    // and body, then padding up to the next non-padding section. Throws
    // Errc::TooLarge if it does not fit before that section, or if an image
    // without A/B partitions would keep less than 128 KiB for the loader.
    void replaceBootcode(ByteView loader);
    // A/B images (BCM2712) carry a second loader as the named file `bootsys`
    // at the start of the configuration partition.
    bool isAbImage() const;
    // Replaces `bootsys` like replaceFile() does, without the 4076-byte limit.
    void replaceBootsys(ByteView loader);
    // Sets the self-update time (`updatetime`, protocol.md §10.4) in the
    // read-only area and in the partition, or, without such a file, in the
    // last 8 bytes of the image. Errc::NotFound if only one copy exists.
    void setUpdateTimestamp(std::uint32_t timestamp);

  private:
    EepromImage(Bytes image, std::string origin);
    void reparse();
    void replaceSection(const EepromSection& section, ByteView content, std::size_t maxSize);

    Bytes image_;
    std::string origin_;
    std::vector<EepromSection> sections_;
};

// The first secure-boot capable bootloader was built at this time (2021-09-20).
inline constexpr std::int64_t kSecureBootMinBuildTimestamp = 1632136573;

// The "BUILD_TIMESTAMP=N" a bootloader image carries as text, if any.
std::optional<std::int64_t> eepromBuildTimestamp(ByteView image);

// What the recovery / secure-boot-recovery profiles serve (docs/protocol.md §10.5).
struct RecoveryEeprom {
    Bytes image;         // pieeprom.bin
    std::string digest;  // pieeprom.sig (hash + ts, unsigned)
};

// Builds pieeprom.bin from `original` with `config` as bootconf.txt, and its
// pieeprom.sig. With a signer, an image whose BUILD_TIMESTAMP is older than
// kSecureBootMinBuildTimestamp is refused (Errc::InvalidArgument). With `signer`, also embeds
// bootconf.sig (config signed at `timestamp`) and pubkey.bin; `publicKey` is required when the
// signer does not hold the key itself (an HSM), and the signature is checked with it before it is
// embedded.
//
// With `counterSign` (BCM2712 images only; needs a signer), the EEPROM's
// bootcode and, on A/B images, its bootsys are first counter-signed with the
// customer key (key number 16, version 0), as secure-boot-recovery5 does.
RecoveryEeprom buildRecoveryEeprom(ByteView original, std::string_view originName,
                                   std::string_view config, std::int64_t timestamp,
                                   const Signer* signer = nullptr,
                                   const RsaKey* publicKey = nullptr, bool counterSign = false);

}  // namespace rpiboot
