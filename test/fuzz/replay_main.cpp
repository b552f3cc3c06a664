// The fuzz regression runner (ctest `fuzz_regressions`): replays every file
// of test/fuzz/corpus/<target>/ and test/fuzz/regressions/<target>/ once
// through its target, without libFuzzer, so the normal build checks that no
// input that ever crashed (and no seed) crashes again.
//
// A crashing input aborts the run; the signal handler names the file first.
// Usage: fuzz_replay <test/fuzz directory> [target...]
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_support.hpp"

namespace {

namespace fs = std::filesystem;

struct Target {
    const char* name;
    int (*run)(const std::uint8_t*, std::size_t);
};

constexpr Target kTargets[] = {
    {"file_request", rpiboot::fuzz::fileRequestOne},
    {"file_server", rpiboot::fuzz::fileServerOne},
    {"tar_archive", rpiboot::fuzz::tarArchiveOne},
    {"name_resolution", rpiboot::fuzz::nameResolutionOne},
    {"metadata", rpiboot::fuzz::metadataOne},
    {"profile_config", rpiboot::fuzz::profileConfigOne},
};

// The input being replayed, for the crash handler (which may only call
// async-signal-safe functions, hence a fixed buffer and write()).
char currentInput[4096];

void onCrash(int signal) {
    static constexpr char kPrefix[] = "\nfuzz_regressions: crashed on input ";
    (void)!::write(STDERR_FILENO, kPrefix, sizeof kPrefix - 1);
    (void)!::write(STDERR_FILENO, currentInput, std::strlen(currentInput));
    (void)!::write(STDERR_FILENO, "\n", 1);
    std::signal(signal, SIG_DFL);
    std::raise(signal);
}

std::vector<fs::path> inputsIn(const fs::path& dir) {
    std::vector<fs::path> files;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        return files;
    }
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        if (entry.is_regular_file() && entry.path().filename().string().front() != '.') {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::vector<std::uint8_t> readAll(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: fuzz_replay <test/fuzz directory> [target...]\n";
        return 2;
    }
    const fs::path base = argv[1];
    const std::vector<std::string> only(argv + 2, argv + argc);
    for (const int signal : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
        std::signal(signal, onCrash);
    }

    std::size_t passed = 0;
    std::size_t targetsRun = 0;
    for (const Target& target : kTargets) {
        if (!only.empty() && std::find(only.begin(), only.end(), target.name) == only.end()) {
            continue;
        }
        ++targetsRun;
        std::size_t count = 0;
        for (const char* kind : {"corpus", "regressions"}) {
            for (const fs::path& file : inputsIn(base / kind / target.name)) {
                const std::string shown = file.string();
                std::snprintf(currentInput, sizeof currentInput, "%s", shown.c_str());
                const std::vector<std::uint8_t> bytes = readAll(file);
                target.run(bytes.data(), bytes.size());
                ++count;
            }
        }
        std::cout << "fuzz_regressions: " << target.name << ": " << count
                  << " inputs replayed without a crash" << std::endl;
        if (count == 0) {
            std::cout << "fuzz_regressions: " << target.name << " has no inputs (corpus missing?)"
                      << std::endl;
            std::cout << passed << " passed, 1 failed\n";
            return 1;
        }
        passed += count;
    }
    if (targetsRun == 0) {
        std::cerr << "fuzz_regressions: no such target\n";
        return 2;
    }
    std::cout << passed << " passed, 0 failed\n";
    return 0;
}
