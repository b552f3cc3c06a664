// What the board registry tells observers of whole boots (the metrics file).
//
// A boot is one board's way from its first attempt to a verdict; retries of
// a transient failure belong to the same boot. Called on the main loop only,
// after the registry has published the change; a listener must not call back
// into the registry and must not block.
#pragma once

#include <cstdint>

#include "board_status.hpp"
#include "rpiboot/core/error.hpp"

namespace rpibootd {

// Why an attempt failed, in classes a station operator acts on.
enum class FailureClass {
    Stall,       // the board stalled an endpoint
    Timeout,     // a transfer or the re-enumeration took too long
    DeviceGone,  // the board left the bus
    Deadline,    // the whole boot took longer than the profile allows
    Firmware,    // a file it asked for is missing or its profile cannot serve
    Protocol,    // the board broke the protocol or a safety rule refused it
    Io,          // any other USB or file I/O failure
};

inline constexpr FailureClass kAllFailureClasses[] = {
    FailureClass::Stall,    FailureClass::Timeout,  FailureClass::DeviceGone,
    FailureClass::Deadline, FailureClass::Firmware, FailureClass::Protocol,
    FailureClass::Io,
};

// "stall", "timeout", "device_gone", "deadline", "firmware", "protocol", "io"
const char* failureClassName(FailureClass reason) noexcept;
FailureClass classifyFailure(rpiboot::Errc code) noexcept;
// Stall, timeout and a vanished board may go away on their own: retried.
bool isTransient(FailureClass reason) noexcept;

class BootListener {
  public:
    virtual ~BootListener() = default;
    // The first attempt of a boot began.
    virtual void bootStarted(const BoardStatus& board) = 0;
    // One attempt failed (retried or not).
    virtual void attemptFailed(const BoardStatus& board, FailureClass reason) = 0;
    // The boot ended: once per boot, after its last attempt.
    virtual void bootFinished(const BoardStatus& board, bool success, FailureClass reason,
                              double seconds) = 0;
    // A file went out in full.
    virtual void bytesServed(std::uint64_t bytes) = 0;
    // A storage step wrote this many bytes of an image (whatever its outcome).
    virtual void bytesWritten(std::uint64_t /*bytes*/) {}
    // A board's stage changed, or a board came or went.
    virtual void boardsChanged() = 0;
};

}  // namespace rpibootd
