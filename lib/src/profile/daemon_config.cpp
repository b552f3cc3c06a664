#include "rpiboot/profile/daemon_config.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include "profile/json_reader.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/profile/profile.hpp"

namespace rpiboot {

using profile_detail::appendPointer;
using profile_detail::fail;
using profile_detail::ObjectReader;
using profile_detail::resolveAgainst;

namespace {

constexpr std::int64_t kMaxForgetMs = std::int64_t{7} * 24 * 3600 * 1000;

ProfileRule readRule(const nlohmann::json& node, const std::string& label,
                     const std::string& pointer) {
    ObjectReader r(node, label, pointer,
                   {"chip", "port", "serial", "profile", "ignore", "comment"});
    ProfileRule rule;
    rule.pointer = pointer;
    if (auto chip = r.string("chip")) {
        rule.chip = parseChip(*chip);
        if (!rule.chip) {
            fail(
                label, r.pointerOf("chip"),
                "\"" + *chip + "\" is not a chip or boot PID (2835, 2837, 2711, 2712, 2763, 2764)");
        }
    }
    rule.port = r.string("port").value_or("");
    rule.serial = r.string("serial").value_or("");
    r.string("comment", true);
    rule.ignore = r.boolean("ignore").value_or(false);
    const auto profile = r.string("profile");
    if (rule.ignore && profile) {
        fail(label, r.pointerOf("profile"),
             "an ignore rule selects no profile: drop \"profile\" or \"ignore\"");
    }
    if (!rule.ignore && !profile) {
        fail(label, r.pointerOf("profile"),
             "missing: a rule names the profile it selects (or says \"ignore\": true)");
    }
    rule.profile = profile.value_or("");
    return rule;
}

MetricsConfig readMetrics(ObjectReader& parent) {
    MetricsConfig m;
    const nlohmann::json* node = parent.member("metrics");
    if (node == nullptr) {
        return m;
    }
    ObjectReader r(*node, parent.label(), "/metrics",
                   {"enabled", "file", "interval_ms", "comment"});
    r.string("comment", true);
    m.enabled = r.boolean("enabled").value_or(false);
    if (auto file = r.string("file")) {
        if (!std::filesystem::path(*file).is_absolute()) {
            fail(parent.label(), r.pointerOf("file"), "\"" + *file + "\" is not an absolute path");
        }
        m.file = *file;
    }
    m.interval = r.milliseconds("interval_ms", 100, 3600 * 1000).value_or(m.interval);
    return m;
}

std::string knownNames(const std::map<std::string, Profile>& profiles) {
    std::string out;
    for (const auto& [name, profile] : profiles) {
        out += (out.empty() ? "" : ", ") + name;
    }
    return out;
}

std::string readWholeFile(const std::filesystem::path& file, std::string_view what) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw Error(Errc::NotFound, file.string() + ": cannot open " + std::string(what));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        throw Error(Errc::Io, file.string() + ": cannot read " + std::string(what));
    }
    return text.str();
}

std::vector<std::filesystem::path> profileFilesIn(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        throw Error(Errc::NotFound, dir.string() + ": profile directory does not exist");
    }
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        if (entry.path().extension() == ".json" && !entry.is_directory()) {
            files.push_back(entry.path());
        }
    }
    if (ec) {
        throw Error(Errc::Io, dir.string() + ": cannot list profile directory: " + ec.message());
    }
    std::sort(files.begin(), files.end());
    return files;
}

bool globMatches(const std::string& pattern, const std::string& text, int flags) {
    return ::fnmatch(pattern.c_str(), text.c_str(), flags) == 0;
}

bool ruleMatches(const ProfileRule& rule, const BoardMatchKey& board) {
    if (rule.chip && *rule.chip != board.chip) {
        return false;
    }
    if (!rule.port.empty() && !globMatches(rule.port, board.port, 0)) {
        return false;
    }
    if (!rule.serial.empty() &&
        (board.serial.empty() || !globMatches(rule.serial, board.serial, FNM_CASEFOLD))) {
        return false;
    }
    return true;
}

}  // namespace

DaemonConfig defaultDaemonConfig() {
    DaemonConfig c;
    c.source = "built-in defaults";
    c.firmwareDir = defaultFirmwareDir();
    c.profilesDir = kDefaultProfilesDir;
    c.profilesDirOptional = true;
    c.defaultProfile = "msd";
    // BCM2712 has no legacy mass-storage firmware: like upstream, boot it
    // with the mass-storage gadget.
    ProfileRule gadget;
    gadget.chip = Chip::Bcm2712;
    gadget.profile = "mass-storage-gadget";
    gadget.pointer = "(built-in rule)";
    c.rules.push_back(gadget);
    return c;
}

DaemonConfig parseDaemonConfig(std::string_view text, std::string_view label) {
    const nlohmann::json doc = profile_detail::parseDocument(text, label);
    const std::string file(label);
    const std::filesystem::path base = std::filesystem::path(file).parent_path();
    ObjectReader r(doc, file, "",
                   {"comment", "profiles_dir", "firmware_dir", "default_profile", "forget_after_ms",
                    "rules", "metrics", "state_dir", "embedded_firmware"});
    DaemonConfig c = defaultDaemonConfig();
    c.source = file;
    c.rules.clear();  // a file's rules replace the built-in ones entirely
    r.string("comment", true);
    if (auto dir = r.string("profiles_dir")) {
        c.profilesDir = resolveAgainst(base, *dir);
        c.profilesDirOptional = false;
    }
    if (auto dir = r.string("firmware_dir")) {
        c.firmwareDir = resolveAgainst(base, *dir);
    }
    c.defaultProfile = r.string("default_profile").value_or(c.defaultProfile);
    c.forgetAfter = r.milliseconds("forget_after_ms", 0, kMaxForgetMs).value_or(c.forgetAfter);
    c.metrics = readMetrics(r);
    if (auto dir = r.string("state_dir")) {
        c.stateDir = resolveAgainst(base, *dir);
    }
    c.embeddedFirmware = r.boolean("embedded_firmware").value_or(c.embeddedFirmware);
    if (const nlohmann::json* rules = r.member("rules")) {
        if (!rules->is_array()) {
            fail(file, "/rules", "expected an array of rule objects");
        }
        for (std::size_t i = 0; i < rules->size(); ++i) {
            c.rules.push_back(
                readRule((*rules)[i], file, appendPointer("/rules", std::to_string(i))));
        }
    }
    return c;
}

