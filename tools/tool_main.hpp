// The shared shell of the signing tools: turns an rpiboot::Error or a usage
// mistake into one line on stderr and an exit status. Only tools' main()
// functions use it; the library never exits.
#pragma once

#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/hsm_signer.hpp"
#include "rpiboot/signing/pkcs11_signer.hpp"

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

// The PKCS#11 module for `pkcs11:` keys: the tool's option, else the
// RPIBOOT_PKCS11_MODULE environment variable.
inline std::string pkcs11Module(const std::string& option) {
    if (!option.empty()) {
        return option;
    }
    const char* env = std::getenv("RPIBOOT_PKCS11_MODULE");
    return env != nullptr ? env : "";
}

// The signer of `-k KEY` (PEM file or pkcs11: URI) or `-H WRAPPER`; nullptr if neither.
inline std::unique_ptr<Signer> openSigner(const std::string& key, const std::string& hsm,
                                          const std::string& module) {
    if (!key.empty()) {
        if (isPkcs11Uri(key) && pkcs11Module(module).empty()) {
            throw UsageError(
                "a pkcs11: key needs its PKCS#11 module: give -P MODULE.so or set "
                "RPIBOOT_PKCS11_MODULE");
        }
        return openSigningKey(key, pkcs11Module(module));
    }
    if (!hsm.empty()) {
        return std::make_unique<HsmSigner>(hsm);
    }
    return nullptr;
}

inline std::string textOf(const std::vector<std::uint8_t>& bytes) {
    return std::string(bytes.begin(), bytes.end());
}

}  // namespace rpiboot::tools
