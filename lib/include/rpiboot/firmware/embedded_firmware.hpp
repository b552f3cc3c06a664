// The firmware compiled into the library: Raspberry Pi's small mass-storage
// set (bootcode.bin, bootcode4.bin, start.elf, and start4.elf, which is
// start.elf's bytes), so rpiboot and rpibootd can boot BCM2835/2837/2711
// boards as USB disks on a machine with no firmware installed.
//
// The bytes are generated at build time from the repository's firmware files
// (cmake/EmbeddedFirmware.cmake, RPIBOOT_EMBEDDED_FIRMWARE_DIR); a build with
// RPIBOOT_EMBEDDED_FIRMWARE=OFF has an empty set. A FirmwareSet searches them
// last, after every directory, and only when its configuration allows it
// (FirmwareSetConfig::embedded); files served from here have the origin
// "embedded:NAME". Larger sets (the mass-storage gadget's boot.img, EEPROM
// images, bootfiles.bin for BCM2712) are never embedded: they are installed.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace rpiboot {

struct EmbeddedFile {
    std::string_view name;                // as a board asks for it: "start4.elf"
    std::string_view source;              // the file it was built from, under the embedded
                                          // firmware directory: "msd/start.elf"
    std::span<const std::uint8_t> bytes;  // static storage, valid for the program's life
    std::string_view sha256;              // of `bytes`, lower-case hex, computed at build time
};

// Every embedded file, in a fixed order; empty when built without them.
std::span<const EmbeddedFile> embeddedFirmware() noexcept;

// The embedded file a board gets for `name` (exact, case-sensitive, as on
// disk), or nullptr.
const EmbeddedFile* findEmbeddedFirmware(std::string_view name) noexcept;

// "bootcode.bin, bootcode4.bin, start.elf, start4.elf"; "none" when empty.
std::string embeddedFirmwareNames();

}  // namespace rpiboot
