#include "rpiboot/boot/boot.hpp"

#include <algorithm>
#include <cctype>
#include <string>

#include "rpiboot/core/error.hpp"

namespace rpiboot {

BootSignature bootSignatureFor(const FirmwareSet& firmware, const BoardContext& board,
                               bool signedBoot) {
    BootSignature signature{};
    const bool family2835 = board.chip == Chip::Bcm2835 || board.chip == Chip::Bcm2837;
    if (!signedBoot || !family2835) {
        return signature;
    }
    Lookup sig = firmware.resolve("bootcode.sig", board);
    if (!sig.found()) {
        throw Error(Errc::NotFound,
                    "signed boot needs bootcode.sig, which the firmware set does not have" +
                        (sig.refusal.empty() ? std::string() : " (" + sig.refusal + ")"));
    }
    if (sig.file->bytes.size() < signature.size()) {
        throw Error(Errc::Corrupt, "bootcode.sig from " + sig.file->origin + " has " +
                                       std::to_string(sig.file->bytes.size()) +
                                       " bytes; signed boot needs at least 20");
    }
    std::copy_n(sig.file->bytes.begin(), signature.size(), signature.begin());
    return signature;
}

StageOutcome runBootStage(Transport& transport, const DeviceIdentity& identity,
                          const FirmwareSet& firmware, const BoardContext& board,
                          const BootOptions& options, BootObserver* observer) {
    Link link(transport, options.timeouts, options.bulkTransfersInFlight);
    StageOutcome outcome;
    outcome.stage = identity.stage;
    if (identity.stage == BootStage::Rom) {
        Lookup loader = firmware.bootcode(board);
        if (!loader.found()) {
            throw Error(Errc::NotFound,
                        std::string(bootcodeFileName(board.chip)) + " for " +
                            std::string(chipName(board.chip)) + " not found in " +
                            firmware.searchedPlaces() +
                            (loader.refusal.empty() ? std::string() : " (" + loader.refusal + ")"));
        }
        if (observer != nullptr) {
            observer->onFileLookup(bootcodeFileName(board.chip), true, loader.file->bytes.size(),
                                   loader.file->origin);
        }
        const BootSignature signature = bootSignatureFor(firmware, board, options.signedBoot);
        uploadBootcode(link, loader.file->bytes, signature, observer);
        outcome.bootcodeSize = loader.file->bytes.size();
        return outcome;
    }
    BoardFileSource source(firmware, board);
    FileServer server(link, source, observer, options.fileServer);
    outcome.files = server.run();
    if (auto unmet = unmetReport(options.expectedReports, outcome.files->metadata, board.chip)) {
        throw Error(Errc::Refused, *unmet);
    }
    return outcome;
}

std::optional<std::string> unmetReport(const std::vector<ExpectedReport>& expected,
                                       const std::map<std::string, std::string>& metadata,
                                       Chip chip) {
    auto lower = [](std::string text) {
        for (char& c : text) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        return text;
    };
    for (const auto& report : expected) {
        if (report.chip && *report.chip != chip) {
            continue;
        }
        const auto it = metadata.find(report.key);
        if (it == metadata.end()) {
            return "the board did not report " + report.key + " (expected " + report.key + "=" +
                   report.value + "): " + report.meaning;
        }
        if (lower(it->second) != lower(report.value)) {
            return "the board reported " + report.key + "=" + it->second + " instead of " +
                   report.value + ": " + report.meaning;
        }
    }
    return std::nullopt;
}

}  // namespace rpiboot
