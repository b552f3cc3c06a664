#include "active_config.hpp"

#include "journal.hpp"
#include "rpiboot/error.hpp"
#include "rpiboot/file_cache.hpp"

namespace rpibootd {

ActiveConfig::ActiveConfig(rpiboot::Configuration configuration,
                           std::map<std::string, std::shared_ptr<const ProfileRuntime>> runtimes)
    : configuration_(std::move(configuration)), runtimes_(std::move(runtimes)) {}

ActiveConfig::Selection ActiveConfig::select(const rpiboot::BoardMatchKey& board) const {
    const rpiboot::ProfileRule* rule = configuration_.matchingRule(board);
    const std::string& name =
        rule != nullptr ? rule->profile : configuration_.daemon.defaultProfile;
    return Selection{runtimes_.at(name),
                     rule != nullptr ? "rule " + rule->pointer : std::string("default_profile")};
}

rpiboot::Configuration loadConfiguration(const ConfigLocation& where) {
    return rpiboot::buildConfiguration(rpiboot::loadDaemonConfig(where.file, where.optional),
                                       builtinProfiles(), where.overrides);
}

std::shared_ptr<const ActiveConfig> activate(rpiboot::Configuration configuration,
                                             const std::shared_ptr<rpiboot::FileCache>& cache,
                                             Logger* log) {
    std::map<std::string, std::shared_ptr<const ProfileRuntime>> runtimes;
    for (const auto& [name, profile] : configuration.profiles) {
        auto runtime = std::make_shared<ProfileRuntime>();
        runtime->profile = profile;
        if (cache) {
            try {
                runtime->firmware =
                    std::make_shared<rpiboot::FirmwareSet>(profile.firmwareSetConfig(), cache);
            } catch (const rpiboot::Error& e) {
                runtime->firmwareError =
                    "profile " + name + " (" + profile.source + "): " + e.what();
                if (log != nullptr) {
                    LogFields fields;
                    fields.profile = name;
                    log->warning(runtime->firmwareError + "; boards given this profile will fail",
                                 fields);
                }
            }
        } else {
            runtime->firmwareError = "profile " + name + ": no firmware sets in this configuration";
        }
        runtimes.emplace(name, std::move(runtime));
    }
    return std::make_shared<const ActiveConfig>(std::move(configuration), std::move(runtimes));
}

}  // namespace rpibootd
