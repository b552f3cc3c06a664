#include "rpiboot/firmware/embedded_firmware.hpp"

namespace rpiboot {

// embeddedFirmware() itself is generated at build time (embedded_firmware_data.cpp).

const EmbeddedFile* findEmbeddedFirmware(std::string_view name) noexcept {
    for (const EmbeddedFile& file : embeddedFirmware()) {
        if (file.name == name) {
            return &file;
        }
    }
    return nullptr;
}

std::string embeddedFirmwareNames() {
    std::string names;
    for (const EmbeddedFile& file : embeddedFirmware()) {
        names += (names.empty() ? "" : ", ") + std::string(file.name);
    }
    return names.empty() ? std::string("none") : names;
}

}  // namespace rpiboot
