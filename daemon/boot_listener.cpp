#include "boot_listener.hpp"

namespace rpibootd {

const char* failureClassName(FailureClass reason) noexcept {
    switch (reason) {
        case FailureClass::Stall:
            return "stall";
        case FailureClass::Timeout:
            return "timeout";
        case FailureClass::DeviceGone:
            return "device_gone";
        case FailureClass::Deadline:
            return "deadline";
        case FailureClass::Firmware:
            return "firmware";
        case FailureClass::Protocol:
            return "protocol";
        case FailureClass::Io:
            return "io";
    }
    return "io";
}

FailureClass classifyFailure(rpiboot::Errc code) noexcept {
    using rpiboot::Errc;
    switch (code) {
        case Errc::Stall:
            return FailureClass::Stall;
        case Errc::Timeout:
            return FailureClass::Timeout;
        case Errc::DeviceGone:
            return FailureClass::DeviceGone;
        case Errc::NotFound:
        case Errc::Corrupt:
        case Errc::TooLarge:
        case Errc::Crypto:
        case Errc::InvalidArgument:
            return FailureClass::Firmware;
        case Errc::Protocol:
        case Errc::Refused:
            return FailureClass::Protocol;
        case Errc::Io:
            return FailureClass::Io;
    }
    return FailureClass::Io;
}

bool isTransient(FailureClass reason) noexcept {
    return reason == FailureClass::Stall || reason == FailureClass::Timeout ||
           reason == FailureClass::DeviceGone;
}

}  // namespace rpibootd
