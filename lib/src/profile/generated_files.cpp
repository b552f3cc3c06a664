#include "rpiboot/profile/generated_files.hpp"

#include <fstream>
#include <iterator>
#include <optional>
#include <system_error>

#include "rpiboot/core/error.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/firmware/firmware_set.hpp"
#include "rpiboot/image/eeprom_image.hpp"
#include "rpiboot/profile/profile.hpp"
#include "rpiboot/signing/bootcode_signature.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/hsm_signer.hpp"
#include "rpiboot/signing/pkcs11_signer.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot/signing/signature_file.hpp"

namespace rpiboot {

namespace {

namespace fs = std::filesystem;

using GeneratedFiles = std::map<std::string, ServedFile, std::less<>>;

constexpr Chip kEepromChips[] = {Chip::Bcm2711, Chip::Bcm2712};

ServedFile served(Bytes bytes, std::string origin) {
    auto storage = std::make_shared<const Bytes>(std::move(bytes));
    return ServedFile{storage, std::span<const std::uint8_t>(storage->data(), storage->size()),
                      std::move(origin)};
}

ServedFile servedText(const std::string& text, std::string origin) {
    return served(Bytes(text.begin(), text.end()), std::move(origin));
}

// Runs `step`, prefixing any Error with the profile and what was being done.
template <typename F>
auto withContext(const Profile& profile, const std::string& what, F&& step) {
    try {
        return step();
    } catch (const Error& e) {
        throw Error(e.code(), "profile " + profile.name + ": " + what + ": " + e.what());
    }
}

struct OpenedSigning {
    std::unique_ptr<Signer> signer;
    std::optional<RsaKey> publicKey;
};

OpenedSigning openSigning(const Profile& profile, const ProfileSigning& signing) {
    OpenedSigning s;
    if (!signing.signingKey.empty()) {
        const std::string spec = signing.signingKey.string();
        const std::string shown = isPkcs11Uri(spec) ? redactPkcs11Uri(spec) : spec;
        s.signer = withContext(profile, "signing key " + shown,
                               [&] { return openSigningKey(spec, signing.pkcs11Module); });
    } else if (!signing.hsmWrapper.empty()) {
        std::error_code ec;
        if (!fs::is_regular_file(signing.hsmWrapper, ec)) {
            throw Error(Errc::NotFound, "profile " + profile.name + ": HSM wrapper " +
                                            signing.hsmWrapper.string() + " does not exist");
        }
        s.signer = std::make_unique<HsmSigner>(signing.hsmWrapper);
    }
    if (!signing.publicKey.empty()) {
        s.publicKey = withContext(profile, "public key " + signing.publicKey.string(),
                                  [&] { return RsaKey::loadPem(signing.publicKey); });
    }
    return s;
}

// The public key a signer's output must verify with and that is embedded.
const RsaKey& publicKeyOf(const Profile& profile, const OpenedSigning& s) {
    if (s.publicKey) {
        return *s.publicKey;
    }
    if (s.signer && s.signer->publicKey() != nullptr) {
        return *s.signer->publicKey();
    }
    throw Error(Errc::InvalidArgument,
                "profile " + profile.name + ": the public key is unknown; give public_key");
}

// The profile's firmware set without generated files, to read what it serves.
FirmwareSet plainSet(const Profile& profile) {
    return FirmwareSet(profile.firmwareSetConfig(), std::make_shared<FileCache>());
}

// The set's BCM2712 loader, counter-signed with the customer key (protocol.md §10.6).
void addCounterSignedLoader(const Profile& profile, const OpenedSigning& signing,
                            GeneratedFiles& out) {
    const FirmwareSet set = plainSet(profile);
    BoardContext board;
    board.chip = Chip::Bcm2712;
    const Lookup loader = set.bootcode(board);
    if (!loader.found()) {
        throw Error(Errc::NotFound, "profile " + profile.name +
                                        ": counter-signing needs the BCM2712 loader " +
                                        std::string(bootcodeFileName(Chip::Bcm2712)) +
                                        ", which the firmware set does not have");
    }
    Bytes signedLoader = withContext(profile, "counter-signing " + loader.file->origin, [&] {
        return signBootcode2712(loader.file->bytes, *signing.signer, publicKeyOf(profile, signing));
    });
    out[std::string(chipFolder(Chip::Bcm2712)) + "/" +
        std::string(bootcodeFileName(Chip::Bcm2712))] =
        served(std::move(signedLoader), "counter-signed from " + loader.file->origin);
}

bool isSwitchLine(std::string_view line) {
    std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos) {
        return false;
    }
    line = line.substr(start);
    for (std::string_view key :
         {"program_pubkey", "revoke_devkey", "program_jtag_lock", "recovery_metadata",
          "eeprom_write_protect", "program_rpiboot_gpio"}) {
        if (line.substr(0, key.size()) == key) {
            std::string_view rest = line.substr(key.size());
            std::size_t eq = rest.find_first_not_of(" \t");
            if (eq != std::string_view::npos && rest[eq] == '=') {
                return true;
            }
        }
    }
    return false;
}

// The recovery config.txt with the irreversible switches set from the
// profile alone: any such line in the base file is dropped, then each switch
// is written explicitly, and metadata reporting stays on (the reports decide
// success).
void addRecoveryConfig(const Profile& profile, const ProfileEeprom& eeprom, GeneratedFiles& out) {
    const FirmwareSet set = plainSet(profile);
    for (Chip chip : kEepromChips) {
        BoardContext board;
        board.chip = chip;
        const Lookup base = set.resolve(eeprom.recoveryConfig.string(), board);
        std::string text;
        std::string origin = "generated";
        if (base.found()) {
            const std::string original(base.file->bytes.begin(), base.file->bytes.end());
            std::size_t pos = 0;
            while (pos < original.size()) {
                std::size_t end = original.find('\n', pos);
                const std::size_t next = end == std::string::npos ? original.size() : end + 1;
                const std::string_view line(original.data() + pos, next - pos);
                if (!isSwitchLine(line)) {
                    text += line;
                    if (end == std::string::npos) {
                        text += '\n';
                    }
                }
                pos = next;
            }
            origin = "generated from " + base.file->origin;
        }
        text += "# Set by profile " + profile.name + "; irreversible when 1.\n";
        text += std::string("program_pubkey=") + (eeprom.programPubkey ? "1" : "0") + "\n";
        text += std::string("revoke_devkey=") + (eeprom.revokeDevkey ? "1" : "0") + "\n";
        text += std::string("program_jtag_lock=") + (eeprom.programJtagLock ? "1" : "0") + "\n";
        if (eeprom.eepromWriteProtect) {
            text += "eeprom_write_protect=1\n";
        }
        text += "recovery_metadata=1\n";
        out[std::string(chipFolder(chip)) + "/" + eeprom.recoveryConfig.filename().string()] =
            servedText(text, origin);
    }
}

bool isRegularFile(const fs::path& path) {
    std::error_code ec;
    return fs::is_regular_file(path, ec);
}

Bytes readImage(const Profile& profile, const fs::path& path) {
    return withContext(profile, "image", [&] { return readFileBytes(path); });
}

std::optional<Chip> eepromChip(std::size_t size) {
    if (size == kEepromSize2711) {
        return Chip::Bcm2711;
    }
    if (size == kEepromSize2712) {
        return Chip::Bcm2712;
    }
    return std::nullopt;
}

// The base EEPROM image of each chip the profile has one for.
std::vector<std::pair<Chip, fs::path>> eepromImages(const Profile& profile,
                                                    const ProfileEeprom& eeprom) {
    std::vector<std::pair<Chip, fs::path>> found;
    const fs::path& root = profile.firmware.root;
    for (Chip chip : kEepromChips) {
        if (!eeprom.image.is_absolute()) {
            const fs::path inChipFolder = root / chipFolder(chip) / eeprom.image;
            if (isRegularFile(inChipFolder)) {
                found.emplace_back(chip, inChipFolder);
                continue;
            }
        }
        const fs::path common = eeprom.image.is_absolute() ? eeprom.image : root / eeprom.image;
        std::error_code ec;
        const auto size = isRegularFile(common) ? fs::file_size(common, ec) : 0;
        if (!ec && eepromChip(static_cast<std::size_t>(size)) == chip) {
            found.emplace_back(chip, common);
        }
    }
    if (found.empty()) {
        const fs::path common = eeprom.image.is_absolute() ? eeprom.image : root / eeprom.image;
        if (isRegularFile(common)) {
            std::error_code ec;
            throw Error(Errc::Corrupt, "profile " + profile.name + ": " + common.string() + " is " +
                                           std::to_string(fs::file_size(common, ec)) +
                                           " bytes, not a 512 KiB (2711) or 2 MiB (2712) "
                                           "EEPROM image");
        }
        std::string where = common.string();
        if (!eeprom.image.is_absolute()) {
            where = (root / "2711" / eeprom.image).string() + ", " +
                    (root / "2712" / eeprom.image).string() + " or " + where;
        }
        throw Error(Errc::NotFound,
                    "profile " + profile.name + ": no base EEPROM image at " + where);
    }
    return found;
}

// The boot.conf for one chip: a configuration directly in the set's root may be
// overridden per chip by <root>/<chip folder>/<same name> (upstream keeps
// separate recovery/ and recovery5/ configurations for BCM2711 and BCM2712).
fs::path eepromConfigFor(const Profile& profile, const ProfileEeprom& eeprom, Chip chip) {
    const fs::path& root = profile.firmware.root;
    if (eeprom.config.parent_path() == root) {
        fs::path perChip = root / chipFolder(chip) / eeprom.config.filename();
        if (isRegularFile(perChip)) {
            return perChip;
        }
    }
    return eeprom.config;
}

void addEeprom(const Profile& profile, const ProfileEeprom& eeprom, std::int64_t timestamp,
               GeneratedFiles& out) {
    const OpenedSigning signing = openSigning(profile, eeprom.signing);
    // Plain variables, not structured bindings: clang 14 cannot capture those.
    for (const auto& entry : eepromImages(profile, eeprom)) {
        const Chip chip = entry.first;
        const fs::path& path = entry.second;
        const fs::path configPath = eepromConfigFor(profile, eeprom, chip);
        const Bytes configBytes = withContext(profile, "boot.conf " + configPath.string(),
                                              [&] { return readFileBytes(configPath); });
        const std::string config(configBytes.begin(), configBytes.end());
        const Bytes original = readImage(profile, path);
        RecoveryEeprom built = withContext(profile, "EEPROM image " + path.string(), [&] {
            return buildRecoveryEeprom(original, path.string(), config, timestamp,
                                       signing.signer.get(),
                                       signing.publicKey ? &*signing.publicKey : nullptr,
                                       eeprom.counterSign && chip == Chip::Bcm2712);
        });
        const std::string folder(chipFolder(chip));
        const std::string origin =
            "generated from " + path.string() + " and " + configPath.string();
        out[folder + "/pieeprom.bin"] = served(std::move(built.image), origin);
        out[folder + "/pieeprom.sig"] = servedText(built.digest, origin);
    }
    if (eeprom.signing.enabled()) {
        addRecoveryConfig(profile, eeprom, out);
    }
    if (eeprom.counterSignRecovery) {
        addCounterSignedLoader(profile, signing, out);
    }
}

void addBootImage(const Profile& profile, const ProfileBootImage& boot, std::int64_t timestamp,
                  GeneratedFiles& out) {
    const OpenedSigning signing = openSigning(profile, boot.signing);
    // Key prefix ("" or "2711/") -> image file.
    std::vector<std::pair<std::string, fs::path>> images;
    const fs::path& root = profile.firmware.root;
    if (boot.image.is_absolute()) {
        images.emplace_back("", boot.image);
    } else {
        for (Chip chip : kEepromChips) {
            const fs::path inChipFolder = root / chipFolder(chip) / boot.image;
            if (isRegularFile(inChipFolder)) {
                images.emplace_back(std::string(chipFolder(chip)) + "/", inChipFolder);
            }
        }
        if (isRegularFile(root / boot.image)) {
            images.emplace_back("", root / boot.image);
        }
    }
    if (images.empty() || !isRegularFile(images.front().second)) {
        throw Error(Errc::NotFound,
                    "profile " + profile.name + ": no boot image at " +
                        (boot.image.is_absolute() ? boot.image : root / boot.image).string());
    }
    for (const auto& entry : images) {
        const std::string& prefix = entry.first;
        const fs::path& path = entry.second;
        Bytes image = readImage(profile, path);
        const std::string sigText = withContext(profile, "signing " + path.string(), [&] {
            const SignatureFile sig = makeSignatureFile(image, timestamp, signing.signer.get());
            if (signing.publicKey) {
                verifySignatureFile(image, sig, *signing.publicKey, path.string(), "boot.sig");
            }
            return sig.toText();
        });
        out[prefix + "boot.sig"] = servedText(sigText, "generated signature of " + path.string());
        out[prefix + "boot.img"] = served(std::move(image), path.string());
    }
    if (boot.counterSign) {
        addCounterSignedLoader(profile, signing, out);
    }
}

std::string keyOf(Chip chip, const char* name) {
    return std::string(chipFolder(chip)) + "/" + name;
}

}  // namespace

