// rpibootd_soak: boots virtual BCM2711 boards through the real rpibootd
// process for a long time (live_daemon.hpp: --virtual-control on a private
// D-Bus): SEQUENTIAL boots one after the other on one port, then ROUNDS
// rounds of 8 boards at once on 8 ports. Each board is plugged, waited for
// (its BootFinished signal) and unplugged. Prints the daemon's file
// descriptors, threads and RSS at the start (after one warm-up boot and
// round) and at the end; exit status 1 when a boot failed or descriptors,
// threads or RSS grew, 2 on bad arguments.
//
// With --valgrind the daemon runs under memcheck (leaks and errors make it
// exit non-zero, which fails the soak; RSS is then valgrind's and not judged).
//
// Usage: rpibootd_soak [--sequential N] [--rounds N] [--valgrind]
//        (default 1000 and 200)
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "rpiboot_test/live_daemon.hpp"

namespace {

using rpiboot::test::describe;
using rpiboot::test::LiveDaemon;
using rpiboot::test::ProcFigures;

// RSS moves with the allocator; a real leak of a board's state per boot
// shows as megabytes over a thousand boots.
constexpr long kRssSlackKiB = 8192;

const std::vector<std::string> kMemcheck = {
    "valgrind",
    "--error-exitcode=1",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite,indirect,possible",
    "--show-leak-kinds=definite,indirect,possible",
    "--num-callers=30",
};

int soak(unsigned sequential, unsigned rounds, bool valgrind) {
    rpiboot::test::ScratchDir work;
    LiveDaemon daemon(work.path(), rpiboot::test::kMsdDaemonConfig, {},
                      valgrind ? kMemcheck : std::vector<std::string>{});
    std::map<std::string, unsigned> booted;
    auto bootOnce = [&](const std::vector<std::string>& ports) {
        for (const auto& port : ports) {
            daemon.plug("2711", port);
        }
        for (const auto& port : ports) {
            daemon.waitSucceeded(port, ++booted[port]);
            daemon.unplug(port);
        }
    };
    const std::vector<std::string> eight = {"2-1", "2-2", "2-3", "2-4", "2-5", "2-6", "2-7", "2-8"};
    bootOnce({"1-1"});  // warm-up: caches, first allocations, D-Bus objects
    bootOnce(eight);
    // Workers end just after they publish; wait for the last ones.
    const ProcFigures start = daemon.settledFigures({0, 0, 0}, std::chrono::milliseconds(300));
    std::cout << "rpibootd pid " << daemon.process().pid() << "\nstart: " << describe(start)
              << std::endl;
    const auto began = std::chrono::steady_clock::now();
    for (unsigned i = 0; i < sequential; ++i) {
        bootOnce({"1-1"});
        if ((i + 1) % 250 == 0) {
            std::cout << "  " << (i + 1) << " sequential boots: " << describe(daemon.figures())
                      << std::endl;
        }
    }
    const auto sequentialDone = std::chrono::steady_clock::now();
    for (unsigned i = 0; i < rounds; ++i) {
        bootOnce(eight);
        if ((i + 1) % 50 == 0) {
            std::cout << "  " << (i + 1) << " rounds of 8: " << describe(daemon.figures())
                      << std::endl;
        }
    }
    const auto finished = std::chrono::steady_clock::now();
    const ProcFigures end = daemon.settledFigures(start);
    const auto seconds = [](auto from, auto to) {
        return std::chrono::duration<double>(to - from).count();
    };
    std::cout << "end:   " << describe(end) << "\n"
              << sequential << " sequential boots in " << seconds(began, sequentialDone) << " s, "
              << rounds << " rounds of 8 in " << seconds(sequentialDone, finished) << " s; "
              << daemon.totalFinished() << " boots in all, every one successful\n";
    bool ok = true;
    if (!daemon.process().running()) {
        std::cout << "FAIL: rpibootd is no longer running\n";
        ok = false;
    }
    if (end.fds > start.fds) {
        std::cout << "FAIL: file descriptors grew\n";
        ok = false;
    }
    if (end.threads > start.threads) {
        std::cout << "FAIL: threads grew\n";
        ok = false;
    }
    if (!valgrind && end.rssKiB > start.rssKiB + kRssSlackKiB) {
        std::cout << "FAIL: RSS grew by more than " << kRssSlackKiB / 1024 << " MiB\n";
        ok = false;
    }
    const int status = daemon.process().stop();
    if (status != 0) {
        std::cout << "FAIL: rpibootd exited with " << status << " on SIGTERM"
                  << (valgrind ? " (memcheck found errors or leaks)" : "") << "; its log:\n"
                  << LiveDaemon::tail(daemon.process().log(), 20000) << "\n";
        ok = false;
    }
    if (valgrind) {
        // memcheck's own verdict, from the daemon's output.
        std::istringstream log(daemon.process().log());
        for (std::string line; std::getline(log, line);) {
            if (line.find("ERROR SUMMARY") != std::string::npos ||
                line.find("heap blocks") != std::string::npos ||
                line.find("total heap usage") != std::string::npos) {
                std::cout << line << "\n";
            }
        }
    }
    std::cout << (ok ? "soak: no growth\n" : "soak: growth found\n");
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    unsigned sequential = 1000;
    unsigned rounds = 200;
    bool valgrind = false;
    for (int i = 1; i < argc; ++i) {
        const bool hasValue = i + 1 < argc;
        if (std::strcmp(argv[i], "--sequential") == 0 && hasValue) {
            sequential = static_cast<unsigned>(std::stoul(argv[++i]));
        } else if (std::strcmp(argv[i], "--rounds") == 0 && hasValue) {
            rounds = static_cast<unsigned>(std::stoul(argv[++i]));
        } else if (std::strcmp(argv[i], "--valgrind") == 0) {
            valgrind = true;
        } else {
            std::cerr << "usage: rpibootd_soak [--sequential N] [--rounds N] [--valgrind]\n";
            return 2;
        }
    }
    try {
        return soak(sequential, rounds, valgrind);
    } catch (const std::exception& e) {
        std::cout << "FAIL: " << e.what() << "\n";
        return 1;
    }
}
