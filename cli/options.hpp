// Command-line options of `rpiboot`, accepted as upstream's tool accepts them
// (docs/protocol.md §13) so people can switch without changing scripts.
// Parsing only: no I/O besides what the caller prints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rpiboot::cli {

struct Options {
    std::string directory;          // -d DIR
    bool portOverlays = false;      // -o
    bool loop = false;              // -l
    long pollDelayUsec = 500;       // -m USEC (only used where hotplug is unavailable)
    int verbosity = 0;              // -v = 1, -vv = 2
    bool signedBoot = false;        // -s
    std::optional<int> portNumber;  // -0 ... -98
    std::string portPath;           // -p PATH
    std::string serial;             // -i SERIAL
    bool metadataToFile = false;    // -j given with a DIR
    std::string metadataDir;        // -j DIR
    bool showHelp = false;          // -h / --help
    bool showVersion = false;       // -V / --version
    // --bulk-transfers-in-flight N (not in the help): bulk OUT transfers
    // queued per board; 1 for the one-at-a-time reference in benchmarks.
    std::optional<std::size_t> bulkTransfersInFlight;
};

struct ParseResult {
    Options options;
    std::string error;  // non-empty: a usage error (print usage to stderr, exit 255)
};

ParseResult parseOptions(const std::vector<std::string>& args);
std::string usageText(const std::string& program);

}  // namespace rpiboot::cli
