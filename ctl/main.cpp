// rpibootctl: the station operator's view of rpibootd (rpibootctl(1)).
#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "station_client.hpp"

#ifndef RPIBOOT_VERSION
#define RPIBOOT_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
    using namespace rpibootctl;
    const CtlOptions options = parseCtlOptions(argc, argv);
    if (!options.error.empty()) {
        std::fprintf(stderr, "rpibootctl: %s\n\n%s", options.error.c_str(), ctlUsage().c_str());
        return kExitUsage;
    }
    if (options.help) {
        std::fputs(ctlUsage().c_str(), stdout);
        return kExitOk;
    }
    if (options.version) {
        std::printf("rpibootctl %s\n", RPIBOOT_VERSION);
        return kExitOk;
    }
    try {
        return runCommand(options);
    } catch (const CtlError& e) {
        std::fprintf(stderr, "rpibootctl: %s\n", e.what());
        return e.exitCode();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rpibootctl: %s\n", e.what());
        return kExitFailed;
    }
}
