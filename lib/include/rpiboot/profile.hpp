// Boot profiles and the daemon configuration that chooses between them.
//
// A profile (config/profiles/*.json) names a firmware set, its overlays,
// where metadata goes, signed boot and timeouts. The daemon configuration
// (/etc/rpibootd/rpibootd.json) says where profiles and firmware live and
// which profile a board gets, by chip, port-path glob or serial. This module
// parses and validates both, strictly: an unknown key is an error (typo
// protection) and every error names the file, the JSON pointer of the
// offending key and the reason. It only reads files; it never touches a
// device and never builds firmware sets (callers decide when); it builds a
// profile's generated files (pieeprom.bin, boot.sig) only when asked to.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rpiboot/boot.hpp"
#include "rpiboot/device.hpp"
#include "rpiboot/firmware.hpp"

namespace rpiboot {

struct ProfileTimeouts {
    std::chrono::milliseconds control{1000};       // each control transfer
    std::chrono::milliseconds bulk{5000};          // each 16 KiB bulk chunk
    std::chrono::milliseconds request{20000};      // a control IN the board may hold
    std::chrono::milliseconds reenumerate{10000};  // ROM done -> second stage seen
    // The whole boot of one board, every attempt included; 0: no deadline.
    std::chrono::milliseconds boot{300000};
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
};

// How generated files are signed: a private key in a PEM file, or an HSM
// wrapper program (then `publicKey` is required to check what it returns).
struct ProfileSigning {
    std::filesystem::path signingKey;  // absolute; empty: none
    std::filesystem::path hsmWrapper;  // absolute; empty: none
    std::filesystem::path publicKey;   // absolute; empty: none
    bool enabled() const noexcept { return !signingKey.empty() || !hsmWrapper.empty(); }
};

// "eeprom": pieeprom.bin + pieeprom.sig built in memory from a base image
// and a boot.conf (recovery, secure-boot-recovery).
struct ProfileEeprom {
    // As written. Absolute: one image, its size says the chip. Relative: looked
    // up per chip as <root>/<chip folder>/IMAGE, then <root>/IMAGE.
    std::filesystem::path image;
    std::filesystem::path config;  // absolute after parsing (relative: to the root)
    ProfileSigning signing;        // config signed and public key embedded when enabled
};

// "sign_boot_image": boot.img served with a boot.sig made in memory (secure-boot-msd).
struct ProfileBootImage {
    std::filesystem::path image;  // as written; relative ones are looked up like ProfileEeprom's
    ProfileSigning signing;       // required
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
    std::string source;  // the file (or built-in label) it was read from

    // Without generated files; see generateProfileFiles().
    FirmwareSetConfig firmwareSetConfig() const;
    BootOptions bootOptions() const;
};

// One selection rule of the daemon configuration. Every key present must
// match; a rule with none matches every board.
struct ProfileRule {
    std::optional<Chip> chip;  // "chip": "2711", "BCM2712", "2763" (PID), ...
    std::string port;          // "port": fnmatch glob on the USB port path, "1-1.*"
    std::string serial;        // "serial": fnmatch glob on the ROM serial, case-insensitive
    std::string profile;       // empty for an ignore rule
    // "ignore": true: boards it matches are never opened (another tool may
    // serve them); the rule names no profile.
    bool ignore = false;
    std::string pointer;  // "/rules/2", for messages
};

// The Prometheus textfile (node_exporter's textfile collector) rpibootd keeps.
inline constexpr const char* kDefaultMetricsFile =
    "/var/lib/prometheus/node-exporter/rpibootd.prom";

struct MetricsConfig {
    bool enabled = false;
    std::filesystem::path file = kDefaultMetricsFile;
    // Shortest gap between two writes; changes in between are collected.
    std::chrono::milliseconds interval{1000};
};

inline constexpr const char* kDefaultStateDir = "/var/lib/rpibootd";

inline constexpr const char* kDefaultProfilesDir = "/etc/rpibootd/profiles";

struct DaemonConfig {
    std::string source;  // the file it came from; "built-in defaults" when absent
    // Extra profile directory; its files add to or replace the built-in
    // profiles by name. Empty: built-in profiles only.
    std::filesystem::path profilesDir;
    // True while profilesDir is the default: then a missing directory is fine.
    bool profilesDirOptional = false;
    std::filesystem::path firmwareDir;
    std::string defaultProfile = "msd";
    std::vector<ProfileRule> rules;
    // A disconnected board's record is forgotten after this long (0: at once).
    std::chrono::milliseconds forgetAfter{60000};
    MetricsConfig metrics;
    // Where the daemon keeps what must survive a restart (held ports).
    std::filesystem::path stateDir = kDefaultStateDir;
};

// What a rule looks at: known when a board shows up.
struct BoardMatchKey {
    Chip chip = Chip::Bcm2711;
    std::string port;
    std::string serial;
};

// A profile's text with the label used in messages (a path or "built-in:msd").
struct ProfileText {
    std::string label;
    std::string text;
};

// Everything a daemon runs on: its configuration and the profiles by name.
struct Configuration {
    DaemonConfig daemon;
    std::map<std::string, Profile> profiles;

