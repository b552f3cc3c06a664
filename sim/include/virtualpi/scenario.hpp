// What a virtual board does: its chip, its ROM stage, the second stage's
// request script, its timing and the faults it injects.
//
// A Scenario is plain data, loaded from JSON (format in
// sim/README.md), built with ScenarioBuilder or taken from the
// built-in profiles (builtin_scenarios.hpp). It follows docs/protocol.md (§2, §3.5, §4, §5, §7),
// never the host code. It holds no threads and does no I/O except loadScenario().
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rpiboot/core/device.hpp"
#include "virtualpi/descriptors.hpp"

namespace virtualpi {

// Second-stage request commands (docs/protocol.md §5).
inline constexpr std::uint32_t kCommandGetFileSize = 0;
inline constexpr std::uint32_t kCommandReadFile = 1;
inline constexpr std::uint32_t kCommandDone = 2;
inline constexpr std::size_t kRequestSize = 260;
inline constexpr std::size_t kRequestNameSize = 256;
inline constexpr std::size_t kBootMessageSize = 24;
// The most returns to the ROM a scenario may ask for (FinalIdentity::returns).
inline constexpr unsigned kMaxRomReturns = 100;

enum class FaultKind {
    None,
    Disconnect,    // leave the bus
    StallControl,  // STALL the control transfer at that point (and every retry)
    StallBulk,     // halt the bulk OUT endpoint after `afterBytes`
    Silence,       // stop answering: NAK forever, the host times out
};

// Where a fault strikes. ROM points: BootMessage, Bootcode (the two bulk
// uploads; `afterBytes` counts into that upload), Status (the return-code
// read). Second-stage points: Request (instead of posting the request),
// Reply (after the host collected the request, before its answer), Data
// (after `afterBytes` bytes of the step's bulk data).
enum class FaultPoint { Request, Reply, Data, BootMessage, Bootcode, Status };

struct Fault {
    FaultKind kind = FaultKind::None;
    FaultPoint at = FaultPoint::Data;
    std::uint64_t afterBytes = 0;

    bool active() const noexcept { return kind != FaultKind::None; }
};

enum class StepKind {
    File,         // GetFileSize, then ReadFile if the size is not 0
    GetFileSize,  // GetFileSize only
    ReadFile,     // ReadFile only (no preceding GetFileSize)
    Metadata,     // ReadFile "*KEY*VALUE", acked by a length-0 control OUT
    Raw,          // any command and name bytes: garbage, names without NUL, ...
    Pause,        // device busy for `delay` (e.g. flashing the EEPROM)
    EmptyName,    // request with an empty name; the host acks and ends
    Done,         // command 2 with a non-empty name; no ack
    Disconnect,   // leave the bus without a word
};

// How a Raw step waits for the host: Auto waits for a control OUT and, for
// command 1 with a non-zero length, receives that many bulk bytes; None goes
// on as soon as the host has collected the request.
enum class RawReply { Auto, None };

struct Step {
    StepKind kind = StepKind::File;
    // File name, metadata key, or (Raw) the name bytes as given.
    std::string name;
    // Metadata: the value; unset sends "*KEY" with no value. Supports the
    // placeholders {serial} and {sha256:NAME} (hash of a received file).
    std::optional<std::string> value;
    // Metadata: send the value c40-encoded (FACTORY_UUID, docs/protocol.md §5.6); records keep
    // the decoded text.
    bool c40 = false;
    // File: a size of 0 (missing) is acceptable.
    bool optional = false;
    // Expected SHA-256 (lower-case hex) and size of the file's bytes.
    std::optional<std::string> sha256;
    std::optional<std::uint64_t> size;
    // The device refuses (does not read) a file larger than this.
    std::optional<std::uint64_t> maxSize;
    // Raw / EmptyName / Done: the command value sent.
    std::uint32_t command = 0;
    // Raw: byte that fills the name field after `name` (non-zero: no NUL).
    std::uint8_t pad = 0;
    // Raw: bytes the device returns for the request (default 260).
    std::optional<std::size_t> messageLength;
    RawReply reply = RawReply::Auto;
    // Device think time before the request (slow answers), or Pause length.
    std::chrono::milliseconds delay{0};
    unsigned repeat = 1;
    Fault fault;
};

struct RomScript {
    // Name the bootcode goes by in records (bootcode.bin/bootcode4.bin/...).
    std::string bootcodeName;
    std::optional<std::string> bootcodeSha256;
    // Expected 20-byte boot-message signature as 40 hex digits (2835/2837 -s).
    std::optional<std::string> signature;
    // Status answered to each accepted upload, in order; the last one repeats.
    // A non-zero status keeps the board in the ROM stage.
    std::vector<std::uint32_t> returnCodes{0};
    // Status answered to a rejected upload (wrong length, hash or signature).
    std::uint32_t rejectCode = 0xffffffff;
    // Reproduce the 55/32 configuration length quirk (docs/protocol.md §12.3).
    bool configQuirk = false;
    Fault fault;
};

struct Timing {
    std::chrono::milliseconds romResetDelay{0};          // ROM status read -> second stage
    std::chrono::milliseconds romStatusDelay{0};         // upload -> status ready
    std::chrono::milliseconds secondStageStartDelay{0};  // enumeration -> first request
    std::chrono::milliseconds fileProcessingDelay{0};    // after each received file
    std::chrono::milliseconds finalDelay{0};             // second stage gone -> final identity
    // How long the device waits for the host to act (collect a request,
    // answer, send data) before giving up and leaving the bus. 0: forever.
    std::chrono::milliseconds hostTimeout{0};
};

// UsbDisk: a plain USB disk of the custom IDs and strings (one mass-storage
// interface); MassStorageGadget: one mass-storage interface per disk. Their
// disks answer SCSI when the board is given backing files
// (BoardOptions::disks), otherwise they NAK. Rom: the board resets into its
// boot ROM (recovery.bin with recovery_reboot=1 and the boot jumper fitted):
// same chip, serial and port, and it runs its scenario again if a host boots
// it, at most `returns` times; after the last return's run it stays off the
// bus.
enum class FinalKind { None, MassStorageGadget, Custom, UsbDisk, Rom };

struct FinalIdentity {
    FinalKind kind = FinalKind::None;
    // Custom identity; MassStorageGadget uses 0a5c:0104 and the fields below
    // only for its disks and serial.
    std::uint16_t vendorId = 0x0a5c;
    std::uint16_t productId = 0x0104;
    std::string manufacturer = "Raspberry Pi";
    std::string product = "Raspberry Pi multi-function USB device";
    // Empty: gadget "10000000" + board serial; custom: board serial.
    std::string serial;
    // Names of the disks; a gadget disk reports its name as INQUIRY
    // identification (docs/protocol.md §12.4).
    std::vector<std::string> disks{"mmcblk0"};
    // Rom: how often the board comes back as its ROM after a successful run
    // (a bound, so a host that boots it every time cannot loop for ever).
    unsigned returns = 1;
};

// Final: the board shows its final identity at once and never boots (a
// gadget already running, or a decoy disk).
enum class StartStage { Rom, SecondStage, Final };

// The board's secure-boot state (docs/protocol.md §7.4, §10): what its OTP
// and EEPROM hold. A board whose OTP holds a customer key hash is locked: a
// BCM2712 ROM then only runs loaders whose outer signature block (§10.6) is
// by that key, and the second stage only accepts a boot.img whose boot.sig
// (§9) verifies with the EEPROM's pubkey.bin of that hash. Recovery
// (config.txt program_pubkey=1 ...) programs OTP from the pubkey.bin of the
// EEPROM image it flashes, once its bootconf.sig verifies with it.
struct SecureBootState {
    std::string otpKeyHash;    // 64 hex digits; empty: OTP not programmed
    std::string eepromPubkey;  // pubkey.bin in the board's EEPROM, hex; empty: none
    bool jtagLocked = false;
    bool devkeyRevoked = false;