std::vector<ExpectedReport> expectedReports(const Profile& profile,
                                            const GeneratedFiles& generated) {
    std::vector<ExpectedReport> reports;
    if (!profile.eeprom) {
        return reports;
    }
    const ProfileEeprom& eeprom = *profile.eeprom;
    for (Chip chip : kEepromChips) {
        const auto image = generated.find(keyOf(chip, "pieeprom.bin"));
        if (image == generated.end()) {
            continue;
        }
        // Provisioning first: its failure is the reason an operator needs.
        if (eeprom.programPubkey) {
            const EepromImage parsed = EepromImage::parse(
                Bytes(image->second.bytes.begin(), image->second.bytes.end()), image->first);
            const auto pubkey = parsed.file("pubkey.bin");
            reports.push_back({"SECURE_BOOT_PROVISION", "success", chip,
                               "the customer key was not programmed into OTP"});
            if (pubkey) {
                reports.push_back({"CUSTOMER_KEY_HASH", sha256Hex(*pubkey), chip,
                                   "OTP holds another customer key"});
            }
        }
        if (eeprom.programJtagLock) {
            reports.push_back({"JTAG_LOCKED", "1", chip, "JTAG was not locked"});
        }
        reports.push_back({"EEPROM_UPDATE", "success", chip, "the EEPROM was not updated"});
        reports.push_back({"EEPROM_HASH", sha256Hex(image->second.bytes), chip,
                           "the EEPROM does not hold the image that was served"});
    }
    return reports;
}

std::map<std::string, ServedFile, std::less<>> generateProfileFiles(const Profile& profile,
                                                                    std::int64_t timestamp) {
    GeneratedFiles out;
    if (profile.eeprom) {
        addEeprom(profile, *profile.eeprom, timestamp, out);
    }
    if (profile.signBootImage) {
        addBootImage(profile, *profile.signBootImage, timestamp, out);
    }
    return out;
}

}  // namespace rpiboot
