// Test support: the real rpibootd process on a private dbus-daemon with
// `--virtual-control`, so a test plugs, unplugs and re-plugs virtual boards
// while the daemon runs, and reads what happened where users read it: the
// BootFinished signals and the Device properties on D-Bus, and the
// daemon's /proc entries.
//
// Used by the reconnect/storm fault tests and the soak. Everything runs on
// the calling thread except where a test opens extra control clients.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "rpiboot_test/bus_client.hpp"
#include "rpiboot_test/daemon_process.hpp"
#include "rpiboot_test/private_bus.hpp"

namespace rpiboot::test {

// Boots finished on one port, as BootFinished signals told them.
struct PortTally {
    unsigned finished = 0;
    unsigned succeeded = 0;
    std::string lastMessage;
};

// Firmware from the fixture tree, the built-in msd profile for every board,
// records kept for ten minutes (so every port's story stays readable).
inline constexpr const char* kMsdDaemonConfig = R"({
  "firmware_dir": "firmware",
  "profiles_dir": "profiles",
  "default_profile": "msd",
  "forget_after_ms": 600000
}
)";

class LiveDaemon {
  public:
    static constexpr const char* kDevice = "io.rpibootd1.Device";

    // `config`: the daemon's JSON configuration (relative firmware_dir and
    // profiles_dir resolve in `work`, where the fixture firmware is put
    // under firmware/). `profiles`: file name -> JSON for profiles/.
    // `wrapper`: a command the daemon runs under (valgrind and its options).
    LiveDaemon(const std::filesystem::path& work, const std::string& config,
               const std::map<std::string, std::string>& profiles = {},
               const std::vector<std::string>& wrapper = {})
        : work_(work), bus_(BusPolicy::Open), event_(newEventLoop()) {
        if (!std::filesystem::exists(work / "firmware")) {
            prepareFirmware(work / "firmware");
        }
        writeFile(work / "rpibootd.json", config);
        std::filesystem::create_directories(work / "profiles");
        for (const auto& [name, text] : profiles) {
            writeFile(work / "profiles" / name, text);
        }
        client_ = std::make_unique<BusClient>(event_.get(), bus_.address());
        client_->recordSignals();
        std::vector<std::string> argv = wrapper;
        argv.insert(argv.end(),
                    {RPIBOOTD_BINARY, "-c", (work / "rpibootd.json").string(), "--bus",
                     bus_.address(), "--no-udev", "--virtual-control", socket().string()});
        process_ = std::make_unique<DaemonProcess>(argv, work / "rpibootd.log");
        control_ = std::make_unique<VirtualControlClient>(socket(), std::chrono::seconds(120),
                                                          process_.get());
    }
    LiveDaemon(const LiveDaemon&) = delete;
    LiveDaemon& operator=(const LiveDaemon&) = delete;

    std::filesystem::path socket() const { return work_ / "control"; }
    VirtualControlClient& control() { return *control_; }
    DaemonProcess& process() { return *process_; }
    BusClient& bus() { return *client_; }
    ProcFigures figures() const { return procFigures(process_->pid()); }

    std::vector<std::string> plug(const std::string& item, const std::string& port = "") {
        return control_->ok("plug " + item + (port.empty() ? "" : " " + port));
    }
    void unplug(const std::string& port) { control_->ok("unplug " + port); }
    // The board's record (virtualpi JSON) as the control socket sent it.
    std::string record(const std::string& port) {
        const std::string reply = control_->command("record " + port);
        if (reply.rfind("ok ", 0) != 0) {
            throw std::runtime_error("record " + port + ": " + reply);
        }
        return reply.substr(3);
    }