    // First rule that matches wins; no match: the default profile. An ignore
    // rule that matches first: see ignores().
    const Profile& select(const BoardMatchKey& board) const;
    // The first matching rule says "ignore": the board must not be opened.
    bool ignores(const BoardMatchKey& board) const;
    // The rule select() follows, nullptr when the default profile applies.
    const ProfileRule* matchingRule(const BoardMatchKey& board) const;
    std::vector<std::string> profileNames() const;
};

// All of these throw Error(Errc::InvalidArgument, "<file>: <pointer>: <reason>")
// for invalid content and Error(Errc::NotFound, ...) for a missing file.

// `firmwareBase` resolves relative firmware paths.
Profile parseProfile(std::string_view text, std::string_view label,
                     const std::filesystem::path& firmwareBase);
Profile loadProfileFile(const std::filesystem::path& file,
                        const std::filesystem::path& firmwareBase);

// Built-in defaults: the compiled-in firmware directory, the optional
// /etc/rpibootd/profiles, profile "msd", and one rule: BCM2712 boards get
// "mass-storage-gadget". A configuration file replaces the rules entirely.
DaemonConfig defaultDaemonConfig();
DaemonConfig parseDaemonConfig(std::string_view text, std::string_view label);
// A missing file gives defaultDaemonConfig() only when `optional` is true.
DaemonConfig loadDaemonConfig(const std::filesystem::path& file, bool optional);

struct ConfigurationOverrides {
    std::optional<std::filesystem::path> firmwareDir;
    std::optional<std::filesystem::path> profilesDir;
};

// Parses the built-in profiles, then every *.json in the profile directory
// (which replace built-ins of the same name), and checks that the default
// profile and every rule's profile exist. Nothing is kept from a failed load.
Configuration buildConfiguration(DaemonConfig daemon, const std::vector<ProfileText>& builtins,
                                 const ConfigurationOverrides& overrides = {});

// The files a profile's "eeprom" / "sign_boot_image" sections produce, keyed
// for FirmwareSetConfig::generated ("2711/pieeprom.bin", "2712/boot.sig", ...),
// signed at `timestamp`. Reads the images, boot.conf and keys, and runs the
// HSM wrapper if one is named. Empty for a profile without those sections.
// Throws rpiboot::Error naming the profile, the file and the reason (missing
// image, an image of no known EEPROM size, a bad key, a failed signature).
std::map<std::string, ServedFile, std::less<>> generateProfileFiles(const Profile& profile,
                                                                    std::int64_t timestamp);

// The compiled-in firmware base directory (RPIBOOT_DEFAULT_FIRMWARE_DIR).
std::filesystem::path defaultFirmwareDir();

}  // namespace rpiboot
