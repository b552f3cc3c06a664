// The registry of boards: where device events, worker events and timers meet.
//
// Runs on the main loop thread only. It keeps one Board record per USB port
// path, follows a board across its re-enumerations (by port, and by ROM
// serial when a board comes back on another port), chooses its profile,
// starts a stage worker per enumeration, arms the re-enumeration timeout, and
// publishes every change to the StatusSink (the D-Bus adapter). It never does
// USB or file I/O itself and never blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "active_config.hpp"
#include "board.hpp"
#include "board_status.hpp"
#include "boot_listener.hpp"
#include "device_source.hpp"
#include "event_loop.hpp"
#include "journal.hpp"
#include "stage_worker.hpp"

namespace rpibootd {

struct RegistryCounts {
    std::size_t boards = 0;
    std::size_t inFlight = 0;
    std::size_t done = 0;
    std::size_t failed = 0;
};

class BoardRegistry final : public DeviceEvents, public StageEvents {
  public:
    struct Environment {
        StageLauncher& launcher;
        TimerService& timers;
        Logger& log;
        std::function<std::uint64_t()> realtimeUsec;
    };

    BoardRegistry(Environment environment, std::shared_ptr<const ActiveConfig> config);
    ~BoardRegistry() override;

    // Where status goes (the D-Bus adapter); null: nowhere.
    void setStatusSink(StatusSink* sink) { sink_ = sink; }
    // Called after every change of the counts (sd_notify STATUS=).
    void setCountsListener(std::function<void(const RegistryCounts&)> listener) {
        countsListener_ = std::move(listener);
    }
    // New boards get profiles from `config`; boards already started keep theirs.
    void setConfiguration(std::shared_ptr<const ActiveConfig> config);
    const ActiveConfig& configuration() const { return *config_; }
    // Who hears about whole boots (the metrics file); null: nobody.
    void setBootListener(BootListener* listener) { bootListener_ = listener; }
    // Called with the new held set after every hold or release (to persist
    // and publish it).
    void setHeldListener(std::function<void(const std::vector<std::string>&)> listener) {
        heldListener_ = std::move(listener);
    }
    // Stops reacting to events (shutdown): workers' late outcomes are ignored.
    void shutDown() { shuttingDown_ = true; }

    RegistryCounts counts() const;
    const Board* board(const std::string& port) const;

    // Operator control. Retry: boot the board again now if it is on the bus,
    // else when it comes back (refused while it boots or is held). Forget:
    // drop its record (refused while it boots). Hold/release a port glob
    // (fnmatch on the port path): a board on a held port is never opened;
    // one already booting finishes its current session first. Releasing
    // boots a board that is still on the bus. Holds at start-up (restored
    // from the state directory) go through holdPort() before any device.
    ControlResult retry(const std::string& port);
    ControlResult forgetBoard(const std::string& port);
    ControlResult holdPort(const std::string& glob);
    ControlResult releasePort(const std::string& glob);
    ControlResult holdBoard(const std::string& port);
    ControlResult releaseBoard(const std::string& port);
    std::vector<std::string> heldPorts() const { return held_; }
    bool isHeld(const std::string& port) const;

    // DeviceEvents
    void deviceAdded(const DeviceInfo& device) override;
    void deviceRemoved(const std::string& id) override;

    // StageEvents
    void stageProgress(std::uint64_t session, const StageProgress& progress) override;
    void stageMetadata(std::uint64_t session, const std::string& key,
                       const std::string& value) override;
    void stageFinished(std::uint64_t session, const StageResult& result) override;

    // Every published board, sorted by port.
    std::vector<BoardStatus> boards() const;
    ControlResult control(const std::string& port, BoardAction action);

  private:
    struct Entry {
        explicit Entry(std::string port) : board(std::move(port)) {}
        Board board;
        std::string deviceId;               // the enumeration being or last handled
        std::uint64_t session = 0;          // in-flight worker, 0 = none
        bool deviceGone = false;            // that enumeration has left the bus
        std::optional<DeviceInfo> pending;  // arrived while a worker was busy
        std::shared_ptr<const ProfileRuntime> profile;
        rpiboot::Chip chip = rpiboot::Chip::Bcm2711;
        bool published = false;  // boardAdded sent
        std::unique_ptr<Timer> reenumerateTimer;
        std::unique_ptr<Timer> forgetTimer;
        std::optional<DeviceInfo> device;  // the enumeration on the bus now, if any
        unsigned attempt = 0;              // attempts of the current boot so far
        std::uint64_t bootStartUsec = 0;   // when its first attempt began
        bool retrying = false;             // between two attempts of one boot
        bool deadlinePassed = false;
        std::string attemptError;  // why the last failed attempt failed
        std::unique_ptr<Timer> retryTimer;
        std::unique_ptr<Timer> deadlineTimer;
    };

    Entry& entryFor(const std::string& port);
    Entry* entryBySession(std::uint64_t session);
    Entry* awaitingWithSerial(const std::string& serial, const std::string& exceptPort);
    Entry& moveEntry(Entry& from, const std::string& toPort);
    void start(Entry& entry, const DeviceInfo& device);
    // `retry`: another attempt of the boot in progress; `newBoot`: its first.
    void beginRomStage(Entry& entry, const DeviceInfo& device, bool retry, bool newBoot);
    void beginSecondStage(Entry& entry, const DeviceInfo& device, bool retry, bool newBoot);
    // The three outcomes of a stage session.
    void romAccepted(Entry& entry);
    void filesServed(Entry& entry, const StageResult& result);
    void stageFailed(Entry& entry, const StageResult& result);
    void armReenumerationTimeout(Entry& entry);
    void armForget(Entry& entry);
    void forget(const std::string& port);
    // The verdict of a boot: logged, BootFinished, listener; once per boot.
    void settle(Entry& entry, bool success, const std::string& message,
                FailureClass reason = FailureClass::Io);
    // One attempt failed: another one after a back-off when the failure is
    // transient and the profile's retries and deadline allow, else the verdict.
    void attemptFailed(Entry& entry, const std::string& message, FailureClass reason);
    void retryAttempt(const std::string& port);
    void armDeadline(Entry& entry);
    void holdEntry(Entry& entry, const DeviceInfo* device);
    void stopTimers(Entry& entry);
    // Applies `change` and publishes what it changed.
    void update(Entry& entry, const std::function<void(Board&)>& change);
    LogFields fieldsOf(const Entry& entry) const;
    void countsChanged();
    std::uint64_t now() const { return env_.realtimeUsec ? env_.realtimeUsec() : 0; }

    Environment env_;
    std::shared_ptr<const ActiveConfig> config_;
    StatusSink* sink_ = nullptr;
    std::function<void(const RegistryCounts&)> countsListener_;
    BootListener* bootListener_ = nullptr;
    std::function<void(const std::vector<std::string>&)> heldListener_;
    std::vector<std::string> held_;                          // held port globs, sorted
    std::map<std::string, std::unique_ptr<Entry>> entries_;  // by port path
    std::map<std::string, std::string> portOfDevice_;        // device id -> port
    std::uint64_t nextSession_ = 0;
    bool shuttingDown_ = false;
};

}  // namespace rpibootd
