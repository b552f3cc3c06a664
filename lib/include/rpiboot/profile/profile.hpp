// Boot profiles (config/profiles/*.json): a profile names a firmware set, its
// overlays, where metadata goes, signed boot and timeouts.
//
// This area parses and validates profiles and the daemon configuration
// (daemon_config.hpp) strictly: an unknown key is an error (typo protection)
// and every error names the file, the JSON pointer of the offending key and
// the reason. It only reads files; it never touches a device and never builds
// firmware sets (callers decide when); it builds a profile's generated files
// (pieeprom.bin, boot.sig, generated_files.hpp) only when asked to.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rpiboot/boot/boot.hpp"
#include "rpiboot/core/device.hpp"
#include "rpiboot/firmware/firmware_set.hpp"

namespace rpiboot {

struct ProfileTimeouts {
    std::chrono::milliseconds control{1000};       // each control transfer
    std::chrono::milliseconds bulk{5000};          // each 16 KiB bulk chunk
    std::chrono::milliseconds request{20000};      // a control IN the board may hold
    std::chrono::milliseconds reenumerate{10000};  // ROM done -> second stage seen
    // The whole boot of one board, every attempt included; 0: no deadline.
    std::chrono::milliseconds boot{300000};
    // "after_boot_ms": file server ended -> the USB device the board becomes
    // appears on the same port (and, with a storage section, its disk).
    std::chrono::milliseconds afterBoot{30000};
};

// "after_success": what happens when a board that was booted successfully
// comes back to its boot ROM on the same port (a reset, recovery_reboot=1).
enum class AfterSuccess {
    BootAgain,      // "boot-again": boot it again
    Once,           // "once": leave it alone until it has been unplugged for `forgetAfter`
    OncePerSerial,  // "once-per-serial": never boot that serial again (persisted list)
};

std::string_view toString(AfterSuccess policy) noexcept;  // "boot-again", "once", ...

// "storage": write an OS image to one of the disks the board becomes, then verify it.
struct ProfileStorage {
    // Absolute after parsing: relative paths are resolved against the directory
    // of the profile's file (built-in profiles: the firmware base directory).
    std::filesystem::path image;
    std::optional<std::filesystem::path> bmap;  // same; write only the mapped ranges
    // "disk": the disk's model / inquiry string ("mmcblk0", "nvme0n1"); empty:
    // the board must have exactly one disk.
    std::string disk;
    bool verify = true;  // read back and compare SHA-256
};

// How often a boot is tried again after a transient failure (a stall, a
// timeout, a board that left the bus and comes back on the same port).
struct ProfileRetries {
    unsigned attempts = 2;                    // "retries": tries after the first
    std::chrono::milliseconds backoff{1000};  // before the first retry; doubles after each
};

struct ProfileFirmware {
    // Absolute after parsing: relative roots are resolved against the
    // firmware base directory.
    std::filesystem::path root;
    bool portOverlays = false;
    std::filesystem::path serialOverlays;  // empty: none
    std::vector<std::filesystem::path> fallback;
    std::vector<std::filesystem::path> trusted;
    // "embedded": the firmware compiled in (embedded_firmware.hpp) answers
    // what no directory has. Only a mass-storage set may ask for it: the
    // embedded loaders are the mass-storage ones. Cleared for every profile
    // when the daemon configuration says "embedded_firmware": false.
    bool embedded = false;
    // "requires": per chip the names the set must answer for a board of that
    // chip (what `rpibootd --check-config` checks). Empty: not declared.
    std::vector<std::pair<Chip, std::vector<std::string>>> required;
};

// How generated files are signed: a private key in a PEM file, or an HSM
// wrapper program (then `publicKey` is required to check what it returns).
struct ProfileSigning {
    std::filesystem::path signingKey;    // absolute, or a "pkcs11:" URI; empty: none
    std::filesystem::path pkcs11Module;  // absolute; required with a pkcs11: key
    std::filesystem::path hsmWrapper;    // absolute; empty: none
    std::filesystem::path publicKey;     // absolute; empty: none
    bool enabled() const noexcept { return !signingKey.empty() || !hsmWrapper.empty(); }
};

// "eeprom": pieeprom.bin + pieeprom.sig built in memory from a base image
// and a boot.conf (recovery, secure-boot-recovery).
struct ProfileEeprom {
    // As written. Absolute: one image, its size says the chip. Relative: looked
    // up per chip as <root>/<chip folder>/IMAGE, then <root>/IMAGE.
    std::filesystem::path image;
    // Absolute after parsing (relative: to the root). One directly in the root
    // is overridden per chip by <root>/<chip folder>/<its name> when that exists.
    std::filesystem::path config;
    ProfileSigning signing;  // config signed and public key embedded when enabled
    // BCM2712 secure boot (need signing): counter-sign the EEPROM's bootcode
    // and bootsys with the customer key ("counter_sign"), and serve the set's
    // 2712 loader (recovery.bin) counter-signed ("counter_sign_recovery"; only
    // for boards already locked to that key).
    bool counterSign = false;
    bool counterSignRecovery = false;
    // The irreversible switches written into the generated recovery config.txt
    // (need signing). Each defaults to off; a profile that turns one on may
    // only be selected by rules naming ports or serials.
    bool programPubkey = false;
    bool revokeDevkey = false;
    bool programJtagLock = false;
    // eeprom_write_protect=1: protect the EEPROM's status register (effective
    // with the board's nWP pin); not OTP. Off: the line is left out.
    bool eepromWriteProtect = false;
    // The config.txt the generated one starts from, resolved in the profile's
    // firmware set per chip (default "config.txt"; a missing one starts empty).
    // Generated whenever signing is enabled, so the switches above are always
    // written explicitly, whatever the file on disk says.
    std::filesystem::path recoveryConfig;

