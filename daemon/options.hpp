// rpibootd's command line.
//
// Turns argv into DaemonOptions, or says plainly what is wrong with it. No
// side effects: it neither reads the configuration nor opens anything.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rpibootd {

inline constexpr const char* kDefaultConfigFile = "/etc/rpibootd/rpibootd.json";

struct DaemonOptions {
    std::filesystem::path configFile = kDefaultConfigFile;
    bool configGiven = false;  // -c: the file must exist
    // "system", "session", a D-Bus address, or "none" (no D-Bus at all).
    std::string bus = "system";
    int verbosity = 0;
    std::vector<std::string> virtualSpecs;
    // --virtual-control: a socket to plug/unplug virtual boards at run time.
    std::optional<std::filesystem::path> virtualControl;
    bool udev = true;
    std::optional<std::filesystem::path> firmwareDir;
    std::optional<std::filesystem::path> profilesDir;
    // Exit once every virtual board has finished (0: all booted, 1: some failed).
    bool exitWhenDone = false;
    bool checkConfig = false;  // validate the configuration and exit
    // Hidden --bulk-transfers-in-flight N: bulk OUT transfers queued per board.
    std::optional<std::size_t> bulkTransfersInFlight;
    bool showHelp = false;
    bool showVersion = false;
};

struct ParsedOptions {
    DaemonOptions options;
    std::string error;  // non-empty: the command line is unusable
};

ParsedOptions parseOptions(int argc, char** argv);
std::string usageText();

}  // namespace rpibootd
