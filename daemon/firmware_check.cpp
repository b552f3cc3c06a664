#include "firmware_check.hpp"

#include "rpiboot/core/error.hpp"
#include "rpiboot/firmware/firmware_set.hpp"

namespace rpibootd {

namespace {

std::string chipLabel(rpiboot::Chip chip) {
    return std::string(rpiboot::chipNumber(chip));
}

std::string join(const std::vector<std::string>& items, const char* separator) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) {
            out += separator;
        }
        out += item;
    }
    return out;
}

}  // namespace

FirmwareCompleteness checkFirmwareSet(const rpiboot::Profile& profile,
                                      const std::shared_ptr<rpiboot::FileCache>& cache) {
    FirmwareCompleteness result;
    for (const auto& entry : profile.firmware.required) {
        result.chips.push_back(chipLabel(entry.first));
    }
    std::unique_ptr<rpiboot::FirmwareSet> set;
    try {
        // Without generated files: what is checked is what is on disk.
        set = std::make_unique<rpiboot::FirmwareSet>(profile.firmwareSetConfig(), cache);
    } catch (const rpiboot::Error& e) {
        result.error = e.what();
        return result;
    }
    result.opened = true;
    for (const auto& [chip, names] : profile.firmware.required) {
        rpiboot::BoardContext board;
        board.chip = chip;
        for (const auto& name : names) {
            ++result.checked;
            const rpiboot::Lookup found = set->resolve(name, board);
            if (found.found()) {
                if (found.file->origin.rfind("embedded:", 0) == 0) {
                    result.embedded.push_back(chipLabel(chip) + "/" + name);
                }
                continue;
            }
            std::string what = chipLabel(chip) + "/" + name;
            if (!found.refusal.empty()) {
                what += " (refused: " + found.refusal + ")";
            }
            result.missing.push_back(std::move(what));
        }
    }
    return result;
}

std::string describe(const FirmwareCompleteness& result) {
    if (!result.opened) {
        return "cannot open: " + result.error;
    }
    if (!result.declared()) {
        return "no required files declared";
    }
    if (result.complete()) {
        std::string text = "complete (" + join(result.chips, ", ") + ": " +
                           std::to_string(result.checked) + " files";
        if (!result.embedded.empty()) {
            text += "; from the embedded firmware: " + join(result.embedded, ", ");
        }
        return text + ")";
    }
    return "INCOMPLETE: missing " + join(result.missing, ", ");
}

}  // namespace rpibootd
