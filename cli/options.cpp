#include "options.hpp"

#include <cctype>
#include <cstdlib>

namespace rpiboot::cli {
namespace {

bool isDigits(const std::string& text) {
    if (text.empty()) {
        return false;
    }
    for (char c : text) {
        if (!std::isdigit(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

// "-0" ... "-98": only the device on that port of its hub (upstream range).
std::optional<int> portNumberOption(const std::string& arg) {
    if (arg.size() < 2 || arg.size() > 3 || arg[0] != '-' || !isDigits(arg.substr(1))) {
        return std::nullopt;
    }
    const int n = std::atoi(arg.c_str() + 1);
    if (n > 98 || (arg.size() == 3 && arg[1] == '0')) {
        return std::nullopt;
    }
    return n;
}

}  // namespace

ParseResult parseOptions(const std::vector<std::string>& args) {
    ParseResult result;
    Options& o = result.options;
    auto fail = [&result](std::string message) {
        result.error = std::move(message);
        return result;
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        const bool hasNext = i + 1 < args.size();
        if (arg == "-d") {
            if (!hasNext) {
                return fail("-d needs a directory");
            }
            o.directory = args[++i];
        } else if (arg == "-o") {
            o.portOverlays = true;
        } else if (arg == "-l") {
            o.loop = true;
        } else if (arg == "-m") {
            if (!hasNext || !isDigits(args[i + 1])) {
                return fail("-m needs a delay in microseconds");
            }
            o.pollDelayUsec = std::atol(args[++i].c_str());
        } else if (arg == "-v") {
            o.verbosity = 1;
        } else if (arg == "-vv") {
            o.verbosity = 2;
        } else if (arg == "-V" || arg == "--version") {
            o.showVersion = true;
        } else if (arg == "-h" || arg == "--help") {
            o.showHelp = true;
        } else if (arg == "-s") {
            o.signedBoot = true;
        } else if (arg == "-p") {
            if (!hasNext) {
                return fail("-p needs a USB port path such as 1-1.3");
            }
            o.portPath = args[++i];
        } else if (arg == "-i") {
            if (!hasNext) {
                return fail("-i needs a serial number");
            }
            o.serial = args[++i];
        } else if (arg == "-j") {
            // Upstream: the directory is optional; taken only if the next
            // word does not look like an option.
            if (hasNext && !args[i + 1].empty() && args[i + 1][0] != '-') {
                o.metadataToFile = true;
                o.metadataDir = args[++i];
            }
        } else if (arg == "--bulk-transfers-in-flight") {
            if (!hasNext || !isDigits(args[i + 1]) || args[i + 1].size() > 2 ||
                std::atoi(args[i + 1].c_str()) < 1 || std::atoi(args[i + 1].c_str()) > 64) {
                return fail("--bulk-transfers-in-flight needs a number from 1 to 64");
            }
            o.bulkTransfersInFlight = static_cast<std::size_t>(std::atoi(args[++i].c_str()));
        } else if (auto port = portNumberOption(arg)) {
            o.portNumber = *port;
        } else {
            return fail("unknown option '" + arg + "'");
        }
    }
    if (o.portOverlays && o.directory.empty()) {
        return fail("-o needs -d: overlay folders live inside the boot directory");
    }
    if (o.pollDelayUsec <= 0) {
        return fail("-m needs a delay greater than 0");
    }
    if (o.portNumber && !o.portPath.empty()) {
        return fail("a port number (-N) and a port path (-p) cannot be used together");
    }
    return result;
}

std::string usageText(const std::string& program) {
    return "Usage: " + program + R"( [options]
Boots Raspberry Pi boards in USB boot mode (nRPIBOOT), one after another.

  -d DIR      serve boot files from DIR (default: the installed mass-storage firmware)
  -o          use per-port overlay folders DIR/<port path>/ (needs -d)
  -l          keep going: serve every board that appears, forever
  -m USEC     delay between bus scans where USB hotplug is unavailable (default 500)
  -v, -vv     verbose, very verbose
  -V          print the version and exit
  -s          signed boot (BCM2835/2837): send bootcode.sig with the loader
  -0 ... -98  only the board on that port number of its hub
  -p PATH     only the board at that USB port path, e.g. 1-1.3 (not with -N)
  -i SERIAL   only the board with that serial number
  -j [DIR]    write board metadata as DIR/<serial>.json (stdout without DIR)
  -h          this help

Exit status: 0 when the board completed its second stage, 1 on a failure,
255 on a usage error.
)";
}

}  // namespace rpiboot::cli
