#include "rpiboot/core/error.hpp"

#include <cstdlib>
#include <system_error>

namespace rpiboot {

std::string_view toString(Errc code) noexcept {
    switch (code) {
        case Errc::DeviceGone:
            return "device gone";
        case Errc::Timeout:
            return "timeout";
        case Errc::Stall:
            return "stall";
        case Errc::Io:
            return "I/O error";
        case Errc::Protocol:
            return "protocol error";
        case Errc::NotFound:
            return "not found";
        case Errc::Refused:
            return "refused";
        case Errc::Corrupt:
            return "corrupt";
        case Errc::TooLarge:
            return "too large";
        case Errc::InvalidArgument:
            return "invalid argument";
        case Errc::Crypto:
            return "crypto error";
    }
    return "unknown error";
}

std::string errnoText(int error) {
    return std::generic_category().message(std::abs(error));
}

}  // namespace rpiboot
