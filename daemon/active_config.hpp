// The configuration the daemon is running on, ready to boot boards with.
//
// Loads the daemon configuration and profiles (built-in ones plus the
// profile directory), opens each profile's firmware set once, and answers
// "which profile does this board get". An ActiveConfig is immutable and
// shared: boards keep the profile they started with across a reload, so a
// reload never disturbs a board in flight. A profile whose firmware set
// cannot be opened stays selectable; boards given it fail with the reason.
// Files a profile generates (a recovery pieeprom.bin) are built once here.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rpiboot/firmware/firmware_set.hpp"
#include "rpiboot/profile/daemon_config.hpp"
#include "rpiboot/profile/profile.hpp"

namespace rpiboot {
class FileCache;
}

namespace rpibootd {

class Logger;

struct ProfileRuntime {
    rpiboot::Profile profile;
    std::shared_ptr<const rpiboot::FirmwareSet> firmware;  // null when unavailable
    std::string firmwareError;                             // why it is unavailable
};

class ActiveConfig {
  public:
    struct Selection {
        std::shared_ptr<const ProfileRuntime> profile;
        std::string reason;  // "rule /rules/0" or "default_profile"
    };

    ActiveConfig(rpiboot::Configuration configuration,
                 std::map<std::string, std::shared_ptr<const ProfileRuntime>> runtimes);

    Selection select(const rpiboot::BoardMatchKey& board) const;
    bool ignores(const rpiboot::BoardMatchKey& board) const {
        return configuration_.ignores(board);
    }
    const rpiboot::Configuration& configuration() const noexcept { return configuration_; }
    std::vector<std::string> profileNames() const { return configuration_.profileNames(); }

  private:
    rpiboot::Configuration configuration_;
    std::map<std::string, std::shared_ptr<const ProfileRuntime>> runtimes_;
};

struct ConfigLocation {
    std::filesystem::path file = "/etc/rpibootd/rpibootd.json";
    bool optional = true;  // the default path may be absent; an explicit -c may not
    rpiboot::ConfigurationOverrides overrides;
};

// The profiles shipped in config/profiles/, compiled in.
std::vector<rpiboot::ProfileText> builtinProfiles();

// Throws rpiboot::Error (file, key, reason) for an invalid configuration.
rpiboot::Configuration loadConfiguration(const ConfigLocation& where);

// Opens the firmware sets (`cache` null: none are opened, for tests) and
// builds each profile's generated files (pieeprom.bin, boot.sig). Throws
// rpiboot::Error when a profile that the default or a rule names cannot build
// them; other profiles that cannot are kept, unavailable, with the reason.
std::shared_ptr<const ActiveConfig> activate(rpiboot::Configuration configuration,
                                             const std::shared_ptr<rpiboot::FileCache>& cache,
                                             Logger* log);

}  // namespace rpibootd