DaemonConfig loadDaemonConfig(const std::filesystem::path& file, bool optional) {
    std::error_code ec;
    if (optional && !std::filesystem::exists(file, ec)) {
        return defaultDaemonConfig();
    }
    return parseDaemonConfig(readWholeFile(file, "daemon configuration"), file.string());
}

namespace {

// A pattern that names something: not empty and not only wildcards.
bool namesSomething(const std::string& pattern) {
    return pattern.find_first_not_of("*?") != std::string::npos;
}

// A profile that programs OTP or locks JTAG may only reach boards a rule
// picks by port or serial: never as the default, never through a catch-all.
void checkIrreversibleSelection(const std::map<std::string, Profile>& profiles,
                                const DaemonConfig& daemon) {
    for (const auto& [name, profile] : profiles) {
        if (!profile.irreversible()) {
            continue;
        }
        if (daemon.defaultProfile == name) {
            fail(daemon.source, "/default_profile",
                 "profile \"" + name +
                     "\" changes boards for good (OTP or JTAG) and cannot be the default; "
                     "select it with rules that name ports or serials");
        }
        for (const auto& rule : daemon.rules) {
            if (rule.profile == name && !namesSomething(rule.port) &&
                !namesSomething(rule.serial)) {
                fail(daemon.source, rule.pointer,
                     "profile \"" + name +
                         "\" changes boards for good (OTP or JTAG); a rule selecting it must "
                         "name a port or a serial, not match every board");
            }
        }
    }
}

}  // namespace

Configuration buildConfiguration(DaemonConfig daemon, const std::vector<ProfileText>& builtins,
                                 const ConfigurationOverrides& overrides) {
    if (overrides.firmwareDir) {
        daemon.firmwareDir =
            resolveAgainst(std::filesystem::current_path(), *overrides.firmwareDir);
    }
    if (overrides.profilesDir) {
        daemon.profilesDir =
            resolveAgainst(std::filesystem::current_path(), *overrides.profilesDir);
        daemon.profilesDirOptional = false;
    }
    Configuration config;
    for (const auto& builtin : builtins) {
        Profile p = parseProfile(builtin.text, builtin.label, daemon.firmwareDir);
        config.profiles.insert_or_assign(p.name, std::move(p));
    }
    std::error_code ec;
    const bool dirWanted =
        !daemon.profilesDir.empty() &&
        (!daemon.profilesDirOptional || std::filesystem::exists(daemon.profilesDir, ec));
    if (dirWanted) {
        std::map<std::string, std::string> fromDir;  // name -> file, to catch duplicates
        for (const auto& file : profileFilesIn(daemon.profilesDir)) {
            Profile p = loadProfileFile(file, daemon.firmwareDir);
            const auto [it, fresh] = fromDir.emplace(p.name, file.string());
            if (!fresh) {
                fail(file.string(), "/name",
                     "profile \"" + p.name + "\" is already defined in " + it->second);
            }
            config.profiles.insert_or_assign(p.name, std::move(p));
        }
    }
    if (config.profiles.find(daemon.defaultProfile) == config.profiles.end()) {
        fail(daemon.source, "/default_profile",
             "no profile named \"" + daemon.defaultProfile +
                 "\" (known: " + knownNames(config.profiles) + ")");
    }
    for (const auto& rule : daemon.rules) {
        if (!rule.ignore && config.profiles.find(rule.profile) == config.profiles.end()) {
            fail(daemon.source, rule.pointer + "/profile",
                 "no profile named \"" + rule.profile +
                     "\" (known: " + knownNames(config.profiles) + ")");
        }
    }
    if (!daemon.embeddedFirmware) {
        for (auto& [name, profile] : config.profiles) {
            profile.firmware.embedded = false;
        }
    }
    if (overrides.bulkTransfersInFlight) {
        for (auto& [name, profile] : config.profiles) {
            profile.bulkTransfersInFlight = *overrides.bulkTransfersInFlight;
        }
    }
    checkIrreversibleSelection(config.profiles, daemon);
    config.daemon = std::move(daemon);
    return config;
}

const ProfileRule* Configuration::matchingRule(const BoardMatchKey& board) const {
    for (const auto& rule : daemon.rules) {
        if (ruleMatches(rule, board)) {
            return &rule;
        }
    }
    return nullptr;
}

const Profile& Configuration::select(const BoardMatchKey& board) const {
    const ProfileRule* rule = matchingRule(board);
    return profiles.at(rule != nullptr && !rule->ignore ? rule->profile : daemon.defaultProfile);
}

bool Configuration::ignores(const BoardMatchKey& board) const {
    const ProfileRule* rule = matchingRule(board);
    return rule != nullptr && rule->ignore;
}

std::vector<std::string> Configuration::profileNames() const {
    std::vector<std::string> names;
    for (const auto& [name, profile] : profiles) {
        names.push_back(name);
    }
    return names;
}

}  // namespace rpiboot
