// A USB mass-storage function of a virtual board: a SCSI disk (the commands
// the Linux usb-storage and sd drivers issue) backed by a sparse file, behind
// the Bulk-Only Transport (USB Mass Storage Class, Bulk-Only Transport 1.0).
//
// ScsiDisk answers command descriptor blocks; BulkOnlyStorage is the
// endpoint-level face of one mass-storage interface (bulk IN + bulk OUT and
// its class requests) that a board's UsbDevice hands its traffic to. Both are
// thread-safe: the bulk endpoints and endpoint 0 may be driven from different
// threads, as a host controller (or the USB/IP server) does.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "virtualpi/usb_device.hpp"

namespace virtualpi {

// ---------------------------------------------------------------- SCSI

inline constexpr std::uint32_t kDiskBlockSize = 512;

// Sense keys and additional sense codes the disk reports (SPC).
namespace sense {
inline constexpr std::uint8_t kNoSense = 0x0;
inline constexpr std::uint8_t kMediumError = 0x3;
inline constexpr std::uint8_t kIllegalRequest = 0x5;
// {ASC, ASCQ}
inline constexpr std::uint16_t kInvalidOpcode = 0x2000;
inline constexpr std::uint16_t kLbaOutOfRange = 0x2100;
inline constexpr std::uint16_t kInvalidFieldInCdb = 0x2400;
inline constexpr std::uint16_t kLunNotSupported = 0x2500;
inline constexpr std::uint16_t kSavingNotSupported = 0x3900;
inline constexpr std::uint16_t kWriteError = 0x0c00;
inline constexpr std::uint16_t kReadError = 0x1100;
}  // namespace sense

struct SenseData {
    std::uint8_t key = sense::kNoSense;
    std::uint16_t code = 0;  // ASC << 8 | ASCQ
    std::uint32_t information = 0;
    bool informationValid = false;
};

struct DiskOptions {
    // Created if missing; extended (sparse) or truncated to sizeBytes.
    std::filesystem::path file;
    std::uint64_t sizeBytes = 0;  // a positive multiple of 512
    // INQUIRY identification, 28 characters from byte 8: vendor (8), product
    // (16), revision (4); shorter text is padded with spaces, as the Linux
    // mass-storage gadget pads its `inquiry_string` (its "mmcblk0" therefore
    // lands in the vendor field). inquiryIdentification() builds one from
    // separate fields.
    std::string identification;
    std::string serial;     // VPD page 0x80; empty: "0"
    bool removable = true;  // RMB bit (the gadget's LUNs are removable)
};

// vendor padded to 8, product to 16, revision to 4 (each cut if longer).
std::string inquiryIdentification(std::string_view vendor, std::string_view product,
                                  std::string_view revision);

enum class DataDirection { None, In, Out };

// What a command needs from the transport after ScsiDisk::decode().
struct ScsiPlan {
    bool good = true;  // false: CHECK CONDITION, sense() says why
    DataDirection direction = DataDirection::None;
    std::uint64_t length = 0;      // bytes the device means to move
    std::vector<std::uint8_t> in;  // the reply of a non-medium IN command
    // READ/WRITE: data go to/from the medium at this byte offset.
    bool medium = false;
    std::uint64_t offset = 0;
};

struct DiskStats {
    std::uint64_t commands = 0;
    std::uint64_t failedCommands = 0;  // CHECK CONDITION
    std::uint64_t bytesRead = 0;
    std::uint64_t bytesWritten = 0;
    std::uint64_t syncs = 0;
};

class ScsiDisk {
  public:
    // Throws rpiboot::Error (InvalidArgument for a bad size, Io when the file
    // cannot be created).
    explicit ScsiDisk(DiskOptions options);
    ~ScsiDisk();
    ScsiDisk(const ScsiDisk&) = delete;
    ScsiDisk& operator=(const ScsiDisk&) = delete;

    // Decodes and runs one command for logical unit `lun`. Commands without
    // medium data complete here (their reply is in plan.in); READ/WRITE are
    // checked and then moved with read()/write() by the transport.
    ScsiPlan decode(std::span<const std::uint8_t> cdb, std::uint8_t lun = 0);
    // Medium access of a READ/WRITE plan; false on an I/O error (sense set).
    bool read(std::uint64_t offset, std::span<std::uint8_t> out);
    bool write(std::uint64_t offset, std::span<const std::uint8_t> data);

    SenseData sense() const;
    // Fixed-format sense data (18 bytes) of `s`.
    static std::vector<std::uint8_t> fixedSense(const SenseData& s);
    std::uint64_t blocks() const noexcept { return options_.sizeBytes / kDiskBlockSize; }
    const DiskOptions& options() const noexcept { return options_; }
    DiskStats stats() const;

