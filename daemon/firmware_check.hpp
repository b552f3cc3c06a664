// Is a profile's firmware set complete? For `rpibootd --check-config`.
//
// A profile lists, per chip it serves, the names its set must answer
// ("firmware": {"requires": ...}). Each is resolved exactly as a board of that
// chip would resolve it (own root, chip folder, bootfiles.bin members,
// fallback sets, symbolic-link rules), so "complete" means every listed file
// would be served. Files the profile generates in memory are not needed:
// their inputs (pieeprom.original.bin, boot.conf, boot.img) are what is listed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rpiboot/profile/daemon_config.hpp"

namespace rpiboot {
class FileCache;
}

namespace rpibootd {

struct FirmwareCompleteness {
    bool opened = false;               // the set's root could be opened
    std::string error;                 // why not, when !opened
    std::vector<std::string> chips;    // the chips checked, "2711", ...
    std::vector<std::string> missing;  // "2711/start4.elf", or "... (refused: why)"
    std::vector<std::string> embedded;  // answered only by the embedded firmware
    std::size_t checked = 0;           // names resolved
    bool declared() const noexcept { return !chips.empty(); }
    bool complete() const noexcept { return opened && missing.empty(); }
};

FirmwareCompleteness checkFirmwareSet(const rpiboot::Profile& profile,
                                      const std::shared_ptr<rpiboot::FileCache>& cache);

// One line: "complete (2835, 2837, 2711: 6 files)", "complete (...; from the embedded
// firmware: 2711/start4.elf)", "INCOMPLETE: missing 2711/start4.elf",
// "cannot open: ...", "no required files declared".
std::string describe(const FirmwareCompleteness& result);

}  // namespace rpibootd
