// One virtual Raspberry Pi: a device-side model of the chip's boot ROM and
// second stage running its Scenario on its own thread, like firmware.
//
// The board presents one UsbDevice per enumeration (ROM, second stage, final
// identity) and tells its listener when it attaches and detaches. It records
// everything it received (boot message, bootcode hash, each file and metadata
// message) and ends with an outcome. It follows docs/protocol.md, never the host code, and never
// trusts the host: any unexpected transfer is recorded as a protocol violation.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "virtualpi/bandwidth.hpp"
#include "virtualpi/mass_storage.hpp"
#include "virtualpi/scenario.hpp"
#include "virtualpi/usb_device.hpp"

namespace virtualpi {

struct RomAttempt {
    std::uint32_t announcedLength = 0;    // int32 of the boot message
    std::string signatureHex;             // its 20 signature bytes, 40 hex digits
    std::uint64_t bootMessageLength = 0;  // bytes the host announced for the message
    std::uint64_t bootcodeLength = 0;     // bytes received as the bootcode
    std::string bootcodeSha256;
    std::uint32_t status = 0;         // what the ROM answered
    bool accepted = false;            // passed the checks (the board boots if status is 0)
    std::string reason;               // why it was rejected
    std::chrono::milliseconds at{0};  // since the board was powered on
};

// Every request the second stage posted, in order.
struct RequestRecord {
    std::uint32_t command = 0;
    std::string name;                    // printable form of the name field
    bool collected = false;              // the host read it with a control IN
    std::optional<std::uint32_t> reply;  // length of the host's control OUT answer
    std::chrono::milliseconds at{0};
};

struct FileRecord {
    std::string name;
    StepKind kind = StepKind::File;
    std::optional<std::uint32_t> reportedSize;     // GetFileSize answer
    std::optional<std::uint32_t> announcedLength;  // ReadFile control OUT
    std::uint64_t receivedBytes = 0;
    std::string sha256;               // of the received bytes ("" if none were read)
    bool complete = false;            // all announced bytes arrived
    bool missing = false;             // size 0 answered
    std::optional<bool> hashMatches;  // set when the scenario gave a hash
    std::chrono::milliseconds at{0};
    std::chrono::milliseconds duration{0};  // ReadFile control OUT -> last byte
};

struct MetadataRecord {
    std::string key;
    std::optional<std::string> value;  // as the scenario meant it (decoded)
    std::string wire;                  // the name field as sent
    bool acked = false;
};

enum class Outcome { Running, Succeeded, Failed };
const char* outcomeName(Outcome outcome) noexcept;

struct BoardRecord {
    Stage stage = Stage::Off;
    unsigned enumerations = 0;
    // Uploads the ROM accepted and started (status 0), second-stage runs of
    // the script begun, and returns to the ROM after a successful run (final
    // kind Rom): a board booted again after a return counts 2 boots and runs.
    unsigned boots = 0;
    unsigned runs = 0;
    unsigned returnsToRom = 0;
    std::vector<RomAttempt> romAttempts;
    std::vector<RequestRecord> requests;
    std::vector<FileRecord> files;
    std::vector<MetadataRecord> metadata;
    // Protocol violations and notable events, in plain words.
    std::vector<std::string> log;
    Outcome outcome = Outcome::Running;
    std::string reason;  // why it failed; "" while running or on success
    // OTP and EEPROM as the session left them (starts as the scenario's).
    SecureBootState secureBoot;

    const FileRecord* file(std::string_view name) const;  // last record of that name
};
nlohmann::json recordToJson(const BoardRecord& record);

enum class AttachEventKind { Attached, Detached };
struct AttachEvent {
    AttachEventKind kind = AttachEventKind::Attached;
    std::shared_ptr<UsbDevice> device;
};
// Called on the board's own thread (or on the thread calling stop()), never
// with a board lock held; must not call start()/stop() of the same board.
using AttachListener = std::function<void(const AttachEvent&)>;

// The backing of one disk of the board's final identity.
struct DiskAttachment {
    std::filesystem::path file;  // created (sparse) or resized to sizeBytes
    std::uint64_t sizeBytes = 0;
    // Leave the bus once this many bytes were written to the disk (a board
    // unplugged mid-write); unset: never.
    std::optional<std::uint64_t> unplugAfterWritten;
};

// One disk as it stands: its backing and what the host did with it.
struct DiskStatus {
    std::string name;  // "mmcblk0", as in the scenario's final.disks
    std::filesystem::path file;
    std::uint64_t sizeBytes = 0;
    DiskStats stats;
    bool unplugged = false;  // the board left the bus at this disk's unplug limit
};

struct BoardOptions {
    std::string portPath;  // for messages only
    // Overrides scenario.serial when not empty.
    std::string serial;
    // Shared per-controller budget; null: no controller limit.
    std::shared_ptr<BandwidthBudget> controllerBudget;
    AttachListener listener;
    // Backing of final.disks[i] (mass-storage gadget) or of the usb-disk's
    // disk; disks without one NAK every bulk transfer. More entries than the
    // final identity has disks: InvalidArgument.
    std::vector<DiskAttachment> disks;
};

class BoardCore;  // shared state behind the UsbDevices (implementation detail)

class SimBoard {
  public:
    // Throws rpiboot::Error(InvalidArgument) for an unusable scenario.
    explicit SimBoard(Scenario scenario, BoardOptions options = {});
    ~SimBoard();  // stop()
    SimBoard(const SimBoard&) = delete;
    SimBoard& operator=(const SimBoard&) = delete;

    // Powers the board on: its firmware thread starts and it enumerates.
    // Later calls do nothing. A board runs its scenario once, or again after
    // each return to its ROM (final kind Rom) when a host boots it there.
    void start();
    // Powers it off: leaves the bus, joins the thread. Idempotent. An outcome
    // still Running becomes Failed ("powered off").
    void stop();

    // The current enumeration, or null while off the bus.
    std::shared_ptr<UsbDevice> device() const;
    Stage stage() const;
    const Scenario& scenario() const noexcept { return scenario_; }
    const std::string& serial() const noexcept { return serial_; }
    const std::string& portPath() const noexcept { return options_.portPath; }

    BoardRecord record() const;
    // The disks given in BoardOptions::disks, in order.
    std::vector<DiskStatus> disks() const;
    Outcome outcome() const;
    // Waits until the outcome is no longer Running, or the timeout passes.
    Outcome waitForOutcome(std::chrono::milliseconds timeout) const;
    // Waits until the board has an enumeration in `stage` (true) or the
    // timeout passes (false).
    bool waitForStage(Stage stage, std::chrono::milliseconds timeout) const;

  private:
    void run(std::stop_token stop);

    Scenario scenario_;
    BoardOptions options_;
    std::string serial_;
    std::shared_ptr<BoardCore> core_;
    std::vector<std::shared_ptr<ScsiDisk>> disks_;
    bool started_ = false;
    std::jthread thread_;
};

}  // namespace virtualpi
