// rpiboot: boot Raspberry Pi boards over USB from the command line, with the
// options of the tool it replaces. Built on the same library as rpibootd.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "libusb_waiter.hpp"
#include "options.hpp"
#include "rpiboot/core/error.hpp"
#include "runner.hpp"

int main(int argc, char** argv) {
    using namespace rpiboot::cli;
    const std::vector<std::string> args(argv + 1, argv + argc);
    const std::string program = "rpiboot";
    ParseResult parsed = parseOptions(args);
    if (!parsed.error.empty()) {
        std::cerr << program << ": " << parsed.error << "\n" << usageText(program);
        return 255;
    }
    const Options& options = parsed.options;
    if (options.showHelp) {
        std::cout << usageText(program);
        return 0;
    }
    std::cout << "RPIBOOT: rpibootd " << RPIBOOT_VERSION << "\n";
    if (options.showVersion) {
        return 0;
    }
    std::cout.setf(std::ios::unitbuf);
    const char* envDir = std::getenv("RPIBOOT_FIRMWARE_DIR");
    const std::string firmwareDir = envDir != nullptr ? envDir : RPIBOOT_DEFAULT_FIRMWARE_DIR;
    try {
        LibusbWaiter waiter(options.verbosity >= 2   ? 3
                            : options.verbosity >= 1 ? 2
                                                     : 0,
                            options.pollDelayUsec);
        Runner runner(options, firmwareDir, waiter, std::cout, std::cerr);
        if (std::string problem = runner.checkDirectory(); !problem.empty()) {
            std::cerr << program << ": " << problem << "\n" << usageText(program);
            return 255;
        }
        std::cout << "Fit the nRPIBOOT / EMMC_DISABLE jumper (or hold the boot button) and connect "
                     "the board's USB device port to this host.\n";
        return runner.run();
    } catch (const rpiboot::Error& e) {
        std::cerr << program << ": " << e.what() << "\n";
        return 1;
    }
}