    // BootFinished signals seen so far for `port` (after pumping the bus).
    PortTally tally(const std::string& port) {
        sync();
        const auto it = tallies_.find(devicePath(port));
        return it == tallies_.end() ? PortTally{} : it->second;
    }
    unsigned totalFinished() {
        sync();
        return total_;
    }
    // Waits until `port` has `count` finished boots in all. Throws (with
    // the daemon's log) when they do not come: a guard against a hang.
    PortTally waitFinished(const std::string& port, unsigned count,
                           std::chrono::milliseconds limit = std::chrono::seconds(120)) {
        const std::string path = devicePath(port);
        const bool ok = pumpUntil(
            event_.get(),
            [&] {
                absorb();
                return tallies_[path].finished >= count;
            },
            limit);
        if (!ok) {
            throw std::runtime_error("port " + port + ": fewer than " + std::to_string(count) +
                                     " boots finished; rpibootd " +
                                     (process_->running() ? "runs" : "has exited") + "; log:\n" +
                                     tail(process_->log()));
        }
        return tallies_[path];
    }
    // Waits until `port` has `count` successful boots in all; throws on a
    // boot that fails meanwhile, or a hang.
    void waitSucceeded(const std::string& port, unsigned count,
                       std::chrono::milliseconds limit = std::chrono::seconds(120)) {
        const std::string path = devicePath(port);
        sync();
        const PortTally before = tallies_[path];
        const bool ok = pumpUntil(
            event_.get(),
            [&] {
                absorb();
                const PortTally& t = tallies_[path];
                if (t.finished - before.finished > t.succeeded - before.succeeded) {
                    throw std::runtime_error("boot on " + port + " failed: " + t.lastMessage +
                                             "; log:\n" + tail(process_->log()));
                }
                return t.succeeded >= count;
            },
            limit);
        if (!ok) {
            throw std::runtime_error("port " + port + ": boot " + std::to_string(count) +
                                     " did not finish; log:\n" + tail(process_->log()));
        }
    }
    std::string stage(const std::string& port) {
        return client_->getString(devicePath(port), kDevice, "Stage");
    }
    std::string lastError(const std::string& port) {
        return client_->getString(devicePath(port), kDevice, "LastError");
    }
    // Polls the Stage property until it is `stage` (a guard limit, never a
    // measurement).
    void waitForStage(const std::string& port, const std::string& wanted,
                      std::chrono::milliseconds limit = std::chrono::seconds(60)) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (!client_->getProperty(devicePath(port), kDevice, "Stage").ok() ||
               stage(port) != wanted) {
            if (std::chrono::steady_clock::now() > end) {
                throw std::runtime_error("port " + port + " never reached stage " + wanted);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

    // Waits until the daemon's descriptors and threads are at most
    // `baseline`'s (workers wind down after their outcome is published);
    // returns the figures either way.
    ProcFigures settledFigures(const ProcFigures& baseline,
                               std::chrono::milliseconds limit = std::chrono::seconds(10)) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (true) {
            const ProcFigures now = figures();
            if ((now.fds <= baseline.fds && now.threads <= baseline.threads) ||
                std::chrono::steady_clock::now() > end) {
                return now;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

    static std::string tail(const std::string& text, std::size_t bytes = 6000) {
        return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
    }

  private:
    // A round trip to the daemon: every signal it sent before answering has
    // then been received and counted (the bus keeps one sender's order).
    void sync() {
        const auto reply = client_->call("/io/rpibootd1", "org.freedesktop.DBus.Peer", "Ping");
        if (!reply.ok()) {
            throw std::runtime_error("rpibootd does not answer Ping: " + reply.errorMessage);
        }
        absorb();
    }

    void absorb() {
        for (auto& s : client_->takeSignals()) {
            if (s.member != "BootFinished") {
                continue;
            }
            PortTally& t = tallies_[s.object];
            ++t.finished;
            t.succeeded += s.success ? 1 : 0;
            t.lastMessage = std::move(s.message);
            ++total_;
        }
    }

    std::filesystem::path work_;
    PrivateBus bus_;
    EventPtr event_;
    std::unique_ptr<BusClient> client_;
    std::unique_ptr<DaemonProcess> process_;
    std::unique_ptr<VirtualControlClient> control_;
    std::map<std::string, PortTally> tallies_;  // by object path
    unsigned total_ = 0;
};

}  // namespace rpiboot::test
