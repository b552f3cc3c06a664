// The shared shell of the signing tools: turns an rpiboot::Error or a usage
// mistake into one line on stderr and an exit status. Only tools' main()
// functions use it; the library never exits.
#pragma once

#include <exception>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>

#include "rpiboot/core/error.hpp"

namespace rpiboot::tools {

// A mistake in the command line: printed with a pointer to --help, exit status 2.
class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

inline int runTool(const char* name, const std::function<int()>& body) {
    try {
        return body();
    } catch (const UsageError& e) {
        std::cerr << name << ": " << e.what() << "\n"
                  << "Try '" << name << " -h' for help.\n";
        return kExitUsage;
    } catch (const Error& e) {
        std::cerr << name << ": " << e.what() << "\n";
        return kExitFailure;
    } catch (const std::exception& e) {
        std::cerr << name << ": " << e.what() << "\n";
        return kExitFailure;
    }
}

inline std::string textOf(const std::vector<std::uint8_t>& bytes) {
    return std::string(bytes.begin(), bytes.end());
}

}  // namespace rpiboot::tools
