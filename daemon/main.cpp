// rpibootd: the entry point. Parses the command line and hands over to the daemon.
#include <cstdio>

#include "daemon.hpp"
#include "options.hpp"

#ifndef RPIBOOT_VERSION
#define RPIBOOT_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
    const rpibootd::ParsedOptions parsed = rpibootd::parseOptions(argc, argv);
    if (!parsed.error.empty()) {
        std::fprintf(stderr, "rpibootd: %s\n%s", parsed.error.c_str(),
                     "Try 'rpibootd --help' for more information.\n");
        return 2;
    }
    const rpibootd::DaemonOptions& options = parsed.options;
    if (options.showHelp) {
        std::fputs(rpibootd::usageText().c_str(), stdout);
        return 0;
    }
    if (options.showVersion) {
        std::printf("rpibootd %s\n", RPIBOOT_VERSION);
        return 0;
    }
    if (options.checkConfig) {
        return rpibootd::checkConfiguration(options);
    }
    return rpibootd::runDaemon(options);
}