    bool locked() const noexcept { return !otpKeyHash.empty(); }
};

struct Scenario {
    std::string name;
    rpiboot::Chip chip = rpiboot::Chip::Bcm2711;
    // The SoC serial, 8 hex digits; empty: chosen by whoever plugs the board
    // (VirtualBus makes one unique per board), else "00000000".
    std::string serial;
    StartStage startStage = StartStage::Rom;
    RomScript rom;
    SecondStageShape secondStage;
    std::vector<Step> steps;
    FinalIdentity final;
    Timing timing;
    // Per-board bulk rate cap in bytes per second; 0 = unlimited.
    std::uint64_t bulkBytesPerSecond = 0;
    // Device-wide limit on a file's size (its memory); unset = unlimited.
    std::optional<std::uint64_t> maxFileSize;
    // OTP and EEPROM at power-on. Metadata values may use {provision},
    // {customer_key_hash}, {jtag_locked} and {eeprom_update}, which reflect it
    // after the files received so far were acted on.
    SecureBootState secureBoot;

    // Sets the expected SHA-256 of every File/ReadFile step named `name` and
    // of the bootcode when rom.bootcodeName is `name`.
    void expectSha256(std::string_view name, std::string_view sha256Hex);
    // Same for each entry of a name -> hash map (e.g. from readSha256Sums).
    void expectHashes(const std::map<std::string, std::string>& hashes);
};

Scenario scenarioFromJson(const nlohmann::json& json);
nlohmann::json scenarioToJson(const Scenario& scenario);
// Throws rpiboot::Error(InvalidArgument) naming the field that is wrong.
Scenario parseScenario(std::string_view jsonText);
Scenario loadScenario(const std::filesystem::path& path);

// A `sha256sum` listing ("<hex>  ./dir/name") as file name (the last path
// component) -> hash. Later duplicates of a name win.
std::map<std::string, std::string> readSha256Sums(const std::filesystem::path& path);

const char* stepKindName(StepKind kind) noexcept;
const char* faultKindName(FaultKind kind) noexcept;
const char* faultPointName(FaultPoint point) noexcept;

}  // namespace virtualpi
