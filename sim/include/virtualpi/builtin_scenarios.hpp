// The built-in scenarios: what each chip asks for under each upstream
// profile, as reconstructed from real board logs (docs/protocol.md §7).
// Pure data; hashes are left unset (tests add them with expectHashes()).
#pragma once

#include <optional>
#include <string_view>

#include "virtualpi/scenario.hpp"

namespace virtualpi {

enum class Profile { Msd, MassStorageGadget, Recovery };

struct BuiltinOptions {
    // Adds boot.sig (optional) after boot.img (mass-storage-gadget, secure boot).
    bool secureBoot = false;
    // BCM2712 mass-storage-gadget: ask for rp1c0fw1.bin/rp1c0fw2.bin (optional,
    // 2025-12+ firmware).
    bool rp1Firmware = true;
    // Board serial; empty leaves it to the bus.
    std::string serial;
};

// Throws rpiboot::Error(InvalidArgument) for a chip the profile does not
// support (msd: 2835/2837/2711; mass-storage-gadget and recovery: 2711/2712).
Scenario builtinScenario(rpiboot::Chip chip, Profile profile, const BuiltinOptions& options = {});

std::string_view profileName(Profile profile) noexcept;  // "msd", "mass-storage-gadget", "recovery"
std::optional<Profile> parseProfile(std::string_view text) noexcept;

}  // namespace virtualpi
