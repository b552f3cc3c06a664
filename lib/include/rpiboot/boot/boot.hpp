// One step of booting a board: whatever the device on the bus needs now.
//
// Ties the pieces together for the CLI and the daemon: given an opened device
// in ROM stage it uploads the chip's loader from the firmware set; in second
// stage it runs the file server. It does not wait for re-enumeration and does
// not know about udev, D-Bus or libusb: callers own discovery and threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rpiboot/core/device.hpp"
#include "rpiboot/core/file_server.hpp"
#include "rpiboot/core/observer.hpp"
#include "rpiboot/core/rom_stage.hpp"
#include "rpiboot/core/transport.hpp"
#include "rpiboot/firmware/firmware_set.hpp"

namespace rpiboot {

// One metadata entry a board must send (protocol.md §5.5) for its session to
// count as a success, such as SECURE_BOOT_PROVISION=success after recovery.
struct ExpectedReport {
    std::string key;
    std::string value;         // exact; hex digests compared case-insensitively
    std::optional<Chip> chip;  // only for boards of this chip; nullopt: all
    std::string meaning;       // the failure in words: "the customer key was not programmed"
};

// The first expected report a board's metadata does not satisfy, as a
// message for the operator ("board reported SECURE_BOOT_PROVISION=failed: ..."),
// or nullopt when all are met.
std::optional<std::string> unmetReport(const std::vector<ExpectedReport>& expected,
                                       const std::map<std::string, std::string>& metadata,
                                       Chip chip);

struct BootOptions {
    TransferTimeouts timeouts;
    // Bulk OUT transfers kept queued per board (Link); 1 waits for every
    // 16 KiB chunk before sending the next.
    std::size_t bulkTransfersInFlight = kDefaultBulkTransfersInFlight;
    FileServerOptions fileServer;
    // Signed boot for the BCM2835 family (upstream -s): the boot message
    // carries the first 20 bytes of bootcode.sig from the firmware set.
    bool signedBoot = false;
    // Checked after the second stage: an unmet one fails the session with
    // Errc::Refused (the metadata is still reported to the observer).
    std::vector<ExpectedReport> expectedReports;
};

struct StageOutcome {
    BootStage stage = BootStage::Rom;
    std::uint64_t bootcodeSize = 0;         // ROM stage: loader bytes sent
    std::optional<FileServerResult> files;  // second stage: the session's result
};

// The 20-byte signature for the boot message (docs/protocol.md §4.3): zero unless
// `signedBoot` and the chip is of the BCM2835 family. Throws Errc::NotFound or
// Errc::Corrupt when bootcode.sig is missing or shorter than 20 bytes.
BootSignature bootSignatureFor(const FirmwareSet& firmware, const BoardContext& board,
                               bool signedBoot);

// Throws rpiboot::Error on failure (loader missing, ROM error, transfer
// failure, device gone mid-transfer, protocol violation).
StageOutcome runBootStage(Transport& transport, const DeviceIdentity& identity,
                          const FirmwareSet& firmware, const BoardContext& board,
                          const BootOptions& options, BootObserver* observer = nullptr);

}  // namespace rpiboot
