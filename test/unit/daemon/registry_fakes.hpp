// Test doubles for the board registry: timers fired by hand, a launcher that
// records sessions instead of starting threads, and a sink that records
// what the D-Bus adapter would have been told.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "active_config.hpp"
#include "board_registry.hpp"
#include "board_status.hpp"
#include "event_loop.hpp"
#include "rpiboot/profile/daemon_config.hpp"
#include "rpiboot/profile/profile.hpp"
#include "stage_worker.hpp"
#include "storage_launcher.hpp"

namespace rpiboot::test {

// The fakes implement the daemon's interfaces.
using namespace ::rpibootd;

class ManualTimers final : public TimerService {
  public:
    struct Pending {
        std::chrono::milliseconds delay{0};
        std::function<void()> callback;
        bool cancelled = false;
        bool fired = false;
    };

    std::unique_ptr<Timer> after(std::chrono::milliseconds delay,
                                 std::function<void()> callback) override {
        auto p = std::make_shared<Pending>();
        p->delay = delay;
        p->callback = std::move(callback);
        pending_.push_back(p);
        return std::make_unique<Handle>(p);
    }

    // Timers armed and neither fired nor cancelled.
    std::vector<std::chrono::milliseconds> armed() const {
        std::vector<std::chrono::milliseconds> out;
        for (const auto& p : pending_) {
            if (!p->cancelled && !p->fired) {
                out.push_back(p->delay);
            }
        }
        return out;
    }

    // Fires the oldest armed timer of that delay; false when there is none.
    bool fire(std::chrono::milliseconds delay) {
        for (const auto& p : pending_) {
            if (!p->cancelled && !p->fired && p->delay == delay) {
                p->fired = true;
                auto callback = p->callback;
                callback();
                return true;
            }
        }
        return false;
    }

  private:
    class Handle final : public Timer {
      public:
        explicit Handle(std::shared_ptr<Pending> p) : p_(std::move(p)) {}
        ~Handle() override { p_->cancelled = true; }

      private:
        std::shared_ptr<Pending> p_;
    };
    std::vector<std::shared_ptr<Pending>> pending_;
};

class RecordingLauncher final : public StageLauncher {
  public:
    void launch(StageRequest request, StageEvents&) override {
        launched.push_back(std::move(request));
    }
    void reap(std::uint64_t session) override { reaped.insert(session); }
    void stopAll() override { stopped = true; }
    std::size_t running() const override { return launched.size() - reaped.size(); }

    std::vector<StageRequest> launched;
    std::set<std::uint64_t> reaped;
    bool stopped = false;
};

class RecordingStorage final : public StorageLauncher {
  public:
    struct Launched {
        std::uint64_t job = 0;
        StorageJobInput input;
    };
    void launch(std::uint64_t job, StorageJobInput input, StorageEvents&) override {
        launched.push_back({job, std::move(input)});
    }
    void cancel(std::uint64_t job) override { cancelled.insert(job); }
    void reap(std::uint64_t job) override { reaped.insert(job); }
    void stopAll() override {}
    std::size_t running() const override { return launched.size() - reaped.size(); }

    std::vector<Launched> launched;
    std::set<std::uint64_t> cancelled;
    std::set<std::uint64_t> reaped;
};

class RecordingSink final : public StatusSink {
  public:
    struct Finished {
        std::string port;
        bool success = false;
        std::string message;
    };

    void boardAdded(const BoardStatus& board) override {
        events.push_back("added " + board.port + " " + board.stage);
        last[board.port] = board;
    }
    void boardChanged(const BoardStatus& board, std::uint32_t changed) override {
        changes.push_back(changed);
        if ((changed & kFieldStage) != 0) {
            events.push_back("stage " + board.port + " " + board.stage);
        }
        last[board.port] = board;
    }
    void boardRemoved(const std::string& port) override {
        events.push_back("removed " + port);
        last.erase(port);
    }
    void bootFinished(const std::string& port, bool success, const std::string& message) override {
        finished.push_back(Finished{port, success, message});
        events.push_back(std::string(success ? "booted " : "failed ") + port);
    }

    std::vector<std::string> events;
    std::vector<std::uint32_t> changes;
    std::vector<Finished> finished;
    std::map<std::string, BoardStatus> last;
};

// A configuration with the built-in profiles and no firmware sets (the
// recording launcher never needs them). Every profile gets `retries` and
// the whole-boot `deadline` (0: none): one attempt per boot unless a test
// is about retries.
inline std::shared_ptr<const ActiveConfig> testConfig(
    const std::string& daemonJson = "", unsigned retries = 0,
    std::chrono::milliseconds deadline = std::chrono::milliseconds(0),
    const std::function<void(rpiboot::Profile&)>& change = {}) {
    rpiboot::DaemonConfig daemon = daemonJson.empty()
                                       ? rpiboot::defaultDaemonConfig()
                                       : rpiboot::parseDaemonConfig(daemonJson, "test.json");
    daemon.profilesDir.clear();
    daemon.forgetAfter = std::chrono::milliseconds(60000);
    rpiboot::Configuration configuration =
        rpiboot::buildConfiguration(std::move(daemon), builtinProfiles());
    for (auto& [name, profile] : configuration.profiles) {
        profile.retries.attempts = retries;
        profile.timeouts.boot = deadline;
        if (change) {
            change(profile);
        }
    }
    return activate(std::move(configuration), nullptr, nullptr);
}

}  // namespace rpiboot::test