    bool irreversible() const noexcept { return programPubkey || revokeDevkey || programJtagLock; }
};

// "sign_boot_image": boot.img served with a boot.sig made in memory (secure-boot-msd).
struct ProfileBootImage {
    std::filesystem::path image;  // as written; relative ones are looked up like ProfileEeprom's
    ProfileSigning signing;       // required
    // BCM2712 boards locked to the customer key only run loaders that carry
    // its counter-signature: serve the set's 2712 loader (bootcode5.bin, from
    // bootfiles.bin) counter-signed ("counter_sign").
    bool counterSign = false;
};

struct Profile {
    std::string name;
    std::string description;
    ProfileFirmware firmware;
    bool signedBoot = false;
    std::filesystem::path metadataDir;  // empty: metadata is kept in memory only
    ProfileTimeouts timeouts;
    ProfileRetries retries;
    std::optional<ProfileEeprom> eeprom;
    std::optional<ProfileBootImage> signBootImage;
    std::optional<ProfileStorage> storage;
    // Profiles that build an EEPROM (recovery) default to Once, others to BootAgain.
    AfterSuccess afterSuccess = AfterSuccess::BootAgain;
    // "forget_after_s" (Once): how long the board must be gone from its port
    // before it counts as a new board.
    std::chrono::seconds forgetAfter{5};
    std::string source;  // the file (or built-in label) it was read from
    // Not read from profile files: the daemon's --bulk-transfers-in-flight
    // (ConfigurationOverrides) sets it for every profile.
    std::size_t bulkTransfersInFlight = kDefaultBulkTransfersInFlight;
    // What the board must report for a session to count as a success; filled
    // from the generated files by expectedReports() when the profile is activated.
    std::vector<ExpectedReport> expectedReports;

    // True if serving this profile changes a board for good (OTP, JTAG lock).
    bool irreversible() const noexcept { return eeprom && eeprom->irreversible(); }

    // Without generated files; see generateProfileFiles().
    FirmwareSetConfig firmwareSetConfig() const;
    BootOptions bootOptions() const;
};

// All of these throw Error(Errc::InvalidArgument, "<file>: <pointer>: <reason>")
// for invalid content and Error(Errc::NotFound, ...) for a missing file.

// `firmwareBase` resolves relative firmware paths.
Profile parseProfile(std::string_view text, std::string_view label,
                     const std::filesystem::path& firmwareBase);
Profile loadProfileFile(const std::filesystem::path& file,
                        const std::filesystem::path& firmwareBase);

// A profile's storage files exist and are readable regular files: throws
// Error(Errc::NotFound, "<file>: /storage/image: image <path>: ...") for a
// missing image or bmap (Io when unreadable, InvalidArgument when not a
// regular file). Nothing to check without a storage section. The daemon runs
// it when it activates a configuration, beside building generated files.
void checkProfileStorage(const Profile& profile);

// The compiled-in firmware base directory (RPIBOOT_DEFAULT_FIRMWARE_DIR).
std::filesystem::path defaultFirmwareDir();

}  // namespace rpiboot
