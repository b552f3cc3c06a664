#include "daemon.hpp"

#include <signal.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>

#include "active_config.hpp"
#include "board_registry.hpp"
#include "dbus_service.hpp"
#include "event_loop.hpp"
#include "firmware_check.hpp"
#include "journal.hpp"
#include "metrics.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "stage_worker.hpp"
#include "state_files.hpp"
#include "storage_launcher.hpp"
#include "udev_watcher.hpp"
#include "virtual/virtual_control.hpp"
#include "virtual/virtual_source.hpp"

#ifndef RPIBOOT_VERSION
#define RPIBOOT_VERSION "0.0.0"
#endif

namespace rpibootd {

namespace {

std::uint64_t realtimeUsec() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

ConfigLocation locationOf(const DaemonOptions& options) {
    ConfigLocation where;
    where.file = options.configFile;
    where.optional = !options.configGiven;
    where.overrides.firmwareDir = options.firmwareDir;
    where.overrides.profilesDir = options.profilesDir;
    where.overrides.bulkTransfersInFlight = options.bulkTransfersInFlight;
    return where;
}

std::string describe(const ActiveConfig& config) {
    const auto& c = config.configuration();
    std::string names;
    for (const auto& name : config.profileNames()) {
        names += (names.empty() ? "" : ", ") + name;
    }
    return "configuration from " + c.daemon.source + ": profiles " + names + "; default " +
           c.daemon.defaultProfile + ", " + std::to_string(c.daemon.rules.size()) +
           " rule(s); firmware in " + c.daemon.firmwareDir.string();
}

std::string statusLine(const RegistryCounts& c) {
    return std::to_string(c.boards) + " board(s): " + std::to_string(c.inFlight) + " booting, " +
           std::to_string(c.done) + " done, " + std::to_string(c.failed) + " failed";
}

// Owns the loop, the registry and the adapters for one run, and answers the
// D-Bus manager's requests (it is the one that can reload).
class Daemon final : public ManagerControl {
  public:
    Daemon(const DaemonOptions& options, Logger& log) : options_(options), log_(log) {}

    int run() {
        cache_ = std::make_shared<rpiboot::FileCache>();
        std::shared_ptr<const ActiveConfig> config;
        try {
            config = activate(loadConfiguration(locationOf(options_)), cache_, &log_);
        } catch (const std::exception& e) {
            log_.error(std::string("cannot start: ") + e.what());
            return 1;
        }
        log_.info(describe(*config));

        std::vector<virtualpi::BoardSpec> virtualBoards;
        try {
            for (const auto& spec : options_.virtualSpecs) {
                auto boards = parseVirtualSpec(spec);
                virtualBoards.insert(virtualBoards.end(), boards.begin(), boards.end());
            }
        } catch (const std::exception& e) {
            log_.error(e.what());
            return 2;
        }

        return serve(std::move(config), std::move(virtualBoards));
    }

    // ManagerControl, for the D-Bus adapter.
    std::vector<BoardStatus> boards() const override { return registry_->boards(); }
    std::vector<std::string> profileNames() const override {
        return registry_->configuration().profileNames();
    }
    ControlResult control(const std::string& port, BoardAction action) override {
        return registry_->control(port, action);
    }
    ControlResult holdPort(const std::string& glob) override { return registry_->holdPort(glob); }
    ControlResult releasePort(const std::string& glob) override {
        return registry_->releasePort(glob);
    }
    std::vector<std::string> heldPorts() const override { return registry_->heldPorts(); }

    ReloadResult reload() override {
        sd_notify(0, "RELOADING=1");
        ReloadResult result;
        try {
            auto config = activate(loadConfiguration(locationOf(options_)), cache_, &log_);
            log_.info("reloaded " + describe(*config));
            registry_->setConfiguration(std::move(config));
            result = ReloadResult{true, "configuration reloaded"};
        } catch (const std::exception& e) {
            result = ReloadResult{false, e.what()};
            log_.error(std::string("reload rejected, keeping the running configuration: ") +
                       e.what());
        }
        sd_notifyf(0, "READY=1\nSTATUS=%s", statusLine(registry_->counts()).c_str());
        return result;
    }

