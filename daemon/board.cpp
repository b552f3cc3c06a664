#include "board.hpp"

#include <iterator>
#include <variant>

namespace rpibootd {

namespace {

BoardStatus freshStatus(const std::string& port) {
    BoardStatus s;
    s.port = port;
    return s;
}

}  // namespace

std::uint32_t changedFields(const BoardStatus& a, const BoardStatus& b) {
    std::uint32_t changed = 0;
    for (std::size_t i = 0; i < std::size(kBoardProperties); ++i) {
        const bool differs = std::visit([&](auto member) { return a.*member != b.*member; },
                                        kBoardProperties[i].member);
        changed |= differs ? 1U << i : 0;
    }
    return changed;
}

Board::Board(std::string port) {
    status_.port = std::move(port);
}

void Board::beginRomStage(const std::string& chip, const std::string& serial,
                          const std::string& profile, std::uint64_t nowUsec) {
    const std::uint32_t boots = status_.bootCount;
    status_ = freshStatus(status_.port);
    status_.chip = chip;
    status_.serial = serial;
    status_.profile = profile;
    status_.stage = kStageSendingBootcode;
    status_.bootCount = boots + 1;
    status_.startedUsec = nowUsec;
    phase_ = BoardPhase::RomInFlight;
}

void Board::beginSecondStage(const std::string& chip, const std::string& serial,
                             const std::string& profile, bool continuing, std::uint64_t nowUsec) {
    if (!continuing) {
        const std::uint32_t boots = status_.bootCount;
        status_ = freshStatus(status_.port);
        status_.chip = chip;
        status_.serial = serial;
        status_.profile = profile;
        status_.bootCount = boots;
        status_.startedUsec = nowUsec;
    }
    status_.stage = kStageServingFiles;
    status_.currentFile.clear();
    status_.bytesSent = 0;
    status_.bytesTotal = 0;
    phase_ = BoardPhase::ServingFiles;
}

void Board::transferStarted(const std::string& name, std::uint64_t total) {
    status_.currentFile = name;
    status_.bytesSent = 0;
    status_.bytesTotal = total;
}

void Board::transferProgress(const std::string& name, std::uint64_t sent, std::uint64_t total) {
    status_.currentFile = name;
    status_.bytesSent = sent;
    status_.bytesTotal = total;
}

void Board::transferFinished(const std::string& name, std::uint64_t size, bool countsAsFile) {
    status_.currentFile = name;
    status_.bytesSent = size;
    status_.bytesTotal = size;
    if (countsAsFile) {
        ++status_.filesServed;
    }
}

void Board::metadata(const std::string& key, const std::string& value) {
    status_.metadata[key] = value;
}

void Board::romSucceeded() {
    status_.stage = kStageWaiting;
    phase_ = BoardPhase::AwaitingSecondStage;
}

bool Board::filesDone(rpiboot::SessionEnd end, std::uint64_t nowUsec) {
    if (end == rpiboot::SessionEnd::DeviceGone && status_.filesServed == 0) {
        fail("the board left the bus before it was served any file", nowUsec);
        return false;
    }
    status_.stage = kStageBooted;
    status_.currentFile.clear();
    phase_ = BoardPhase::Booted;
    return true;
}

void Board::becameDevice(const std::string& description) {
    status_.afterBoot = description;
}

void Board::addDisk(const DiskEntry& disk) {
    for (auto& known : status_.disks) {
        if (known.node == disk.node) {
            known = disk;
            return;
        }
    }
    status_.disks.push_back(disk);
}

void Board::storageReady() {
    status_.stage = kStageStorageReady;
    status_.bytesWritten = 0;
    status_.bytesToWrite = 0;
    phase_ = BoardPhase::StorageReady;
}

void Board::storageStage(const std::string& stage) {
    status_.stage = stage;
    phase_ = BoardPhase::Storage;
}

void Board::storageProgress(std::uint64_t written, std::uint64_t toWrite) {
    status_.bytesWritten = written;
    status_.bytesToWrite = toWrite;
}

void Board::finish(std::uint64_t nowUsec) {
    status_.stage = kStageDone;
    status_.currentFile.clear();
    status_.finishedUsec = nowUsec;
    phase_ = BoardPhase::Done;
}

void Board::alreadyDone(const std::string& chip, const std::string& serial,
                        const std::string& profile) {
    const std::uint32_t boots = status_.bootCount;
    status_ = freshStatus(status_.port);
    status_.chip = chip;
    status_.serial = serial;
    status_.profile = profile;
    status_.bootCount = boots;
    status_.stage = kStageDone;
    phase_ = BoardPhase::Done;
}

void Board::fail(const std::string& reason, std::uint64_t nowUsec) {
    status_.stage = kStageFailed;
    status_.lastError = reason;
    status_.finishedUsec = nowUsec;
    phase_ = BoardPhase::Failed;
}

void Board::awaitRetry(const std::string& reason) {
    status_.stage = kStageWaiting;
    status_.lastError = reason;
    status_.currentFile.clear();
    status_.bytesSent = 0;
    status_.bytesTotal = 0;
    phase_ = BoardPhase::Idle;
}

void Board::hold(const std::string& chip, const std::string& serial) {
    if (!chip.empty()) {
        status_.chip = chip;
    }
    if (!serial.empty()) {
        status_.serial = serial;
    }
    status_.stage = kStageHeld;
    status_.currentFile.clear();
    status_.bytesSent = 0;
    status_.bytesTotal = 0;
    phase_ = BoardPhase::Held;
}

void Board::expectReturn() {
    status_.stage = kStageWaiting;
    status_.currentFile.clear();
    phase_ = BoardPhase::Idle;
}

void Board::disconnect(std::uint64_t nowUsec) {
    status_.stage = kStageDisconnected;
    if (status_.finishedUsec == 0) {
        status_.finishedUsec = nowUsec;
    }
    phase_ = BoardPhase::Disconnected;
}

}  // namespace rpibootd
