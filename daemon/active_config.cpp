#include "active_config.hpp"

#include "journal.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/firmware/embedded_firmware.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/profile/generated_files.hpp"
#include "rpiboot/signing/signature_file.hpp"

namespace rpibootd {

ActiveConfig::ActiveConfig(rpiboot::Configuration configuration,
                           std::map<std::string, std::shared_ptr<const ProfileRuntime>> runtimes)
    : configuration_(std::move(configuration)), runtimes_(std::move(runtimes)) {}

ActiveConfig::Selection ActiveConfig::select(const rpiboot::BoardMatchKey& board) const {
    const rpiboot::ProfileRule* rule = configuration_.matchingRule(board);
    const bool byRule = rule != nullptr && !rule->ignore;
    const std::string& name = byRule ? rule->profile : configuration_.daemon.defaultProfile;
    return Selection{runtimes_.at(name),
                     byRule ? "rule " + rule->pointer : std::string("default_profile")};
}

rpiboot::Configuration loadConfiguration(const ConfigLocation& where) {
    return rpiboot::buildConfiguration(rpiboot::loadDaemonConfig(where.file, where.optional),
                                       builtinProfiles(), where.overrides);
}

namespace {

bool isInUse(const rpiboot::Configuration& configuration, const std::string& name) {
    if (configuration.daemon.defaultProfile == name) {
        return true;
    }
    for (const auto& rule : configuration.daemon.rules) {
        if (rule.profile == name) {
            return true;
        }
    }
    return false;
}

}  // namespace

std::shared_ptr<const ActiveConfig> activate(rpiboot::Configuration configuration,
                                             const std::shared_ptr<rpiboot::FileCache>& cache,
                                             Logger* log) {
    std::map<std::string, std::shared_ptr<const ProfileRuntime>> runtimes;
    for (const auto& [name, profile] : configuration.profiles) {
        auto runtime = std::make_shared<ProfileRuntime>();
        runtime->profile = profile;
        if (cache) {
            // Generated files (pieeprom.bin, boot.sig) are built once here, and
            // the storage image (and bmap) must be there. A profile in use that
            // cannot build them or lacks its image fails the whole load, so a
            // reload keeps the running configuration; an unused one is only
            // marked unavailable (shipped secure-boot profiles name keys that
            // most hosts do not have).
            rpiboot::FirmwareSetConfig setConfig = profile.firmwareSetConfig();
            try {
                rpiboot::checkProfileStorage(profile);
                setConfig.generated =
                    rpiboot::generateProfileFiles(profile, rpiboot::signatureTimestamp());
            } catch (const rpiboot::Error& e) {
                if (isInUse(configuration, name)) {
                    const std::string what = e.what();
                    throw rpiboot::Error(e.code(), what.find(profile.source) == std::string::npos
                                                       ? what + " (" + profile.source + ")"
                                                       : what);
                }
                runtime->firmwareError =
                    "profile " + name + " (" + profile.source + "): " + e.what();
                if (log != nullptr) {
                    LogFields fields;
                    fields.profile = name;
                    log->warning(runtime->firmwareError + "; boards given this profile will fail",
                                 fields);
                }
                runtimes.emplace(name, std::move(runtime));
                continue;
            }
            runtime->profile.expectedReports =
                rpiboot::expectedReports(profile, setConfig.generated);
            if (profile.irreversible() && log != nullptr && isInUse(configuration, name)) {
                LogFields fields;
                fields.profile = name;
                const auto& e = *profile.eeprom;
                log->warning("profile " + name + " changes boards for good:" +
                                 (e.programPubkey ? " program_pubkey" : "") +
                                 (e.revokeDevkey ? " revoke_devkey" : "") +
                                 (e.programJtagLock ? " program_jtag_lock" : "") +
                                 "; only boards on the ports or serials its rules name get it",
                             fields);
            }
            try {
                runtime->firmware =
                    std::make_shared<rpiboot::FirmwareSet>(std::move(setConfig), cache);
                if (log != nullptr && !runtime->firmware->missingRoots().empty()) {
                    std::string missing;
                    for (const auto& dir : runtime->firmware->missingRoots()) {
                        missing += (missing.empty() ? "" : ", ") + dir.string();
                    }
                    LogFields fields;
                    fields.profile = name;
                    log->info("profile " + name + ": no firmware directory " + missing +
                                  "; serving the embedded firmware (" +
                                  rpiboot::embeddedFirmwareNames() + ") as the last resort",
                              fields);
                }
            } catch (const rpiboot::Error& e) {
                runtime->firmwareError =
                    "profile " + name + " (" + profile.source + "): " + e.what() +
                    (e.code() == rpiboot::Errc::NotFound
                         ? std::string(" (rpibootd-fetch-firmware installs the firmware sets)")
                         : std::string());
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
