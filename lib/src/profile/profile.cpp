#include "rpiboot/profile/profile.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "profile/json_reader.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/pkcs11_signer.hpp"

#ifndef RPIBOOT_DEFAULT_FIRMWARE_DIR
#define RPIBOOT_DEFAULT_FIRMWARE_DIR "/usr/share/rpibootd/firmware"
#endif

namespace rpiboot {

using profile_detail::fail;
using profile_detail::ObjectReader;
using profile_detail::resolveAgainst;

namespace {

// Timeouts above ten minutes are certainly a typo (an extra zero or two).
constexpr std::int64_t kMaxTimeoutMs = 600000;
constexpr std::int64_t kMaxBootMs = std::int64_t{24} * 3600 * 1000;
constexpr std::int64_t kMaxRetries = 20;
// "forget_after_s": up to a day.
constexpr std::int64_t kMaxForgetAfterS = 86400;

bool isValidProfileName(std::string_view name) {
    if (name.empty() || name.front() == '.' || name.size() > 64) {
        return false;
    }
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

// "requires": { "<chip>": ["NAME", ...], ... }
std::vector<std::pair<Chip, std::vector<std::string>>> readRequired(ObjectReader& firmware) {
    std::vector<std::pair<Chip, std::vector<std::string>>> out;
    const nlohmann::json* node = firmware.member("requires");
    if (node == nullptr) {
        return out;
    }
    const std::string pointer = firmware.pointerOf("requires");
    if (!node->is_object()) {
        fail(firmware.label(), pointer, "expected an object of chip -> file names");
    }
    for (const auto& [key, names] : node->items()) {
        const std::string where = profile_detail::appendPointer(pointer, key);
        const auto chip = parseChip(key);
        if (!chip) {
            fail(firmware.label(), where, "\"" + key + "\" is not a chip (2835, 2837, 2711, 2712)");
        }
        for (const auto& [other, unused] : out) {
            if (other == *chip) {
                fail(firmware.label(), where, "chip listed twice");
            }
        }
        if (!names.is_array() || names.empty()) {
            fail(firmware.label(), where, "expected a non-empty array of file names");
        }
        std::vector<std::string> files;
        for (std::size_t i = 0; i < names.size(); ++i) {
            const auto& item = names[i];
            if (!item.is_string() || item.get_ref<const std::string&>().empty()) {
                fail(firmware.label(), profile_detail::appendPointer(where, std::to_string(i)),
                     "expected a file name");
            }
            files.push_back(item.get<std::string>());
        }
        out.emplace_back(*chip, std::move(files));
    }
    // In chip order, whatever the spelling of the keys.
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return out;
}

ProfileFirmware readFirmware(ObjectReader& parent, const std::filesystem::path& firmwareBase) {
    const nlohmann::json* node = parent.member("firmware");
    if (node == nullptr) {
        fail(parent.label(), "/firmware", "missing: every profile names its firmware set");
    }
    ObjectReader r(*node, parent.label(), "/firmware",
                   {"root", "port_overlays", "serial_overlays", "fallback", "trusted", "embedded",
                    "requires"});
    ProfileFirmware fw;
    const auto root = r.string("root");
    if (!root) {
        fail(r.label(), "/firmware/root", "missing: the firmware set's directory");
    }
    fw.root = resolveAgainst(firmwareBase, *root);
    fw.portOverlays = r.boolean("port_overlays").value_or(false);
    fw.embedded = r.boolean("embedded").value_or(false);
    if (auto serial = r.string("serial_overlays")) {
        fw.serialOverlays = resolveAgainst(firmwareBase, *serial);
    }
    for (const auto& p : r.stringArray("fallback").value_or(std::vector<std::string>{})) {
        fw.fallback.push_back(resolveAgainst(firmwareBase, p));
    }
    for (const auto& p : r.stringArray("trusted").value_or(std::vector<std::string>{})) {
        fw.trusted.push_back(resolveAgainst(firmwareBase, p));
    }
    fw.required = readRequired(r);
    // The firmware tree itself is trusted: sets commonly link into shared
    // files next to them (msd/bootcode4.bin -> ../2711/bootcode4.bin).
    fw.trusted.push_back(resolveAgainst(firmwareBase, "."));
    return fw;
}

std::filesystem::path readMetadataDir(ObjectReader& parent) {
    const nlohmann::json* node = parent.member("metadata");
    if (node == nullptr || node->is_null()) {
        return {};
    }
    ObjectReader r(*node, parent.label(), "/metadata", {"dir"});
    std::filesystem::path dir;
    if (auto d = r.string("dir")) {
        dir = *d;
        if (!dir.is_absolute()) {
            fail(r.label(), "/metadata/dir", "must be an absolute path, got \"" + *d + "\"");
        }
    }
    return resolveAgainst("/", dir);
}

ProfileTimeouts readTimeouts(ObjectReader& parent) {
    ProfileTimeouts t;
    const nlohmann::json* node = parent.member("timeouts");
    if (node == nullptr) {
        return t;
    }
    ObjectReader r(
        *node, parent.label(), "/timeouts",
        {"control_ms", "bulk_ms", "request_ms", "reenumerate_ms", "boot_ms", "after_boot_ms"});
    t.control = r.milliseconds("control_ms", 1, kMaxTimeoutMs).value_or(t.control);
    t.bulk = r.milliseconds("bulk_ms", 1, kMaxTimeoutMs).value_or(t.bulk);
    t.request = r.milliseconds("request_ms", 1, kMaxTimeoutMs).value_or(t.request);
    t.reenumerate = r.milliseconds("reenumerate_ms", 1, kMaxTimeoutMs).value_or(t.reenumerate);
    t.boot = r.milliseconds("boot_ms", 0, kMaxBootMs).value_or(t.boot);
    t.afterBoot = r.milliseconds("after_boot_ms", 1, kMaxTimeoutMs).value_or(t.afterBoot);
    return t;
}

ProfileRetries readRetries(ObjectReader& r) {
    ProfileRetries retries;
    if (const auto n = r.integer("retries", 0, kMaxRetries)) {
        retries.attempts = static_cast<unsigned>(*n);
    }
    retries.backoff =
        r.milliseconds("retry_backoff_ms", 0, kMaxTimeoutMs).value_or(retries.backoff);
    return retries;
}

std::filesystem::path absolutePath(ObjectReader& r, std::string_view key) {
    const auto value = r.string(key);
    if (!value) {
        return {};
    }
    const std::filesystem::path path(*value);
    if (!path.is_absolute()) {
        fail(r.label(), r.pointerOf(key), "must be an absolute path, got \"" + *value + "\"");
    }
    return resolveAgainst("/", path);
}

ProfileSigning readSigning(ObjectReader& r, const std::string& pointer, bool required) {
    ProfileSigning s;
    if (auto key = r.string("signing_key"); key && isPkcs11Uri(*key)) {
        s.signingKey = *key;
    } else {
        s.signingKey = absolutePath(r, "signing_key");
    }
    s.pkcs11Module = absolutePath(r, "pkcs11_module");
    if (isPkcs11Uri(s.signingKey.string()) && s.pkcs11Module.empty()) {
        fail(r.label(), pointer + "/pkcs11_module",
             "missing: a pkcs11: signing_key needs the PKCS#11 module (for example "
             "/usr/lib/softhsm/libsofthsm2.so)");
    }
    if (!s.pkcs11Module.empty() && !isPkcs11Uri(s.signingKey.string())) {
        fail(r.label(), pointer + "/pkcs11_module",
             "a PKCS#11 module is only used with a pkcs11: signing_key");
    }
    s.hsmWrapper = absolutePath(r, "hsm_wrapper");
    s.publicKey = absolutePath(r, "public_key");
    if (!s.signingKey.empty() && !s.hsmWrapper.empty()) {
        fail(r.label(), pointer + "/hsm_wrapper",
             "give either signing_key or hsm_wrapper, not both");
    }
    if (!s.hsmWrapper.empty() && s.publicKey.empty()) {
        fail(r.label(), pointer + "/public_key",
             "missing: an HSM wrapper needs the public key to check its signatures");
    }
    if (!s.enabled() && !s.publicKey.empty()) {
        fail(r.label(), pointer + "/public_key",
             "a public key without signing_key or hsm_wrapper has nothing to check");
    }
    if (required && !s.enabled()) {
        fail(r.label(), pointer + "/signing_key", "missing: give signing_key or hsm_wrapper");
    }
    return s;
}

std::filesystem::path imagePath(ObjectReader& r, const std::string& pointer) {
    const auto image = r.string("image");
    if (!image) {
        fail(r.label(), pointer + "/image", "missing: the base image to serve");
    }
    const std::filesystem::path path(*image);
    for (const auto& part : path) {
        if (part == "..") {
            fail(r.label(), pointer + "/image",
                 "\"" + *image + "\" must not climb out of the firmware root with \"..\"");
        }
    }
    return path.is_absolute() ? resolveAgainst("/", path) : path.lexically_normal();
}

// A file name inside the firmware root, looked up like "image".
std::filesystem::path relativeName(ObjectReader& r, const std::string& pointer,
                                   std::string_view key, const char* fallback) {
    const auto value = r.string(key);
    const std::filesystem::path path(value.value_or(fallback));
    if (path.is_absolute()) {
        return resolveAgainst("/", path);
    }
    for (const auto& part : path) {
        if (part == "..") {
            fail(r.label(), pointer + "/" + std::string(key),
                 "\"" + path.string() + "\" must not climb out of the firmware root with \"..\"");
        }
    }
    return path.lexically_normal();
}

std::optional<ProfileEeprom> readEeprom(ObjectReader& parent, const std::filesystem::path& root) {
    const nlohmann::json* node = parent.member("eeprom");
    if (node == nullptr || node->is_null()) {
        return std::nullopt;
    }
    ObjectReader r(*node, parent.label(), "/eeprom",
                   {"image", "config", "signing_key", "pkcs11_module", "hsm_wrapper", "public_key",
                    "counter_sign", "counter_sign_recovery", "program_pubkey", "revoke_devkey",
                    "program_jtag_lock", "eeprom_write_protect", "recovery_config"});
    ProfileEeprom e;
    e.image = imagePath(r, "/eeprom");
    const auto config = r.string("config");
    if (!config) {
        fail(r.label(), "/eeprom/config", "missing: the boot.conf to embed as bootconf.txt");
    }
    e.config = resolveAgainst(root, *config);
    e.signing = readSigning(r, "/eeprom", false);
    e.counterSign = r.boolean("counter_sign").value_or(false);
    e.counterSignRecovery = r.boolean("counter_sign_recovery").value_or(false);
    e.programPubkey = r.boolean("program_pubkey").value_or(false);
    e.revokeDevkey = r.boolean("revoke_devkey").value_or(false);
    e.programJtagLock = r.boolean("program_jtag_lock").value_or(false);
    e.eepromWriteProtect = r.boolean("eeprom_write_protect").value_or(false);
    e.recoveryConfig = relativeName(r, "/eeprom", "recovery_config", "config.txt");
    const std::pair<bool, const char*> needSigning[] = {
        {e.counterSign, "counter_sign"},          {e.counterSignRecovery, "counter_sign_recovery"},
        {e.programPubkey, "program_pubkey"},      {e.revokeDevkey, "revoke_devkey"},
        {e.programJtagLock, "program_jtag_lock"}, {e.eepromWriteProtect, "eeprom_write_protect"}};
    for (const auto& [on, key] : needSigning) {
        if (on && !e.signing.enabled()) {
            fail(r.label(), std::string("/eeprom/") + key,
                 "needs the customer key: give signing_key or hsm_wrapper");
        }
    }
    return e;
}

std::optional<ProfileBootImage> readBootImage(ObjectReader& parent) {
    const nlohmann::json* node = parent.member("sign_boot_image");
    if (node == nullptr || node->is_null()) {
        return std::nullopt;
    }
    ObjectReader r(
        *node, parent.label(), "/sign_boot_image",
        {"image", "signing_key", "pkcs11_module", "hsm_wrapper", "public_key", "counter_sign"});
    ProfileBootImage b;
    b.image = imagePath(r, "/sign_boot_image");
    b.signing = readSigning(r, "/sign_boot_image", true);
    b.counterSign = r.boolean("counter_sign").value_or(false);
    return b;
}

// "storage": { "image": PATH, "bmap": PATH, "disk": MODEL, "verify": BOOL }.
// Relative paths are resolved against `base` (the profile file's directory,
// or the firmware base for built-in profiles). Whether the files exist is
// checked when the profile is activated (checkProfileStorage).
std::optional<ProfileStorage> readStorage(ObjectReader& parent, const std::filesystem::path& base) {
    const nlohmann::json* node = parent.member("storage");
    if (node == nullptr || node->is_null()) {
        return std::nullopt;
    }
    ObjectReader r(*node, parent.label(), "/storage", {"image", "bmap", "disk", "verify"});
    ProfileStorage s;
    const auto image = r.string("image");
    if (!image) {
        fail(r.label(), "/storage/image",
             "missing: the OS image to write (.img, .img.xz, .img.zst, .img.gz)");
    }
    s.image = resolveAgainst(base, *image);
    if (auto bmap = r.string("bmap")) {
        s.bmap = resolveAgainst(base, *bmap);
        if (*s.bmap == s.image) {
            fail(r.label(), "/storage/bmap", "is the image itself; give the image's .bmap file");
        }
    }
    s.disk = r.string("disk").value_or("");
    if (s.disk.find_first_of("\n\r\t") != std::string::npos) {
        fail(r.label(), "/storage/disk", "must be a disk model on one line, e.g. \"mmcblk0\"");
    }
    s.verify = r.boolean("verify").value_or(true);
    return s;
}

// "after_success" and "forget_after_s". Profiles that flash the EEPROM
// default to "once": a board that comes back after its recovery run (a
// reset, recovery_reboot=1) is not flashed again.
void readAfterSuccess(ObjectReader& r, Profile& p) {
    p.afterSuccess = p.eeprom ? AfterSuccess::Once : AfterSuccess::BootAgain;
    if (const auto value = r.string("after_success")) {
        if (*value == "boot-again") {
            p.afterSuccess = AfterSuccess::BootAgain;
        } else if (*value == "once") {
            p.afterSuccess = AfterSuccess::Once;
        } else if (*value == "once-per-serial") {
            p.afterSuccess = AfterSuccess::OncePerSerial;
        } else {
            fail(r.label(), "/after_success",
                 "\"" + *value + "\" is not one of \"boot-again\", \"once\", \"once-per-serial\"");
        }
    }
    if (const auto seconds = r.integer("forget_after_s", 1, kMaxForgetAfterS)) {
        if (p.afterSuccess != AfterSuccess::Once) {
            fail(r.label(), "/forget_after_s",
                 std::string("only used with \"after_success\": \"once\" (this profile's is \"") +
                     std::string(toString(p.afterSuccess)) + "\")");
        }
        p.forgetAfter = std::chrono::seconds(*seconds);
    }
}

Profile parseProfileText(std::string_view text, std::string_view label,
                         const std::filesystem::path& firmwareBase,
                         const std::filesystem::path& storageBase) {
    const nlohmann::json doc = profile_detail::parseDocument(text, label);
    ObjectReader r(doc, std::string(label), "",
                   {"name", "description", "comment", "firmware", "signed_boot", "metadata",
                    "timeouts", "retries", "retry_backoff_ms", "eeprom", "sign_boot_image",
                    "storage", "after_success", "forget_after_s"});
    Profile p;
    p.source = std::string(label);
    const auto name = r.string("name");
    if (!name) {
        fail(label, "/name", "missing: every profile has a name");
    }
    if (!isValidProfileName(*name)) {
        fail(label, "/name",
             "\"" + *name + "\" is not a valid profile name (letters, digits, '-', '_', '.')");
    }
    p.name = *name;
    p.description = r.string("description", true).value_or("");
    r.string("comment", true);
    p.firmware = readFirmware(r, firmwareBase);
    p.signedBoot = r.boolean("signed_boot").value_or(false);
    p.metadataDir = readMetadataDir(r);
    p.timeouts = readTimeouts(r);
    p.retries = readRetries(r);
    p.eeprom = readEeprom(r, p.firmware.root);
    p.signBootImage = readBootImage(r);
    p.storage = readStorage(r, storageBase);
    readAfterSuccess(r, p);
    return p;
}

}  // namespace

std::string_view toString(AfterSuccess policy) noexcept {
    switch (policy) {
        case AfterSuccess::BootAgain:
            return "boot-again";
        case AfterSuccess::Once:
            return "once";
        case AfterSuccess::OncePerSerial:
            return "once-per-serial";
    }
    return "unknown";
}

void checkProfileStorage(const Profile& profile) {
    if (!profile.storage) {
        return;
    }
    auto check = [&](const std::filesystem::path& file, const char* pointer, const char* what) {
        struct stat st {};
        if (::stat(file.c_str(), &st) != 0) {
            const int e = errno;
            throw Error(e == ENOENT || e == ENOTDIR ? Errc::NotFound : Errc::Io,
                        profile.source + ": " + pointer + ": " + what + " " + file.string() + ": " +
                            errnoText(e));
        }
        if (!S_ISREG(st.st_mode)) {
            throw Error(Errc::InvalidArgument, profile.source + ": " + pointer + ": " + what + " " +
                                                   file.string() + " is not a regular file");
        }
        if (::access(file.c_str(), R_OK) != 0) {
            const int e = errno;
            throw Error(Errc::Io, profile.source + ": " + pointer + ": cannot read " + what + " " +
                                      file.string() + ": " + errnoText(e));
        }
    };
    check(profile.storage->image, "/storage/image", "image");
    if (profile.storage->bmap) {
        check(*profile.storage->bmap, "/storage/bmap", "bmap file");
    }
}

FirmwareSetConfig Profile::firmwareSetConfig() const {
    FirmwareSetConfig c;
    c.root = firmware.root;
    c.trustedRoots = firmware.trusted;
    c.portOverlays = firmware.portOverlays;
    c.serialOverlayRoot = firmware.serialOverlays;
    c.fallbackRoots = firmware.fallback;
    c.embedded = firmware.embedded;
    return c;
}

BootOptions Profile::bootOptions() const {
    BootOptions o;
    o.timeouts.control = timeouts.control;
    o.timeouts.bulkChunk = timeouts.bulk;
    o.timeouts.controlIn = timeouts.request;
    o.signedBoot = signedBoot;
    o.bulkTransfersInFlight = bulkTransfersInFlight;
    o.expectedReports = expectedReports;
    return o;
}

Profile parseProfile(std::string_view text, std::string_view label,
                     const std::filesystem::path& firmwareBase) {
    return parseProfileText(text, label, firmwareBase, firmwareBase);
}

Profile loadProfileFile(const std::filesystem::path& file,
                        const std::filesystem::path& firmwareBase) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw Error(Errc::NotFound, file.string() + ": cannot open profile");
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        throw Error(Errc::Io, file.string() + ": cannot read profile");
    }
    std::error_code ec;
    const auto cwd = std::filesystem::current_path(ec);
    const auto dir = resolveAgainst(ec ? std::filesystem::path("/") : cwd, file).parent_path();
    return parseProfileText(text.str(), file.string(), firmwareBase, dir);
}

std::filesystem::path defaultFirmwareDir() {
    return RPIBOOT_DEFAULT_FIRMWARE_DIR;
}

}  // namespace rpiboot
