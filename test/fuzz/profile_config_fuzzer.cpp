// Fuzz target: profile and daemon configuration JSON (profile.hpp).
//
// Input: one mode byte, then JSON text.
//   mode % 3 == 0  the text is a profile
//   mode % 3 == 1  the text is a daemon configuration
//   mode % 3 == 2  "<daemon configuration>\0<profile>": both are parsed, a
//                  configuration is built from them and every chip is matched
//                  against its rules.
//
// The promise under test: invalid content is reported as rpiboot::Error
// (never a crash, never another exception type); whatever is accepted is
// within the documented ranges and paths are absolute where promised.
#include <filesystem>
#include <vector>

#include "fuzz_support.hpp"
#include "rpiboot/core/device.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/profile/daemon_config.hpp"
#include "rpiboot/profile/profile.hpp"

namespace rpiboot::fuzz {
namespace {

const std::filesystem::path kFirmwareBase = "/srv/rpibootd/firmware";
constexpr std::chrono::milliseconds kMaxTimeout{600000};

// Built-in profiles a configuration can fall back on.
const std::vector<ProfileText>& builtins() {
    static const std::vector<ProfileText> texts = {
        {"built-in:msd", R"({"name": "msd", "firmware": {"root": "msd"}})"},
        {"built-in:mass-storage-gadget",
         R"({"name": "mass-storage-gadget", "firmware": {"root": "mass-storage-gadget64",
             "fallback": ["."]}, "metadata": {"dir": "/var/lib/rpibootd/metadata"}})"},
    };
    return texts;
}

void checkProfile(const Profile& p) {
    FUZZ_CHECK(!p.name.empty() && p.name.size() <= 64 && p.name.front() != '.', p.name);
    FUZZ_CHECK(p.firmware.root.is_absolute(),
               "firmware root is absolute after parsing: " + p.firmware.root.string());
    for (const auto& dir : p.firmware.fallback) {
        FUZZ_CHECK(dir.is_absolute(), "fallback roots are absolute: " + dir.string());
    }
    for (const auto& dir : p.firmware.trusted) {
        FUZZ_CHECK(dir.is_absolute(), "trusted roots are absolute: " + dir.string());
    }
    FUZZ_CHECK(p.metadataDir.empty() || p.metadataDir.is_absolute(), p.metadataDir.string());
    for (const auto t :
         {p.timeouts.control, p.timeouts.bulk, p.timeouts.request, p.timeouts.reenumerate}) {
        FUZZ_CHECK(t.count() >= 1 && t <= kMaxTimeout, "timeouts within 1 ms to 10 min");
    }
    const FirmwareSetConfig set = p.firmwareSetConfig();
    FUZZ_CHECK(set.root == p.firmware.root && set.fallbackRoots == p.firmware.fallback,
               "firmware set follows the profile");
    const BootOptions boot = p.bootOptions();
    FUZZ_CHECK(boot.signedBoot == p.signedBoot && boot.timeouts.controlIn == p.timeouts.request,
               "boot options follow the profile");
}

void checkDaemonConfig(const DaemonConfig& c) {
    FUZZ_CHECK(c.forgetAfter.count() >= 0, "forget_after_ms is not negative");
    FUZZ_CHECK(!c.defaultProfile.empty(), "a default profile is always named");
    for (const auto& rule : c.rules) {
        FUZZ_CHECK(!rule.profile.empty() && !rule.pointer.empty(), "rules name a profile");
    }
}

void checkConfiguration(const Configuration& config) {
    FUZZ_CHECK(config.profiles.count(config.daemon.defaultProfile) == 1,
               "the default profile exists");
    static constexpr Chip kChips[] = {Chip::Bcm2835, Chip::Bcm2837, Chip::Bcm2711, Chip::Bcm2712};
    const char* ports[] = {"1-1", "1-1.3.2", ""};
    const char* serials[] = {"", "a7eb274c", "*"};
    for (const Chip chip : kChips) {
        for (const char* port : ports) {
            for (const char* serial : serials) {
                const BoardMatchKey key{chip, port, serial};
                const Profile& chosen = config.select(key);
                const ProfileRule* rule = config.matchingRule(key);
                const std::string& expected =
                    rule != nullptr ? rule->profile : config.daemon.defaultProfile;
                FUZZ_CHECK(chosen.name == expected, "select() follows the matching rule");
            }
        }
    }
}

}  // namespace

int profileConfigOne(const std::uint8_t* data, std::size_t size) {
    FuzzInput input(std::span<const std::uint8_t>(data, size));
    const std::uint8_t mode = input.byte() % 3;
    try {
        if (mode == 0) {
            checkProfile(parseProfile(input.rest(), "fuzz-profile.json", kFirmwareBase));
        } else if (mode == 1) {
            checkDaemonConfig(parseDaemonConfig(input.rest(), "/etc/rpibootd/fuzz.json"));
        } else {
            const std::string daemonText = input.until(0);
            const std::string profileText = input.rest();
            DaemonConfig daemon = parseDaemonConfig(daemonText, "/etc/rpibootd/fuzz.json");
            checkDaemonConfig(daemon);
            // The configuration under test is the text: keep the file system out.
            daemon.profilesDir.clear();
            daemon.firmwareDir = kFirmwareBase;
            std::vector<ProfileText> texts = builtins();
            texts.push_back({"fuzz-profile.json", profileText});
            const Configuration config = buildConfiguration(std::move(daemon), texts);
            for (const auto& [name, profile] : config.profiles) {
                FUZZ_CHECK(name == profile.name, "profiles are keyed by their name");
                checkProfile(profile);
            }
            checkConfiguration(config);
        }
    } catch (const Error& error) {
        FUZZ_CHECK(error.code() == Errc::InvalidArgument,
                   "invalid configuration is Errc::InvalidArgument: " + std::string(error.what()));
        FUZZ_CHECK(std::string_view(error.what()).find(": ") != std::string_view::npos,
                   "messages say where: " + std::string(error.what()));
    }
    return 0;
}

}  // namespace rpiboot::fuzz

RPIBOOT_FUZZ_ENTRY(profileConfigOne)
