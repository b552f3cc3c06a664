// rpibootd_soak: boots virtual BCM2711 boards through the daemon's
// machinery (machinery.hpp) for a long time: SEQUENTIAL boots one after the
// other on one port, then ROUNDS rounds of 8 boards at once on 8 ports.
// Prints this process's file descriptors, threads and RSS at the start
// (after one warm-up boot and round) and at the end; exit status 1 when a
// boot failed or descriptors or threads grew, 2 on bad arguments.
//
// Usage: rpibootd_soak [--sequential N] [--rounds N]   (default 1000 and 200)
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "machinery.hpp"

namespace {

using rpibootd::faults::describe;
using rpibootd::faults::healthy2711;
using rpibootd::faults::Machinery;
using rpibootd::faults::procFigures;
using rpibootd::faults::ProcFigures;

void waitForSuccesses(rpibootd::faults::WatchingSink& sink, const std::string& port,
                      unsigned count) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    while (sink.port(port).succeeded < count) {
        if (sink.port(port).finished > sink.port(port).succeeded) {
            throw std::runtime_error("boot on " + port + " failed: " + sink.port(port).lastMessage);
        }
        if (std::chrono::steady_clock::now() > end) {
            throw std::runtime_error("boot on " + port + " did not finish within 2 minutes");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

int soak(unsigned sequential, unsigned rounds) {
    rpibootd::faults::FirmwareTree firmware;
    Machinery machinery(firmware.path());
    ProcFigures start, end;
    const auto began = std::chrono::steady_clock::now();
    const int status =
        machinery.run([&](virtualpi::VirtualBus& bus, rpibootd::faults::WatchingSink& sink) {
            std::map<std::string, unsigned> booted;
            auto bootOnce = [&](const std::vector<std::string>& ports) {
                for (const auto& port : ports) {
                    bus.plug(healthy2711(port));
                }
                for (const auto& port : ports) {
                    waitForSuccesses(sink, port, ++booted[port]);
                    bus.unplug(port);
                }
            };
            const std::vector<std::string> eight = {"2-1", "2-2", "2-3", "2-4",
                                                    "2-5", "2-6", "2-7", "2-8"};
            bootOnce({"1-1"});  // warm-up: caches, first allocations
            bootOnce(eight);
            start = procFigures();
            std::cout << "start: " << describe(start) << std::endl;
            for (unsigned i = 0; i < sequential; ++i) {
                bootOnce({"1-1"});
                if ((i + 1) % 250 == 0) {
                    std::cout << "  " << (i + 1) << " sequential boots: " << describe(procFigures())
                              << std::endl;
                }
            }
            for (unsigned i = 0; i < rounds; ++i) {
                bootOnce(eight);
                if ((i + 1) % 50 == 0) {
                    std::cout << "  " << (i + 1) << " rounds of 8: " << describe(procFigures())
                              << std::endl;
                }
            }
            end = procFigures();
        });
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began);
    std::cout << "end:   " << describe(end) << "\n"
              << sequential << " sequential boots and " << rounds << " rounds of 8 boots ("
              << machinery.sink().total() << " boots in all) in " << seconds.count() << " s\n";
    if (status != 0) {
        std::cout << "FAIL: the loop stopped on its safety limit\n";
        return 1;
    }
    bool ok = true;
    if (end.fds > start.fds) {
        std::cout << "FAIL: file descriptors grew\n";
        ok = false;
    }
    if (end.threads > start.threads) {
        std::cout << "FAIL: threads grew\n";
        ok = false;
    }
    // RSS moves with the allocator; a real leak of a board's state per boot
    // shows as megabytes over a thousand boots.
    if (end.rssKiB > start.rssKiB + 8192) {
        std::cout << "FAIL: RSS grew by more than 8 MiB\n";
        ok = false;
    }
    std::cout << (ok ? "soak: no growth\n" : "soak: growth found\n");
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    unsigned sequential = 1000;
    unsigned rounds = 200;
    for (int i = 1; i < argc; ++i) {
        const bool hasValue = i + 1 < argc;
        if (std::strcmp(argv[i], "--sequential") == 0 && hasValue) {
            sequential = static_cast<unsigned>(std::stoul(argv[++i]));
        } else if (std::strcmp(argv[i], "--rounds") == 0 && hasValue) {
            rounds = static_cast<unsigned>(std::stoul(argv[++i]));
        } else {
            std::cerr << "usage: rpibootd_soak [--sequential N] [--rounds N]\n";
            return 2;
        }
    }
    try {
        return soak(sequential, rounds);
    } catch (const std::exception& e) {
        std::cout << "FAIL: " << e.what() << "\n";
        return 1;
    }
}
