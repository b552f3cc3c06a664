// The state machine of one board across its stages.
//
// A Board is the record of one physical board slot (its USB port path): it
// follows the board from the ROM (sending-bootcode) through the wait for
// re-enumeration to the second stage (serving-files), into what it becomes
// after its boot (booted) and through the storage step (storage-ready,
// writing, verifying) on to done, failed or disconnected, and keeps the
// BoardStatus the outside world sees. Pure
// state: no threads, timers, devices or I/O; the registry drives it and
// publishes what changed.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "board_status.hpp"
#include "rpiboot/core/file_server.hpp"

namespace rpibootd {

enum class BoardPhase {
    Idle,                 // known, nothing happening yet
    RomInFlight,          // a worker is uploading the bootcode
    AwaitingSecondStage,  // the ROM took the bootcode; the board is re-enumerating
    ServingFiles,         // a worker runs the file server
    Booted,               // served; waiting for the device (and disks) it becomes
    StorageReady,         // its disk is there; the storage job is starting
    Storage,              // the storage job writes or verifies
    Done,
    Failed,
    Disconnected,
    Held,  // an operator holds its port: nothing is done to it
};

class Board {
  public:
    explicit Board(std::string port);

    const BoardStatus& status() const noexcept { return status_; }
    BoardPhase phase() const noexcept { return phase_; }
    bool inFlight() const noexcept {
        return phase_ == BoardPhase::RomInFlight || phase_ == BoardPhase::ServingFiles;
    }
    // Between the end of the file server and the end of the storage step.
    bool afterBootStep() const noexcept {
        return phase_ == BoardPhase::Booted || phase_ == BoardPhase::StorageReady ||
               phase_ == BoardPhase::Storage;
    }

    // A ROM enumeration: a new boot of this slot (BootCount + 1). Everything
    // about the previous boot is cleared.
    void beginRomStage(const std::string& chip, const std::string& serial,
                       const std::string& profile, std::uint64_t nowUsec);
    // A second-stage enumeration. `continuing` when it follows this board's
    // own ROM stage; otherwise (the daemon did not see the ROM stage) the
    // record starts afresh without counting a boot.
    void beginSecondStage(const std::string& chip, const std::string& serial,
                          const std::string& profile, bool continuing, std::uint64_t nowUsec);

    void transferStarted(const std::string& name, std::uint64_t total);
    // `name`: the file in flight (its start may not have been reported).
    void transferProgress(const std::string& name, std::uint64_t sent, std::uint64_t total);
    void transferFinished(const std::string& name, std::uint64_t size, bool countsAsFile);
    void metadata(const std::string& key, const std::string& value);
    // The board came back on another port (found by its serial).
    void relocate(const std::string& port) { status_.port = port; }

    // The ROM accepted the bootcode: wait for the second stage.
    void romSucceeded();
    // The file server session ended: the board is booted. Returns false (and
    // fails the board) when it left the bus before it was served anything.
    bool filesDone(rpiboot::SessionEnd end, std::uint64_t nowUsec);
    // What the board became after its boot ("gadget 0a5c:0104 serial ...").
    void becameDevice(const std::string& description);
    void addDisk(const DiskEntry& disk);
    // Its disk is there: the storage step begins.
    void storageReady();
    // The storage job entered "writing" or "verifying".
    void storageStage(const std::string& stage);
    void storageProgress(std::uint64_t written, std::uint64_t toWrite);
    // The boot (and its storage step, if any) succeeded.
    void finish(std::uint64_t nowUsec);
    // A board booted successfully before (e.g. before the daemon restarted)
    // that is not booted again: shown as done, no boot counted.
    void alreadyDone(const std::string& chip, const std::string& serial,
                     const std::string& profile);
    void fail(const std::string& reason, std::uint64_t nowUsec);
    // The device left the bus while nothing was in flight and the board was
    // neither done nor expected to re-enumerate.
    void disconnect(std::uint64_t nowUsec);

    // An attempt failed and another one follows: the stage goes back to
    // waiting, LastError says what happened to this attempt.
    void awaitRetry(const std::string& reason);
    // A retry on an enumeration that does not start with the ROM stage still
    // counts as a boot attempt (BootCount + 1).
    void countAttempt() { ++status_.bootCount; }
    // The port is held: nothing is done to the board until it is released.
    void hold(const std::string& chip, const std::string& serial);
    // Released, or asked to retry, while it is not on the bus: wait for it.
    void expectReturn();

  private:
    BoardStatus status_;
    BoardPhase phase_ = BoardPhase::Idle;
};

}  // namespace rpibootd