  private:
    ScsiPlan fail(std::uint8_t key, std::uint16_t code);
    ScsiPlan inquiry(std::span<const std::uint8_t> cdb);
    ScsiPlan modeSense(std::span<const std::uint8_t> cdb, bool ten);
    ScsiPlan readWrite(std::uint64_t lba, std::uint64_t count, bool write);

    DiskOptions options_;
    int fd_ = -1;
    mutable std::mutex mutex_;
    SenseData sense_;
    DiskStats stats_;
};

// ---------------------------------------------------------------- Bulk-Only Transport

inline constexpr std::size_t kCbwLength = 31;
inline constexpr std::size_t kCswLength = 13;
inline constexpr std::uint32_t kCbwSignature = 0x43425355;  // "USBC"
inline constexpr std::uint32_t kCswSignature = 0x53425355;  // "USBS"
// Class requests (bmRequestType 0x21 / 0xA1, wIndex = interface).
inline constexpr std::uint8_t kRequestMassStorageReset = 0xFF;
inline constexpr std::uint8_t kRequestGetMaxLun = 0xFE;

struct BotStats {
    std::uint64_t commands = 0;
    std::uint64_t invalidCbws = 0;
    std::uint64_t phaseErrors = 0;
    std::uint64_t resets = 0;
};

class BulkOnlyStorage {
  public:
    BulkOnlyStorage(std::shared_ptr<ScsiDisk> disk, std::uint8_t interfaceNumber,
                    std::uint8_t inEndpoint, std::uint8_t outEndpoint);

    std::uint8_t interfaceNumber() const noexcept { return interface_; }
    bool ownsEndpoint(std::uint8_t endpoint) const noexcept {
        return endpoint == in_ || endpoint == out_;
    }
    ScsiDisk& disk() noexcept { return *disk_; }

    // A class request addressed to this interface (Get Max LUN, Bulk-Only
    // Mass Storage Reset); anything else STALLs.
    TransferResult classRequest(const SetupPacket& setup, std::span<std::uint8_t> data);
    // Standard endpoint requests on one of its endpoints.
    bool halted(std::uint8_t endpoint) const;
    void setHalt(std::uint8_t endpoint);
    // CLEAR_FEATURE(ENDPOINT_HALT): ignored while the function waits for a
    // reset after an invalid CBW (the endpoints stay halted until then).
    void clearHalt(std::uint8_t endpoint);

    TransferResult bulkOut(std::span<const std::uint8_t> data, Deadline deadline,
                           const std::stop_token& cancel);
    TransferResult bulkIn(std::span<std::uint8_t> buffer, Deadline deadline,
                          const std::stop_token& cancel);

    // The board left the bus: every call from now on returns Disconnected.
    void disconnect();
    // After `bytes` written to the medium the function calls `onLimit` (once,
    // without a lock held) and disconnects: a board unplugged mid-write. The
    // transfer that crosses the limit keeps exactly up to the limit.
    void unplugAfterWritten(std::uint64_t bytes, std::function<void()> onLimit);
    bool unplugged() const;
    BotStats stats() const;

  private:
    enum class Phase { Command, DataIn, DataOut, Status };

    void startCommand(std::span<const std::uint8_t> cbw);
    void endData();  // data phase over: halt as the 13 cases say, queue the CSW
    template <typename Pred>
    UsbStatus waitFor(std::unique_lock<std::mutex>& lock, Deadline deadline,
                      const std::stop_token& cancel, Pred pred);

    std::shared_ptr<ScsiDisk> disk_;
    std::uint8_t interface_;
    std::uint8_t in_;
    std::uint8_t out_;

    mutable std::mutex mutex_;
    std::condition_variable_any changed_;
    bool gone_ = false;
    bool wedged_ = false;  // invalid CBW: only a reset lets the endpoints go
    bool haltIn_ = false;
    bool haltOut_ = false;
    Phase phase_ = Phase::Command;
    // The command being served.
    std::uint32_t tag_ = 0;
    std::uint32_t hostLength_ = 0;  // dCBWDataTransferLength
    DataDirection hostDirection_ = DataDirection::None;
    ScsiPlan plan_;
    std::uint64_t deviceLength_ = 0;  // what the device moves (min of host and device)
    std::uint64_t moved_ = 0;
    std::uint8_t status_ = 0;  // CSW status: 0 passed, 1 failed, 2 phase error
    bool haltAfterData_ = false;
    std::vector<std::uint8_t> csw_;
    // Unplug after so many medium bytes written.
    std::optional<std::uint64_t> writeLimit_;
    std::uint64_t written_ = 0;
    std::function<void()> onLimit_;
    bool unplugged_ = false;
    BotStats stats_;
};

}  // namespace virtualpi
