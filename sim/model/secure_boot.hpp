// What a locked board checks, written from docs/protocol.md (§7.4, §9,
// §10.1-§10.6) and OpenSSL's EVP interface, never from the host code, so
// that the simulator cannot inherit the host's mistakes. Internal.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "virtualpi/scenario.hpp"

namespace virtualpi::detail {

using ByteSpan = std::span<const std::uint8_t>;

// SHA-256 of `bytes`, lower-case hex.
std::string sha256Of(ByteSpan bytes);

// "" if the BCM2712 loader's outermost signature block is by the key whose
// pubkey.bin hashes to `otpKeyHash` and verifies; otherwise why not.
std::string check2712Loader(ByteSpan loader, const std::string& otpKeyHash);

// "" if `sigText` (a .sig file) carries the SHA-256 of `data` and an rsa2048
// signature of it that verifies with `pubkeyBin`; otherwise why not.
std::string checkSigFile(ByteSpan data, const std::string& sigText, ByteSpan pubkeyBin);

// What recovery.bin acts on after flashing (config.txt switches, the image).
struct ProvisionOutcome {
    std::string eepromUpdate = "success";  // EEPROM_UPDATE
    std::string provision = "success";     // SECURE_BOOT_PROVISION
    std::vector<std::string> notes;        // for the board's log
};

// Applies a recovery run to `state`: the EEPROM takes `pieeprom` (a locked
// board only one signed by its key), and with program_pubkey=1 in `configTxt`
// OTP takes the hash of the image's pubkey.bin, once bootconf.sig verifies
// with it; program_jtag_lock / revoke_devkey follow a successful provision.
ProvisionOutcome applyRecovery(SecureBootState& state, const std::string& configTxt,
                               ByteSpan pieeprom);

}  // namespace virtualpi::detail
