// The registry of boards: where device events, worker events and timers meet.
//
// Runs on the main loop thread only. It keeps one Board record per USB port
// path, follows a board across its re-enumerations (by port, and by ROM
// serial when a board comes back on another port), chooses its profile,
// starts a stage worker per enumeration, arms the re-enumeration timeout,
// follows a booted board into the USB device and disks it becomes and runs
// its profile's storage step on a storage worker, applies the profile's
// after-success policy to a board that comes back, and publishes every
// change to the StatusSink (the D-Bus adapter). It never does USB or file
// I/O itself and never blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
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
#include "storage_launcher.hpp"

namespace rpibootd {

struct RegistryCounts {
    std::size_t boards = 0;
    std::size_t inFlight = 0;
    std::size_t done = 0;
    std::size_t failed = 0;
};

class BoardRegistry final : public DeviceEvents, public StageEvents, public StorageEvents {
  public:
    struct Environment {
        StageLauncher& launcher;
        TimerService& timers;
        Logger& log;
        std::function<std::uint64_t()> realtimeUsec;
        // Runs storage steps; null: a profile with one fails its boards.
        StorageLauncher* storage = nullptr;
        // After a disk of the device a board became appears, how long to wait
        // for more before the storage step chooses (unless the profile names
        // its disk and that one is there).
        std::chrono::milliseconds diskSettle{2000};
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
    // Serials booted under an "once-per-serial" profile: restored at start
    // (before any device), and handed to `listener` after every change (to
    // persist them).
    void restoreOnceSerials(const std::vector<std::string>& serials);
    void setOnceSerialsListener(std::function<void(const std::vector<std::string>&)> listener) {
        onceSerialsListener_ = std::move(listener);
    }
    std::vector<std::string> onceSerials() const {
        return {onceSerials_.begin(), onceSerials_.end()};
    }
    // Stops reacting to events (shutdown): workers' late outcomes are ignored.
    void shutDown() { shuttingDown_ = true; }

    RegistryCounts counts() const;
    const Board* board(const std::string& port) const;

    // Operator control. Retry: boot the board again now if it is on the bus,
    // else when it comes back (refused while it boots or is held). Forget:
    // drop its record (refused while it boots). Both also lift the
    // after-success policy ("once", "once-per-serial") for that board. Hold/release a port glob
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
    void usbDeviceAdded(const UsbDeviceInfo& device) override;
    void usbDeviceRemoved(const std::string& id) override;
    void diskAdded(const DiskInfo& disk) override;
    void diskRemoved(const std::string& id) override;

    // StageEvents
    void stageProgress(std::uint64_t session, const StageProgress& progress) override;
    void stageMetadata(std::uint64_t session, const std::string& key,
                       const std::string& value) override;
    void stageFinished(std::uint64_t session, const StageResult& result) override;

    // StorageEvents
    void storageStage(std::uint64_t job, const std::string& stage) override;
    void storageProgress(std::uint64_t job, std::uint64_t written, std::uint64_t toWrite) override;
    void storageFinished(std::uint64_t job, const StorageJobResult& result) override;

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
        // After the boot: what the board became.
        std::uint64_t bootedUsec = 0;      // when its file server ended; 0: not booted
        std::string bootMessage;           // what the boot itself did, for the verdict
        std::string afterBootId;           // the USB device it became, "" until seen
        std::vector<std::string> diskIds;  // the disks under it
        std::unique_ptr<Timer> afterBootTimer;
        std::unique_ptr<Timer> settleTimer;
        std::uint64_t storageJob = 0;  // running storage job, 0 = none
        // Booted successfully under an "once" policy: not booted again until
        // its port has been empty for the profile's forget_after_s.
        bool once = false;
        std::string onceSerial;
        std::unique_ptr<Timer> absenceTimer;
    };

    Entry& entryFor(const std::string& port);
    Entry* entryBySession(std::uint64_t session);
    Entry* entryByJob(std::uint64_t job);
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
    // After the boot.
    void adoptDevice(Entry& entry, const UsbDeviceInfo& device);
    void adoptDisk(Entry& entry, const DiskInfo& disk);
    void checkStorageReady(Entry& entry);
    void startStorage(Entry& entry);
    void afterBootTimedOut(const std::string& port);
    // The boot's verdict after its storage step (or right after the boot
    // without one).
    void finishBoot(Entry& entry, const std::string& message);
    void afterBootFailed(Entry& entry, const std::string& message, FailureClass reason);
    std::string storageProgressText(const Entry& entry) const;
    // After-success policy.
    bool refuseAgain(Entry* entry, const DeviceInfo& device);
    void noteIgnoredDevice(Entry& entry, const DeviceInfo& device);
    void markOnce(Entry& entry);
    void clearOnce(Entry& entry);
    void portMaybeEmpty(Entry& entry);
    void forgetSerial(const std::string& serial);
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
    std::map<std::string, UsbDeviceInfo> usbDevices_;        // other USB devices on the bus, by id
    std::map<std::string, DiskInfo> disks_;                  // whole disks on the bus, by id
    std::set<std::string> onceSerials_;
    std::function<void(const std::vector<std::string>&)> onceSerialsListener_;
    std::uint64_t nextSession_ = 0;
    bool shuttingDown_ = false;
};

}  // namespace rpibootd
