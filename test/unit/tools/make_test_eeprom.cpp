// Writes a synthetic 2711 or 2712 pieeprom image for the tools' shell tests.
#include <iostream>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot_test/synthetic_eeprom.hpp"

int main(int argc, char** argv) {
    if (argc != 3 || (std::string(argv[1]) != "2711" && std::string(argv[1]) != "2712")) {
        std::cerr << "usage: rpiboot-test-eeprom 2711|2712 OUT\n";
        return 2;
    }
    try {
        auto image = std::string(argv[1]) == "2711" ? rpiboot::test::makeEeprom2711()
                                                    : rpiboot::test::makeEeprom2712();
        rpiboot::writeFileBytes(argv[2], image);
    } catch (const rpiboot::Error& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}
