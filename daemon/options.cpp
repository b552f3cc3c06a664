#include "options.hpp"

#include <getopt.h>

#include <exception>
#include <string>

namespace rpibootd {

namespace {

enum LongOnly : int {
    kBus = 1000,
    kVirtual,
    kVirtualControl,
    kNoUdev,
    kFirmwareDir,
    kProfilesDir,
    kExitWhenDone,
    kCheckConfig,
    kBulkInFlight,
};

}  // namespace

std::string usageText() {
    return "Usage: rpibootd [OPTIONS]\n"
           "Boots Raspberry Pi boards attached over USB (boot ROM and second stage).\n"
           "\n"
           "  -c, --config FILE      daemon configuration (default " +
           std::string(kDefaultConfigFile) +
           ";\n"
           "                         built-in defaults when that file is absent)\n"
           "      --bus BUS          D-Bus to serve on: system (default), session, an\n"
           "                         address such as unix:path=/run/x, or none\n"
           "  -v, --verbose          more detail (repeat for even more)\n"
           "      --virtual SPEC     attach virtual boards, e.g. 2711:4,2712:2,2837:2 or\n"
           "                         CHIP:COUNT:PROFILE or a scenario file PATH.json[:COUNT]\n"
           "      --virtual-control SOCKET\n"
           "                         plug and unplug virtual boards at run time through\n"
           "                         this Unix socket (commands: plug, unplug, ports,\n"
           "                         record, help; see rpibootd(8))\n"
           "      --no-udev          do not watch real USB devices\n"
           "      --firmware-dir DIR firmware base directory (overrides firmware_dir)\n"
           "      --profiles-dir DIR extra profile directory (overrides profiles_dir)\n"
           "      --exit-when-done   exit when every virtual board has finished\n"
           "                         (status 0 if all booted, 1 otherwise)\n"
           "      --check-config     validate the configuration and profiles, then exit\n"
           "  -V, --version          print the version and exit\n"
           "  -h, --help             print this help and exit\n"
           "\n"
           "Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT stop the daemon.\n";
}

ParsedOptions parseOptions(int argc, char** argv) {
    static const option kOptions[] = {
        {"config", required_argument, nullptr, 'c'},
        {"bus", required_argument, nullptr, kBus},
        {"verbose", no_argument, nullptr, 'v'},
        {"virtual", required_argument, nullptr, kVirtual},
        {"virtual-control", required_argument, nullptr, kVirtualControl},
        {"no-udev", no_argument, nullptr, kNoUdev},
        {"firmware-dir", required_argument, nullptr, kFirmwareDir},
        {"profiles-dir", required_argument, nullptr, kProfilesDir},
        {"exit-when-done", no_argument, nullptr, kExitWhenDone},
        {"check-config", no_argument, nullptr, kCheckConfig},
        // Not in --help: for benchmarks comparing against one transfer in flight.
        {"bulk-transfers-in-flight", required_argument, nullptr, kBulkInFlight},
        {"version", no_argument, nullptr, 'V'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    ParsedOptions parsed;
    DaemonOptions& o = parsed.options;
    optind = 0;  // full re-initialisation, so tests can parse more than once
    opterr = 0;
    while (true) {
        const int c = getopt_long(argc, argv, ":c:vVh", kOptions, nullptr);
        if (c == -1) {
            break;
        }
        switch (c) {
            case 'c':
                o.configFile = optarg;
                o.configGiven = true;
                break;
            case kBus:
                o.bus = optarg;
                if (o.bus.empty()) {
                    parsed.error = "--bus needs system, session, none or a D-Bus address";
                    return parsed;
                }
                break;
            case 'v':
                ++o.verbosity;
                break;
            case kVirtual:
                o.virtualSpecs.emplace_back(optarg);
                break;
            case kVirtualControl:
                if (*optarg == '\0') {
                    parsed.error = "--virtual-control needs a socket path";
                    return parsed;
                }
                o.virtualControl = optarg;
                break;
            case kNoUdev:
                o.udev = false;
                break;
            case kFirmwareDir:
                o.firmwareDir = optarg;
                break;
            case kProfilesDir:
                o.profilesDir = optarg;
                break;
            case kExitWhenDone:
                o.exitWhenDone = true;
                break;
            case kCheckConfig:
                o.checkConfig = true;
                break;
            case kBulkInFlight: {
                const std::string text = optarg;
                std::size_t n = 0;
                std::size_t used = 0;
                try {
                    n = std::stoul(text, &used);
                } catch (const std::exception&) {
                    used = 0;
                }
                if (used != text.size() || n < 1 || n > 64) {
                    parsed.error = "--bulk-transfers-in-flight needs a number from 1 to 64";
                    return parsed;
                }
                o.bulkTransfersInFlight = n;
                break;
            }
            case 'V':
                o.showVersion = true;
                break;
            case 'h':
                o.showHelp = true;
                break;
            case ':':
                parsed.error = std::string("option ") + argv[optind - 1] + " needs a value";
                return parsed;
            default:
                parsed.error = std::string("unknown option ") + argv[optind - 1];
                return parsed;
        }
    }
    if (optind < argc) {
        parsed.error = std::string("unexpected argument \"") + argv[optind] + "\"";
        return parsed;
    }
    if (o.exitWhenDone && o.virtualSpecs.empty()) {
        parsed.error = "--exit-when-done needs --virtual boards to wait for";
        return parsed;
    }
    if (!o.udev && o.virtualSpecs.empty() && !o.virtualControl && !o.checkConfig) {
        parsed.error = "--no-udev without --virtual or --virtual-control leaves nothing to boot";
        return parsed;
    }
    return parsed;
}

}  // namespace rpibootd
