// Test support: the daemon's machinery in-process (sd-event loop, registry,
// worker threads, virtual bus; what rpibootd runs minus D-Bus), with a
// driver thread that plugs and unplugs virtual boards on chosen ports while
// the loop runs, and /proc figures of this process.
//
// The rpibootd process plugs its --virtual boards once and never again, so
// reconnects, plug storms and long soaks go through this harness. It never
// touches real USB devices; it stops every thread it started.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "active_config.hpp"
#include "board_registry.hpp"
#include "event_loop.hpp"
#include "journal.hpp"
#include "rpiboot/file_cache.hpp"
#include "stage_worker.hpp"
#include "virtual_source.hpp"
#include "virtualpi/builtin_scenarios.hpp"

namespace rpibootd::faults {

struct ProcFigures {
    int fds = -1;
    int threads = -1;
    long rssKiB = -1;
};

inline ProcFigures procFigures(const std::string& pid = "self") {
    namespace fs = std::filesystem;
    ProcFigures f;
    const fs::path proc = "/proc/" + pid;
    std::error_code ec;
    f.fds = 0;
    for (auto it = fs::directory_iterator(proc / "fd", ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        ++f.fds;
    }
    std::ifstream status(proc / "status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("Threads:", 0) == 0) {
            f.threads = std::stoi(line.substr(8));
        } else if (line.rfind("VmRSS:", 0) == 0) {
            f.rssKiB = std::stol(line.substr(6));
        }
    }
    return f;
}

inline std::string describe(const ProcFigures& f) {
    return "fds " + std::to_string(f.fds) + ", threads " + std::to_string(f.threads) + ", VmRSS " +
           std::to_string(f.rssKiB) + " KiB";
}

// A scratch directory with the msd firmware (real files, no links, so a
// test can replace or truncate them) and the gadget firmware.
class FirmwareTree {
  public:
    FirmwareTree() {
        namespace fs = std::filesystem;
        std::string pattern = fs::temp_directory_path() / "rpibootd-faults-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        dir_ = pattern;
        const fs::path fixtures(RPIBOOT_FIXTURES_DIR);
        fs::create_directories(dir_ / "msd");
        fs::copy_file(fixtures / "msd/bootcode.bin", dir_ / "msd/bootcode.bin");
        fs::copy_file(fixtures / "msd/start.elf", dir_ / "msd/start.elf");
        fs::copy_file(fixtures / "2711/bootcode4.bin", dir_ / "msd/bootcode4.bin");
        fs::copy_file(fixtures / "msd/start.elf", dir_ / "msd/start4.elf");
    }
    ~FirmwareTree() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    FirmwareTree(const FirmwareTree&) = delete;
    FirmwareTree& operator=(const FirmwareTree&) = delete;
    const std::filesystem::path& path() const { return dir_; }

  private:
    std::filesystem::path dir_;
};

// What the registry told the status sink, readable from the driver thread.
class WatchingSink final : public StatusSink {
  public:
    struct Port {
        BoardStatus last;
        unsigned finished = 0;
        unsigned succeeded = 0;
        std::string lastMessage;
    };

    void boardAdded(const BoardStatus& board) override { update(board); }
    void boardChanged(const BoardStatus& board, std::uint32_t) override { update(board); }
    void boardRemoved(const std::string&) override {}
    void bootFinished(const std::string& port, bool success, const std::string& message) override {
        std::lock_guard lock(mutex_);
        Port& p = ports_[port];
        ++p.finished;
        p.succeeded += success ? 1 : 0;
        p.lastMessage = message;
        ++total_;
        changed_.notify_all();
    }

    Port port(const std::string& port) const {
        std::lock_guard lock(mutex_);
        const auto it = ports_.find(port);
        return it == ports_.end() ? Port{} : it->second;
    }
    unsigned total() const {
        std::lock_guard lock(mutex_);
        return total_;
    }
    // Waits until `count` boots in all have finished; false after `limit`
    // (a guard against a hang, never an assertion about speed).
    bool waitForTotal(unsigned count,
                      std::chrono::milliseconds limit = std::chrono::milliseconds(120000)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] { return total_ >= count; });
    }

  private:
    void update(const BoardStatus& board) {
        std::lock_guard lock(mutex_);
        ports_[board.port].last = board;
        changed_.notify_all();
    }

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::string, Port> ports_;
    unsigned total_ = 0;
};

// The daemon's machinery on the calling thread, driven from a second thread.
class Machinery {
  public:
    explicit Machinery(const std::filesystem::path& firmware,
                       const std::string& daemonJson = R"({ "forget_after_ms": 600000 })")
        : log_(LogTargets{false, false, 0}) {
        rpiboot::DaemonConfig daemon = rpiboot::parseDaemonConfig(daemonJson, "faults.json");
        daemon.profilesDir.clear();
        daemon.firmwareDir = firmware;
        config_ = activate(rpiboot::buildConfiguration(std::move(daemon), builtinProfiles()),
                           std::make_shared<rpiboot::FileCache>(), &log_);
    }

    // Runs the loop until `driver` (on its own thread, given the bus) returns,
    // then shuts down as the daemon does. The driver's exceptions are
    // rethrown here. Returns what the loop returned (0 unless a hang).
    int run(const std::function<void(virtualpi::VirtualBus&, WatchingSink&)>& driver,
            std::chrono::milliseconds safetyLimit = std::chrono::minutes(30)) {
        EventLoop loop;
        BoardRegistry registry(BoardRegistry::Environment{nullptr, loop, log_, [] { return 1U; }},
                               config_);
        ThreadStageLauncher launcher(loop, registry, log_);
        registry.setLauncher(&launcher);
        registry.setStatusSink(&sink_);
        VirtualSource source(loop, log_, {});
        source.start(registry);
        std::exception_ptr failure;
        std::thread driving([&] {
            try {
                driver(*source.bus(), sink_);
            } catch (...) {
                failure = std::current_exception();
            }
            loop.post([&loop] { loop.exit(0); });
        });
        const auto safety = loop.after(safetyLimit, [&loop] { loop.exit(1); });
        const int status = loop.run();
        driving.join();
        registry.shutDown();
        source.unplugAll();
        launcher.stopAll();
        if (failure) {
            std::rethrow_exception(failure);
        }
        return status;
    }

    WatchingSink& sink() { return sink_; }

  private:
    Logger log_;
    std::shared_ptr<const ActiveConfig> config_;
    WatchingSink sink_;
};

inline virtualpi::BoardSpec healthy2711(const std::string& port) {
    virtualpi::BoardSpec spec;
    spec.scenario = virtualpi::builtinScenario(rpiboot::Chip::Bcm2711, virtualpi::Profile::Msd);
    spec.portPath = port;
    return spec;
}

}  // namespace rpibootd::faults