  private:
    // What the daemon runs besides the registry; each is optional.
    struct Adapters {
        std::unique_ptr<DbusService> dbus;
        std::unique_ptr<UdevWatcher> udev;
        std::unique_ptr<VirtualSource> virtualSource;
        std::unique_ptr<VirtualControl> virtualControl;
        std::unique_ptr<MetricsWriter> metrics;
    };

    // Holds survive a restart: read them before any board is seen, and keep
    // the file up to date after each change.
    void restoreHeldPorts(HeldPortsFile file) {
        try {
            for (const auto& glob : file.load()) {
                registry_->holdPort(glob);
            }
        } catch (const std::exception& e) {
            log_.warning(std::string("cannot read the held ports: ") + e.what());
        }
        registry_->setHeldListener([this, file](const std::vector<std::string>& globs) {
            try {
                file.save(globs);
            } catch (const std::exception& e) {
                log_.warning(std::string("cannot keep the held ports: ") + e.what() +
                             "; they are forgotten when rpibootd restarts");
            }
        });
    }

    // Boards booted under an "once-per-serial" profile stay booted across a
    // restart: read the list before any board is seen.
    void restoreBootedSerials(BootedSerialsFile file) {
        try {
            registry_->restoreOnceSerials(file.load());
        } catch (const std::exception& e) {
            log_.warning(std::string("cannot read the booted serials: ") + e.what());
        }
        registry_->setOnceSerialsListener([this, file](const std::vector<std::string>& serials) {
            try {
                file.save(serials);
            } catch (const std::exception& e) {
                log_.warning(std::string("cannot keep the booted serials: ") + e.what() +
                             "; they are forgotten when rpibootd restarts");
            }
        });
    }

    int serve(std::shared_ptr<const ActiveConfig> config,
              std::vector<virtualpi::BoardSpec> virtualBoards) {
        EventLoop loop;
        ThreadStageLauncher launcher(loop, log_);
        ThreadStorageLauncher storage(loop);
        BoardRegistry::Environment environment{launcher, loop, log_, realtimeUsec};
        environment.storage = &storage;
        registry_.emplace(std::move(environment), std::move(config));

        std::vector<EventSource> signals;
        signals.push_back(loop.onSignal(SIGTERM, [&loop] { loop.exit(0); }));
        signals.push_back(loop.onSignal(SIGINT, [&loop] { loop.exit(0); }));
        signals.push_back(loop.onSignal(SIGHUP, [this] { reload(); }));
        // A client closing a pipe must not kill the daemon.
        ::signal(SIGPIPE, SIG_IGN);
        followCounts(loop, virtualBoards.size());
        // Held ports and metrics follow the configuration rpibootd started with.
        restoreHeldPorts(HeldPortsFile(registry_->configuration().configuration().daemon.stateDir));
        restoreBootedSerials(
            BootedSerialsFile(registry_->configuration().configuration().daemon.stateDir));

        Adapters adapters;
        int status = 0;
        try {
            start(loop, adapters, std::move(virtualBoards));
            status = loop.run();
        } catch (const std::exception& e) {
            log_.error(std::string("cannot run: ") + e.what());
            status = 1;
        }
        stop(adapters, launcher, storage);
        return status;
    }

    // sd_notify STATUS= on every change; with --exit-when-done, the end.
    void followCounts(EventLoop& loop, std::size_t expectedVirtual) {
        registry_->setCountsListener([this, &loop, expectedVirtual](const RegistryCounts& c) {
            sd_notifyf(0, "STATUS=%s", statusLine(c).c_str());
            if (options_.exitWhenDone && c.inFlight == 0 && c.done + c.failed >= expectedVirtual) {
                // After the event being handled has been logged in full.
                loop.post([this, &loop, c] {
                    log_.info("every virtual board has finished: " + statusLine(c));
                    loop.exit(c.failed == 0 ? 0 : 1);
                });
            }
        });
    }

