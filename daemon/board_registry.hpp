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
    // Stops reacting to events (shutdown): workers' late outcomes are ignored.
    void shutDown() { shuttingDown_ = true; }

    RegistryCounts counts() const;
    const Board* board(const std::string& port) const;

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
    };

    Entry& entryFor(const std::string& port);
    Entry* entryBySession(std::uint64_t session);
    Entry* awaitingWithSerial(const std::string& serial, const std::string& exceptPort);
    Entry& moveEntry(Entry& from, const std::string& toPort);
    void start(Entry& entry, const DeviceInfo& device);
    void beginRomStage(Entry& entry, const DeviceInfo& device);
    void beginSecondStage(Entry& entry, const DeviceInfo& device);
    // The three outcomes of a stage session.
    void romAccepted(Entry& entry);
    void filesServed(Entry& entry, const StageResult& result);
    void stageFailed(Entry& entry, const StageResult& result);
    void armReenumerationTimeout(Entry& entry);
    void armForget(Entry& entry);
    void forget(const std::string& port);
    void settle(Entry& entry, bool success, const std::string& message);
    // Applies `change` and publishes what it changed.
    void update(Entry& entry, const std::function<void(Board&)>& change);
    LogFields fieldsOf(const Entry& entry) const;
    void countsChanged();
    std::uint64_t now() const { return env_.realtimeUsec ? env_.realtimeUsec() : 0; }

    Environment env_;
    std::shared_ptr<const ActiveConfig> config_;
    StatusSink* sink_ = nullptr;
    std::function<void(const RegistryCounts&)> countsListener_;
    std::map<std::string, std::unique_ptr<Entry>> entries_;  // by port path
    std::map<std::string, std::string> portOfDevice_;        // device id -> port
    std::uint64_t nextSession_ = 0;
    bool shuttingDown_ = false;
};

}  // namespace rpibootd
