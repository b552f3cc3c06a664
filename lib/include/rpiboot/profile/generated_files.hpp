// Files generated from a profile: pieeprom.bin/.sig and boot.sig, built in
// memory when a profile asks for them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

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

}  // namespace rpiboot