    void start(EventLoop& loop, Adapters& a, std::vector<virtualpi::BoardSpec> virtualBoards) {
        const rpiboot::MetricsConfig& metrics =
            registry_->configuration().configuration().daemon.metrics;
        if (metrics.enabled) {
            a.metrics = std::make_unique<MetricsWriter>(
                MetricsWriter::Environment{loop, log_, [this] { return registry_->boards(); },
                                           realtimeUsec},
                metrics);
            registry_->setBootListener(a.metrics.get());
            log_.info("writing metrics to " + metrics.file.string());
        }
        if (options_.bus != "none") {
            DbusOptions dbusOptions;
            dbusOptions.bus = options_.bus;
            dbusOptions.version = RPIBOOT_VERSION;
            a.dbus = std::make_unique<DbusService>(loop, dbusOptions, *this, log_);
            registry_->setStatusSink(a.dbus.get());
            log_.info("serving io.rpibootd1 on the " + options_.bus + " bus as " +
                      a.dbus->uniqueName());
        }
        if (options_.udev) {
            a.udev = std::make_unique<UdevWatcher>(loop, log_);
            a.udev->start(*registry_);
        }
        const std::size_t virtualCount = virtualBoards.size();
        if (!virtualBoards.empty() || options_.virtualControl) {
            a.virtualSource = std::make_unique<VirtualSource>(loop, log_, std::move(virtualBoards));
            a.virtualSource->start(*registry_);
        }
        if (options_.virtualControl) {
            a.virtualControl = std::make_unique<VirtualControl>(loop, log_, *a.virtualSource,
                                                                *options_.virtualControl);
        }
        loop.enableWatchdog();
        sd_notifyf(0, "READY=1\nSTATUS=%s", statusLine(registry_->counts()).c_str());
        log_.info(std::string("rpibootd ") + RPIBOOT_VERSION + " ready" +
                  (a.udev ? "; watching USB through udev" : "") +
                  (a.virtualSource ? "; " + std::to_string(virtualCount) + " virtual board(s)"
                                   : std::string()) +
                  (a.virtualControl
                       ? "; virtual boards plugged through " + a.virtualControl->path().string()
                       : std::string()));
    }

    void stop(Adapters& a, StageLauncher& launcher, StorageLauncher& storage) {
        sd_notify(0, "STOPPING=1\nSTATUS=stopping");
        log_.info("stopping: " + std::to_string(launcher.running()) + " session(s) and " +
                  std::to_string(storage.running()) + " storage step(s) still running");
        registry_->shutDown();
        registry_->setStatusSink(nullptr);
        a.virtualControl.reset();
        if (a.virtualSource) {
            a.virtualSource->unplugAll();
        }
        // Workers may still be opening devices through the sources: join
        // them before the sources go.
        launcher.stopAll();
        // Storage jobs stop at their next buffer; virtual disks go with the source.
        storage.stopAll();
        registry_->setBootListener(nullptr);
        a.metrics.reset();  // its last write
        a.udev.reset();
        a.virtualSource.reset();
        a.dbus.reset();
        registry_.reset();
    }

    const DaemonOptions& options_;
    Logger& log_;
    std::shared_ptr<rpiboot::FileCache> cache_;
    std::optional<BoardRegistry> registry_;
};

}  // namespace

int runDaemon(const DaemonOptions& options) {
    Logger log(detectLogTargets(options.verbosity));
    Daemon daemon(options, log);
    return daemon.run();
}

int checkConfiguration(const DaemonOptions& options) {
    try {
        const auto configuration = loadConfiguration(locationOf(options));
        auto cache = std::make_shared<rpiboot::FileCache>();
        Logger log(LogTargets{false, true, options.verbosity});
        const auto active = activate(configuration, cache, &log);
        std::printf("%s\n", describe(*active).c_str());
        // Per profile: its set, and whether every file it needs is there.
        for (const auto& [name, profile] : configuration.profiles) {
            std::printf("  %-22s %s (%s)\n", name.c_str(), profile.firmware.root.c_str(),
                        profile.source.c_str());
            std::printf("  %-22s firmware: %s\n", "",
                        describe(checkFirmwareSet(profile, cache)).c_str());
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rpibootd: %s\n", e.what());
        return 1;
    }
}

}  // namespace rpibootd
