// Board specifications of rpiboot-usbip-boards, as given on its command line:
//
//   SOURCE[*COUNT][,KEY=VALUE...]
//   SOURCE: CHIP:PROFILE (2711:msd, 2712:mass-storage-gadget, 2837:msd, ...),
//           a scenario JSON file (sim/README.md), or decoy-disk:SIZE (a plain
//           USB disk, 1209:0001, that never boots)
//   KEY:    serial=HEX8     serial of the first board (the others count up)
//           unplug=NAME@N   leave the bus after N bytes of file NAME (or of
//                           the bootcode, when NAME is its name); NAME
//                           `disk` (or a disk's name): after N bytes written
//                           to that disk
//           disk=SIZE       the final identity's first disk answers SCSI,
//                           backed by a sparse file of SIZE (64M, 1G, bytes)
//           disks=N:S+N:S   the gadget's disks by name and size
//           start=final     show the final identity at once (no boot)
//           returns=N       after a successful run the board resets into its
//                           ROM (final kind rom), at most N times
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
#include "virtualpi/sim_board.hpp"

namespace usbip {

struct Unplug {
    std::string file;
    std::uint64_t afterBytes = 0;
};

struct DiskSpec {
    std::string name;  // empty: the scenario's name for that disk
    std::uint64_t sizeBytes = 0;
};

// The decoy disk's IDs: the shared test VID/PID 1209:0001, never a Raspberry Pi.
inline constexpr std::uint16_t kDecoyVendorId = 0x1209;
inline constexpr std::uint16_t kDecoyProductId = 0x0001;

struct BoardSpec {
    std::string text;  // as given, for messages and records
    virtualpi::Scenario scenario;
    unsigned count = 1;
    std::string serial;  // first serial; empty: the runner picks
    std::optional<unsigned> port;
    bool expectFailure = false;
    bool configQuirk = false;
    std::optional<Unplug> unplug;
    std::vector<DiskSpec> disks;  // backed disks of the final identity, in order
    bool startFinal = false;
    std::optional<unsigned> returns;  // returns=N: final kind rom
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

// The backing files of one board's disks: DIR/board-<index>-disk.img for a
// single disk, DIR/board-<index>-<name>.img for several; the unplug limit on
// the disk an unplug=disk@N names.
std::vector<virtualpi::DiskAttachment> boardDisks(const BoardSpec& spec,
                                                  const virtualpi::Scenario& scenario,
                                                  const std::filesystem::path& dir, unsigned index);

// "64M", "32m", "1G", "4096K", "1048576": bytes; throws for anything else,
// for 0 and for sizes not a multiple of 512.
std::uint64_t parseDiskSize(std::string_view text);

// "1a2b3c4d" + n as 8 hex digits (wrapping); throws for text that is not
// 1 to 8 hex digits.
std::string serialPlus(std::string_view hex8, unsigned n);

}  // namespace usbip
