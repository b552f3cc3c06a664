// What the daemon knows about each board, as the outside world sees it.
//
// The seam between the board machinery (registry, workers, state machine)
// and the D-Bus adapter: the registry publishes BoardStatus snapshots and
// events to a StatusSink; the adapter reads them and calls ManagerControl for
// the few things a client may ask for. Everything here is used on the main
// event-loop thread only. Nothing in this header knows sd-bus.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rpibootd {

// D-Bus property `Stage` values (issue contract).
inline constexpr const char* kStageWaiting = "waiting";
inline constexpr const char* kStageSendingBootcode = "sending-bootcode";
inline constexpr const char* kStageServingFiles = "serving-files";
inline constexpr const char* kStageDone = "done";
inline constexpr const char* kStageFailed = "failed";
inline constexpr const char* kStageDisconnected = "disconnected";
// An operator holds the port: a board there is left untouched.
inline constexpr const char* kStageHeld = "held";

struct BoardStatus {
    std::string port;     // USB port path, "1-1.3"
    std::string chip;     // "BCM2711"
    std::string serial;   // ROM serial, "" when the chip has none
    std::string profile;  // profile name chosen for the board
    std::string stage = kStageWaiting;
    std::string currentFile;
    std::uint64_t bytesSent = 0;
    std::uint64_t bytesTotal = 0;
    std::uint32_t filesServed = 0;
    std::uint32_t bootCount = 0;
    std::string lastError;
    std::uint64_t startedUsec = 0;   // CLOCK_REALTIME µs, 0 = not yet
    std::uint64_t finishedUsec = 0;  // CLOCK_REALTIME µs, 0 = not yet
    std::map<std::string, std::string> metadata;
};

// Which properties changed, so PropertiesChanged names only those.
enum BoardField : std::uint32_t {
    kFieldPort = 1U << 0,
    kFieldChip = 1U << 1,
    kFieldSerial = 1U << 2,
    kFieldProfile = 1U << 3,
    kFieldStage = 1U << 4,
    kFieldCurrentFile = 1U << 5,
    kFieldBytesSent = 1U << 6,
    kFieldBytesTotal = 1U << 7,
    kFieldFilesServed = 1U << 8,
    kFieldBootCount = 1U << 9,
    kFieldLastError = 1U << 10,
    kFieldStartedUsec = 1U << 11,
    kFieldFinishedUsec = 1U << 12,
    kFieldMetadata = 1U << 13,
};

class StatusSink {
  public:
    virtual ~StatusSink() = default;
    virtual void boardAdded(const BoardStatus& board) = 0;
    virtual void boardChanged(const BoardStatus& board, std::uint32_t changedFields) = 0;
    virtual void boardRemoved(const std::string& port) = 0;
    virtual void bootFinished(const std::string& port, bool success,
                              const std::string& message) = 0;
    // The set of held port globs changed.
    virtual void heldPortsChanged() {}
};

struct ReloadResult {
    bool ok = false;
    std::string message;  // on failure: file, key and reason
};

// The outcome of an operator's request (Retry, Forget, Hold, Release, ...).
enum class ControlOutcome { Ok, UnknownPort, Busy, Held, NotHeld, InvalidGlob };

struct ControlResult {
    ControlOutcome outcome = ControlOutcome::Ok;
    std::string message;  // for people; on success what was done
    bool ok() const noexcept { return outcome == ControlOutcome::Ok; }
};

// What an operator may ask of one board (io.rpibootd1.Device methods).
enum class BoardAction { Retry, Forget, Hold, Release };

class ManagerControl {
  public:
    virtual ~ManagerControl() = default;
    virtual std::vector<BoardStatus> boards() const = 0;
    virtual std::vector<std::string> profileNames() const = 0;
    virtual ReloadResult reload() = 0;
    virtual ControlResult control(const std::string& port, BoardAction action) = 0;
    virtual ControlResult holdPort(const std::string& glob) = 0;
    virtual ControlResult releasePort(const std::string& glob) = 0;
    virtual std::vector<std::string> heldPorts() const = 0;
};

}  // namespace rpibootd
