// Files generated from a profile: pieeprom.bin/.sig and boot.sig, built in
// memory when a profile asks for them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "rpiboot/firmware/firmware_set.hpp"
#include "rpiboot/profile/profile.hpp"

namespace rpiboot {

// The files a profile's "eeprom" / "sign_boot_image" sections produce, keyed
// for FirmwareSetConfig::generated ("2711/pieeprom.bin", "2712/boot.sig", ...),
// signed at `timestamp`. Reads the images, boot.conf and keys, and runs the
// HSM wrapper if one is named. Empty for a profile without those sections.
// Throws rpiboot::Error naming the profile, the file and the reason (missing
// image, an image of no known EEPROM size, a bad key, a failed signature).
std::map<std::string, ServedFile, std::less<>> generateProfileFiles(const Profile& profile,
                                                                    std::int64_t timestamp);

// The board reports a profile's session must end with (protocol.md §5.5):
// EEPROM_UPDATE=success and EEPROM_HASH of the served pieeprom.bin for an
// "eeprom" profile; with program_pubkey SECURE_BOOT_PROVISION=success and
// CUSTOMER_KEY_HASH of the embedded key; with program_jtag_lock JTAG_LOCKED=1.
std::vector<ExpectedReport> expectedReports(
    const Profile& profile, const std::map<std::string, ServedFile, std::less<>>& generated);

}  // namespace rpiboot
