// Test helper: a firmware tree built from the fixtures in a scratch directory.
#pragma once

#include <filesystem>
#include <fstream>

#include "../../test/unit/signing/synthetic_eeprom.hpp"
#include "rpiboot_test/scratch_dir.hpp"

namespace rpibootd::test {

// A firmware base directory laid out as firmware/README.md describes, from
// the real fixture files: msd/ (with bootcode4.bin and start4.elf as the
// symlinks upstream ships), bootfiles.bin and 2711/ at the top, and
// mass-storage-gadget64/ with config.txt and a stand-in boot.img, and
// recovery/ with config.txt, boot.conf and a synthetic 2711 base EEPROM image.
inline std::filesystem::path makeFirmwareTree(const rpiboot::test::ScratchDir& scratch) {
    namespace fs = std::filesystem;
    const fs::path fixtures(RPIBOOT_FIXTURES_DIR);
    fs::path base = scratch.path() / "firmware";
    fs::create_directories(base / "msd");
    fs::create_directories(base / "2711");
    fs::create_directories(base / "mass-storage-gadget64");
    fs::create_directories(base / "recovery");
    fs::copy_file(fixtures / "bootfiles.bin", base / "bootfiles.bin");
    fs::copy_file(fixtures / "2711/bootcode4.bin", base / "2711/bootcode4.bin");
    fs::copy_file(fixtures / "msd/bootcode.bin", base / "msd/bootcode.bin");
    fs::copy_file(fixtures / "msd/start.elf", base / "msd/start.elf");
    fs::create_symlink("../2711/bootcode4.bin", base / "msd/bootcode4.bin");
    fs::create_symlink("start.elf", base / "msd/start4.elf");
    fs::copy_file(fixtures / "mass-storage-gadget64/config.txt",
                  base / "mass-storage-gadget64/config.txt");
    fs::copy_file(fixtures / "mass-storage-gadget64/boot-secure-msd.img",
                  base / "mass-storage-gadget64/boot.img");
    fs::copy_file(fixtures / "recovery/config.txt", base / "recovery/config.txt");
    // The recovery profile builds pieeprom.bin from these at load.
    fs::copy_file(fixtures / "recovery/boot.conf", base / "recovery/boot.conf");
    const auto eeprom = rpiboot::testing::makeEeprom2711();
    std::ofstream(base / "recovery/pieeprom.original.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(eeprom.data()),
               static_cast<std::streamsize>(eeprom.size()));
    return base;
}

}  // namespace rpibootd::test
