// What the daemon knows about each board, as the outside world sees it.
//
// The seam between the board machinery (registry, workers, state machine)
// and the D-Bus adapter: the registry publishes BoardStatus snapshots and
// events to a StatusSink; the adapter reads them and calls ManagerControl (the
// daemon) for the few things a client may ask for. kBoardProperties says
// which field is which D-Bus property. Everything here is used on the main
// event-loop thread only. Nothing in this header knows sd-bus.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace rpibootd {

// D-Bus property `Stage` values (issue contract).
inline constexpr const char* kStageWaiting = "waiting";
inline constexpr const char* kStageSendingBootcode = "sending-bootcode";
inline constexpr const char* kStageServingFiles = "serving-files";
// The file server ended: the board runs what it was served and is followed
// into the USB device it becomes.
inline constexpr const char* kStageBooted = "booted";
// Its disk(s) appeared; the storage step is about to write.
inline constexpr const char* kStageStorageReady = "storage-ready";
inline constexpr const char* kStageWriting = "writing";
inline constexpr const char* kStageVerifying = "verifying";
inline constexpr const char* kStageDone = "done";
inline constexpr const char* kStageFailed = "failed";
inline constexpr const char* kStageDisconnected = "disconnected";
// An operator holds the port: a board there is left untouched.
inline constexpr const char* kStageHeld = "held";

// A whole disk under the USB device a board became (D-Bus `Disks` a(sst)).
struct DiskEntry {
    std::string node;   // "/dev/sdb"; a virtual board's backing file
    std::string model;  // inquiry / model string, "mmcblk0"
    std::uint64_t sizeBytes = 0;
    bool operator==(const DiskEntry&) const = default;
};

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
    // What the board became after this boot: "KIND VID:PID[ serial SERIAL]",
    // e.g. "gadget 0a5c:0104 serial 10000000af04b2da"; "" until it appears.
    std::string afterBoot;
    std::vector<DiskEntry> disks;    // the whole disks seen under it in this boot
    std::uint64_t bytesWritten = 0;  // storage step: image bytes written so far
    std::uint64_t bytesToWrite = 0;  // and in all (0 while unknown)
};

// Whether a property's changes are announced (PropertiesChanged). Progress
// (BytesSent) arrives already rate-limited by the stage workers.
enum class Emits {
    Never,     // constant for the life of the board's object
    OnChange,  // in the PropertiesChanged of each change
};

// Where a property lives in BoardStatus. The member's C++ type gives the
// D-Bus type: std::string "s", std::uint64_t "t", std::uint32_t "u",
// std::map<std::string, std::string> "a{ss}", std::vector<DiskEntry> "a(sst)".
using BoardStatusMember =
    std::variant<std::string BoardStatus::*, std::uint64_t BoardStatus::*,
                 std::uint32_t BoardStatus::*, std::map<std::string, std::string> BoardStatus::*,
                 std::vector<DiskEntry> BoardStatus::*>;

struct BoardProperty {
    const char* name;  // the property of io.rpibootd1.Device
    BoardStatusMember member;
    Emits emits;
};

// The properties of io.rpibootd1.Device, each declared once. The D-Bus
// vtable, Get/GetAll, PropertiesChanged, the change bits below and the test
// against dbus/io.rpibootd1.xml are all made from this table.
//
// To add a property: add its field to BoardStatus, one line here, and its
// <property> (with a comment) to dbus/io.rpibootd1.xml and docs/dbus-api.md.
// Set the field in Board (board.cpp); nothing else changes.
// clang-format off
inline constexpr BoardProperty kBoardProperties[] = {
    {"Port",         &BoardStatus::port,         Emits::Never},
    {"Chip",         &BoardStatus::chip,         Emits::OnChange},
    {"Serial",       &BoardStatus::serial,       Emits::OnChange},
    {"Profile",      &BoardStatus::profile,      Emits::OnChange},
    {"Stage",        &BoardStatus::stage,        Emits::OnChange},
    {"CurrentFile",  &BoardStatus::currentFile,  Emits::OnChange},
    {"BytesSent",    &BoardStatus::bytesSent,    Emits::OnChange},
    {"BytesTotal",   &BoardStatus::bytesTotal,   Emits::OnChange},
    {"FilesServed",  &BoardStatus::filesServed,  Emits::OnChange},
    {"BootCount",    &BoardStatus::bootCount,    Emits::OnChange},
    {"LastError",    &BoardStatus::lastError,    Emits::OnChange},
    {"StartedUsec",  &BoardStatus::startedUsec,  Emits::OnChange},
    {"FinishedUsec", &BoardStatus::finishedUsec, Emits::OnChange},
    {"Metadata",     &BoardStatus::metadata,     Emits::OnChange},
    {"AfterBoot",    &BoardStatus::afterBoot,    Emits::OnChange},
    {"Disks",        &BoardStatus::disks,        Emits::OnChange},
    {"BytesWritten", &BoardStatus::bytesWritten, Emits::OnChange},
    {"BytesToWrite", &BoardStatus::bytesToWrite, Emits::OnChange},
};
// clang-format on
static_assert(std::size(kBoardProperties) <= 32, "change bits are a std::uint32_t");

// Change bits: bit i stands for kBoardProperties[i].
consteval std::uint32_t fieldBit(std::string_view name) {
    for (std::size_t i = 0; i < std::size(kBoardProperties); ++i) {
        if (name == kBoardProperties[i].name) {
            return 1U << i;
        }
    }
    throw "no such property in kBoardProperties";
}

// The bits of every property whose changes are announced as `emits` says.
constexpr std::uint32_t fieldsThatEmit(Emits emits) {
    std::uint32_t bits = 0;
    for (std::size_t i = 0; i < std::size(kBoardProperties); ++i) {
        bits |= kBoardProperties[i].emits == emits ? 1U << i : 0;
    }
    return bits;
}

// Names for the bits code refers to.
inline constexpr std::uint32_t kFieldSerial = fieldBit("Serial");
inline constexpr std::uint32_t kFieldStage = fieldBit("Stage");
inline constexpr std::uint32_t kFieldCurrentFile = fieldBit("CurrentFile");
inline constexpr std::uint32_t kFieldBytesSent = fieldBit("BytesSent");
inline constexpr std::uint32_t kFieldBytesTotal = fieldBit("BytesTotal");
inline constexpr std::uint32_t kFieldFilesServed = fieldBit("FilesServed");
inline constexpr std::uint32_t kFieldBootCount = fieldBit("BootCount");
inline constexpr std::uint32_t kFieldLastError = fieldBit("LastError");
inline constexpr std::uint32_t kFieldStartedUsec = fieldBit("StartedUsec");
inline constexpr std::uint32_t kFieldFinishedUsec = fieldBit("FinishedUsec");
inline constexpr std::uint32_t kFieldMetadata = fieldBit("Metadata");
inline constexpr std::uint32_t kFieldAfterBoot = fieldBit("AfterBoot");
inline constexpr std::uint32_t kFieldDisks = fieldBit("Disks");
inline constexpr std::uint32_t kFieldBytesWritten = fieldBit("BytesWritten");
inline constexpr std::uint32_t kFieldBytesToWrite = fieldBit("BytesToWrite");

// Which properties differ between two snapshots (change bits).
std::uint32_t changedFields(const BoardStatus& before, const BoardStatus& after);

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
