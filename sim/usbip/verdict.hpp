// Whether a virtual board did what its test meant: booted with every byte
// it received matching the expected hashes, or (when it was meant to fail,
// e.g. unplugged mid-file) failed. Pure: reads records, judges nothing else.
#pragma once

#include <string>
#include <vector>

#include "virtualpi/scenario.hpp"
#include "virtualpi/sim_board.hpp"

namespace usbip {

struct VerdictInput {
    const virtualpi::BoardRecord* record = nullptr;
    const virtualpi::Scenario* scenario = nullptr;
    bool expectFailure = false;
    // A received file (or the bootcode) without an expected hash counts as
    // unverified.
    bool requireHashes = false;
    // Problems of the attachment itself (attach refused, connection dropped).
    std::vector<std::string> attachProblems;
};

struct Verdict {
    bool passed = false;
    unsigned filesVerified = 0;  // files whose bytes matched an expected hash
    std::uint64_t bytesVerified = 0;
    std::vector<std::string> problems;
};

Verdict judgeBoard(const VerdictInput& input);

}  // namespace usbip
