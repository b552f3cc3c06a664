// The one error type of the protocol engine.
//
// Every failure inside lib/ is reported by throwing rpiboot::Error with a
// category (Errc) and a message written for a station operator: what failed,
// on which file or board, and why. Callers catch it at the board boundary
// (one worker, one CLI session); nothing in lib/ exits the process.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace rpiboot {

enum class Errc {
    DeviceGone,       // the device left the bus (unplugged, reset, re-enumerating)
    Timeout,          // a transfer did not complete in time
    Stall,            // the device stalled an endpoint
    Io,               // any other USB or file I/O failure
    Protocol,         // the device said something the protocol does not allow
    NotFound,         // a file or device that was asked for does not exist
    Refused,          // a request was refused by a safety rule (path outside a root, ...)
    Corrupt,          // a container (tar, EEPROM image, signature) is malformed
    TooLarge,         // a size exceeds what the protocol or a limit allows
    InvalidArgument,  // a caller passed something unusable (bad option, bad config)
    Crypto,           // a signature or key operation failed
};

std::string_view toString(Errc code) noexcept;

// What an errno value means, in words ("No such file or directory"). Takes
// errno as the C library sets it or negated as sd-bus and sd-event return it.
std::string errnoText(int error);

class Error : public std::runtime_error {
  public:
    Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
    Errc code() const noexcept { return code_; }

  private:
    Errc code_;
};

}  // namespace rpiboot
