// The commands of rpibootctl (rpibootctl(1)): each one reads or asks
// rpibootd over D-Bus through StationClient and prints for people or scripts.
//
// They never poll the daemon: watch and wait follow its signals. Each returns
// the process exit status and throws CtlError for what the operator must fix.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace rpibootctl {

struct CtlOptions {
    std::string bus = "system";
    std::string command;
    std::vector<std::string> args;
    bool json = false;
    bool plain = false;                // watch: plain lines even on a terminal
    std::optional<double> timeoutSec;  // wait
    bool help = false;
    bool version = false;
    std::string error;  // non-empty: unusable command line
};

CtlOptions parseCtlOptions(int argc, char** argv);
std::string ctlUsage();

// Runs the command; the exit status.
int runCommand(const CtlOptions& options);

}  // namespace rpibootctl
