#include "verdict.hpp"

namespace usbip {

Verdict judgeBoard(const VerdictInput& in) {
    Verdict v;
    const virtualpi::BoardRecord& r = *in.record;
    v.problems = in.attachProblems;
    if (in.expectFailure) {
        if (r.outcome != virtualpi::Outcome::Failed) {
            v.problems.push_back(std::string("the board was meant to fail but ended ") +
                                 virtualpi::outcomeName(r.outcome));
        }
        v.passed = v.problems.empty();
        return v;
    }
    if (r.outcome != virtualpi::Outcome::Succeeded) {
        v.problems.push_back(std::string("the board ended ") + virtualpi::outcomeName(r.outcome) +
                             (r.reason.empty() ? "" : ": " + r.reason));
    }
    for (const virtualpi::RomAttempt& a : r.romAttempts) {
        if (!a.accepted) {
            continue;
        }
        if (in.requireHashes && !in.scenario->rom.bootcodeSha256) {
            v.problems.push_back("no expected hash for the bootcode " +
                                 in.scenario->rom.bootcodeName + " (" +
                                 std::to_string(a.bootcodeLength) + " bytes unchecked)");
        } else if (in.scenario->rom.bootcodeSha256) {
            if (a.bootcodeSha256 == *in.scenario->rom.bootcodeSha256) {
                ++v.filesVerified;
                v.bytesVerified += a.bootcodeLength;
            } else {
                v.problems.push_back(in.scenario->rom.bootcodeName +
                                     ": accepted bytes do not match the expected hash");
            }
        }
    }
    for (const virtualpi::FileRecord& f : r.files) {
        if (f.receivedBytes == 0) {
            continue;
        }
        if (f.hashMatches.has_value()) {
            if (*f.hashMatches) {
                ++v.filesVerified;
                v.bytesVerified += f.receivedBytes;
            } else {
                v.problems.push_back(f.name + ": received bytes do not match the expected hash");
            }
        } else if (in.requireHashes) {
            v.problems.push_back(f.name + ": no expected hash (" + std::to_string(f.receivedBytes) +
                                 " bytes unchecked)");
        }
    }
    v.passed = v.problems.empty();
    return v;
}

}  // namespace usbip
