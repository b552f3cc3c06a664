#include "virtualpi/builtin_scenarios.hpp"

#include <cctype>

#include "rpiboot/core/error.hpp"
#include "scenario_internal.hpp"
#include "virtualpi/scenario_builder.hpp"

namespace virtualpi {
namespace {

[[noreturn]] void unsupported(rpiboot::Chip chip, Profile profile) {
    throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                         "virtual board: profile " + std::string(profileName(profile)) +
                             " does not exist for BCM" + std::string(rpiboot::chipNumber(chip)));
}

// docs/protocol.md §7.1: the legacy msd loaders. The 2835/2837 loader fetches start.elf; the
// 2711 one probes config.txt and pieeprom.sig first and fixup4.dat after.
Scenario msd(rpiboot::Chip chip) {
    ScenarioBuilder b(chip);
    if (chip == rpiboot::Chip::Bcm2711) {
        b.optionalFile("config.txt").optionalFile("pieeprom.sig").file("start4.elf");
        b.optionalFile("fixup4.dat");
    } else if (chip == rpiboot::Chip::Bcm2835 || chip == rpiboot::Chip::Bcm2837) {
        b.file("start.elf");
    } else {
        unsupported(chip, Profile::Msd);
    }
    return b.endWithEmptyName().build();
}

// docs/protocol.md §7.2: DDR-init second stage, then bootmain, then the boot partition image;
// the board comes back as the Linux mass-storage gadget (docs/protocol.md §12.4).
Scenario massStorageGadget(rpiboot::Chip chip, const BuiltinOptions& o) {
    ScenarioBuilder b(chip);
    if (chip == rpiboot::Chip::Bcm2711) {
        b.file("mcb.bin");
        for (int i = 0; i <= 8; ++i) {
            b.file("memsys0" + std::to_string(i) + ".bin");
        }
    } else if (chip == rpiboot::Chip::Bcm2712) {
        b.file("mcb.bin").file("memsys00.bin").file("memsys01.bin");
        if (o.rp1Firmware) {
            b.optionalFile("rp1c0fw1.bin");
        }
        b.file("memsys02.bin");
        if (o.rp1Firmware) {
            b.optionalFile("rp1c0fw2.bin");
        }
        b.file("memsys03.bin");
    } else {
        unsupported(chip, Profile::MassStorageGadget);
    }
    b.file("bootmain").file("config.txt").file("boot.img");
    if (o.secureBoot) {
        // Where boot.sig falls in the order is inferred (rpi-sb-provisioner#170).
        b.optionalFile("boot.sig");
    }
    return b.endWithEmptyName().massStorageGadgetAfterBoot().build();
}

// docs/protocol.md §5.5, §7.3: recovery.bin fetches its config, the EEPROM image and its
// digest, flashes, then reports metadata. Values are examples from the
// upstream READMEs; {serial} and {sha256:...} are filled in by the board.
Scenario recovery(rpiboot::Chip chip) {
    if (chip != rpiboot::Chip::Bcm2711 && chip != rpiboot::Chip::Bcm2712) {
        unsupported(chip, Profile::Recovery);
    }
    ScenarioBuilder b(chip);
    b.bootcode(std::string(detail::bootcodeNameOf(chip)));
    b.optionalFile("config.txt").file("pieeprom.sig").file("pieeprom.bin");
    const bool pi5 = chip == rpiboot::Chip::Bcm2712;
    b.metadata("USER_SERIAL_NUM", "{serial}");
    b.metadata("MAC_ADDR", pi5 ? "2c:cf:67:70:76:f3" : "d8:3a:dd:05:ee:78");
    b.metadata("EEPROM_UPDATE", "{eeprom_update}");
    b.metadata("EEPROM_HASH", "{sha256:pieeprom.bin}");
    b.metadata("SECURE_BOOT_PROVISION", "{provision}");
    b.metadata("CUSTOMER_KEY_HASH", "{customer_key_hash}");
    b.metadata("BOOT_ROM", pi5 ? "0000000a" : "0000c8b0");
    b.metadata("BOARD_ATTR", "00000000");
    b.metadata("USER_BOARDREV", pi5 ? "b04170" : "c03141");
    b.metadata("JTAG_LOCKED", "{jtag_locked}");
    if (pi5) {
        b.metadata("SIGNATURE_MODE", "0");
        b.metadata("MAC_WIFI_ADDR", "2c:cf:67:70:76:f4");
        b.metadata("MAC_BT_ADDR", "2c:cf:67:70:76:f5");
        b.metadataC40("FACTORY_UUID", "001000911006186073");
    } else {
        b.metadata("ADVANCED_BOOT", "0000e8e8");
    }
    return b.endWithEmptyName().build();
}

}  // namespace

Scenario builtinScenario(rpiboot::Chip chip, Profile profile, const BuiltinOptions& options) {
    Scenario s;
    switch (profile) {
        case Profile::Msd:
            s = msd(chip);
            break;
        case Profile::MassStorageGadget:
            s = massStorageGadget(chip, options);
            break;
        case Profile::Recovery:
            s = recovery(chip);
            break;
    }
    s.name = std::string(profileName(profile)) + "-" + std::string(rpiboot::chipNumber(chip));
    s.serial = options.serial;
    return s;
}

std::string_view profileName(Profile profile) noexcept {
    switch (profile) {
        case Profile::Msd:
            return "msd";
        case Profile::MassStorageGadget:
            return "mass-storage-gadget";
        case Profile::Recovery:
            return "recovery";
    }
    return "?";
}

std::optional<Profile> parseProfile(std::string_view text) noexcept {
    std::string t;
    for (char c : text) {
        t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    if (t == "msd") {
        return Profile::Msd;
    }
    if (t == "mass-storage-gadget" || t == "mass-storage-gadget64" || t == "msg") {
        return Profile::MassStorageGadget;
    }
    if (t == "recovery" || t == "recovery5") {
        return Profile::Recovery;
    }
    return std::nullopt;
}

}  // namespace virtualpi
