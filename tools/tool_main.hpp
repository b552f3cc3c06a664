// The shared shell of the signing tools: turns an rpiboot::Error or a usage
// mistake into one line on stderr and an exit status. Only tools' main()
// functions use it; the library never exits.
#pragma once

#include <getopt.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/bytes_io.hpp"
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

// The whole run of a tool: parse the command line, print the help if asked
// for it, else do the work; errors become one line on stderr and a status.
template <class Options>
int runTool(const char* name, int argc, char** argv, Options (*parse)(int, char**), void (*usage)(),
            int (*body)(const Options&)) {
    return runTool(name, [&] {
        const Options options = parse(argc, argv);
        if (options.help) {
            usage();
            return 0;
        }
        return body(options);
    });
}

// getopt()'s ':' (an option without its value) or '?' (an unknown option) as
// a UsageError naming the option letter.
[[noreturn]] inline void badShortOption(int c) {
    if (c == ':') {
        throw UsageError(std::string("option -") + static_cast<char>(optopt) + " needs a value");
    }
    throw UsageError(std::string("unknown option -") + static_cast<char>(optopt));
}

// The same for getopt_long(), naming the option as it was typed.
[[noreturn]] inline void badLongOption(int c, char** argv) {
    if (c == ':') {
        throw UsageError(std::string("option ") + argv[optind - 1] + " needs a value");
    }
    throw UsageError(std::string("unknown option ") + argv[optind - 1]);
}

// After the options: a tool that takes no operands.
inline void noOperands(int argc, char** argv) {
    if (optind < argc) {
        throw UsageError(std::string("unexpected argument '") + argv[optind] + "'");
    }
}

// After the options: a tool that takes exactly one operand, `what` (e.g. "key").
inline std::string oneOperand(int argc, char** argv, std::string_view what) {
    if (optind + 1 != argc) {
        throw UsageError(optind == argc ? "no " + std::string(what) + " given"
                                        : "give exactly one " + std::string(what));
    }
    return argv[optind];
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

// The signer options shared by the signing tools: -k KEY, -P MODULE, -H WRAPPER.
struct SignerOptions {
    std::string key;
    std::string module;
    std::string hsm;

    // Takes getopt()'s option `c` if it is one of these; false otherwise.
    bool take(int c, const char* value) {
        switch (c) {
            case 'k':
                key = value;
                return true;
            case 'P':
                module = value;
                return true;
            case 'H':
                hsm = value;
                return true;
            default:
                return false;
        }
    }

    std::unique_ptr<Signer> open() const { return openSigner(key, hsm, module); }
};

inline void writeText(const std::filesystem::path& path, std::string_view text) {
    writeFileBytes(path, ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

inline std::string textOf(const std::vector<std::uint8_t>& bytes) {
    return std::string(bytes.begin(), bytes.end());
}

}  // namespace rpiboot::tools
