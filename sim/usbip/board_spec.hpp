// Board specifications of rpiboot-usbip-boards, as given on its command line:
//
//   SOURCE[*COUNT][,KEY=VALUE...]
//   SOURCE: CHIP:PROFILE (2711:msd, 2712:mass-storage-gadget, 2837:msd, ...)
//           or a scenario JSON file (sim/README.md)
//   KEY:    serial=HEX8     serial of the first board (the others count up)
//           unplug=NAME@N   leave the bus after N bytes of file NAME (or of
//                           the bootcode, when NAME is its name)
//           expect=failed   the board is meant to fail; expect=succeeded
//           sums=FILE       expected SHA-256 per file name (sha256sum listing)
//           sha256=NAME:HEX expected SHA-256 of NAME (repeatable)
//           quirk=config    the ROM's configuration descriptor claims 55 bytes
//                           but returns 32 (docs/protocol.md §12.3)
//           port=N          vhci-hcd port number (COUNT must be 1)
//
// Turns text into data and scenarios; starts nothing, touches no device.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "virtualpi/scenario.hpp"

namespace usbip {

struct Unplug {
    std::string file;
    std::uint64_t afterBytes = 0;
};

struct BoardSpec {
    std::string text;  // as given, for messages and records
    virtualpi::Scenario scenario;
    unsigned count = 1;
    std::string serial;  // first serial; empty: the runner picks
    std::optional<unsigned> port;
    bool expectFailure = false;
    bool configQuirk = false;
    std::optional<Unplug> unplug;
    std::vector<std::filesystem::path> sumFiles;
    std::map<std::string, std::string> hashes;  // name -> sha256 hex
};

// Throws rpiboot::Error(InvalidArgument) saying which part is wrong (and
// NotFound for a scenario file that cannot be read).
BoardSpec parseBoardSpec(std::string_view text);

// The scenario of one board: the spec's scenario with `serial`, the expected
// hashes (global ones first, then the spec's sums files, then its sha256=
// entries) and the unplug fault applied. Throws rpiboot::Error when the
// unplug names no file of the scenario or a sums file cannot be read.
virtualpi::Scenario boardScenario(const BoardSpec& spec, const std::string& serial,
                                  const std::map<std::string, std::string>& globalHashes);

// "1a2b3c4d" + n as 8 hex digits (wrapping); throws for text that is not
// 1 to 8 hex digits.
std::string serialPlus(std::string_view hex8, unsigned n);

}  // namespace usbip
