// The daemon configuration (/etc/rpibootd/rpibootd.json): where profiles and
// firmware live and which profile a board gets, by chip, port-path glob or
// serial; and the Configuration a daemon runs on, with every profile loaded.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rpiboot/core/device.hpp"
#include "rpiboot/profile/profile.hpp"

namespace rpiboot {

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
    // "embedded_firmware": false keeps every profile to its directories.
    bool embeddedFirmware = true;
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

// These throw Error(Errc::InvalidArgument, "<file>: <pointer>: <reason>")
// for invalid content and Error(Errc::NotFound, ...) for a missing file.

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
    // Bulk OUT transfers kept queued per board, for every profile (1: one at
    // a time, the reference the benchmarks compare against).
    std::optional<std::size_t> bulkTransfersInFlight;
};

// Parses the built-in profiles, then every *.json in the profile directory
// (which replace built-ins of the same name), and checks that the default
// profile and every rule's profile exist. Nothing is kept from a failed load.
Configuration buildConfiguration(DaemonConfig daemon, const std::vector<ProfileText>& builtins,
                                 const ConfigurationOverrides& overrides = {});

}  // namespace rpiboot
