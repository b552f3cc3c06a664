// Synthetic pieeprom images whose section chains mirror the shipped layouts of
// docs/protocol.md §10 (there is no real pieeprom.bin among the fixtures).
// Shared by the signing unit tests and the tools' shell tests; test code only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rpiboot::test {

class SyntheticEeprom {
  public:
    explicit SyntheticEeprom(std::size_t size) : image_(size, 0xff) {}

    // Appends a section at the current (8-aligned) position.
    SyntheticEeprom& section(std::uint32_t magic, const std::vector<std::uint8_t>& body) {
        put32(cursor_, magic);
        put32(cursor_ + 4, static_cast<std::uint32_t>(body.size()));
        std::copy(body.begin(), body.end(), image_.begin() + static_cast<long>(cursor_ + 8));
        cursor_ = align8(cursor_ + 8 + body.size());
        return *this;
    }
    // A section whose body is `length` bytes of a recognisable pattern.
    SyntheticEeprom& blob(std::uint32_t magic, std::size_t length, std::uint8_t seed) {
        std::vector<std::uint8_t> body(length);
        for (std::size_t i = 0; i < length; ++i) {
            body[i] = static_cast<std::uint8_t>(seed + i * 7 + (i >> 8));
        }
        return section(magic, body);
    }
    // A named modifiable file: 12-byte name, 4 reserved zero bytes, content.
    SyntheticEeprom& file(std::string_view name, const std::vector<std::uint8_t>& content) {
        // Sized once and filled: growing it with insert() makes GCC 12 at -O3
        // warn -Warray-bounds about the vector's reallocation (a false positive).
        std::vector<std::uint8_t> body(16 + content.size(), 0);
        std::copy(name.begin(), name.end(), body.begin());
        std::copy(content.begin(), content.end(), body.begin() + 16);
        return section(0x55aaf11f, body);
    }
    SyntheticEeprom& file(std::string_view name, std::string_view text) {
        return file(name, std::vector<std::uint8_t>(text.begin(), text.end()));
    }
    // A padding section (0xff body) reaching exactly `offset`.
    SyntheticEeprom& padTo(std::size_t offset) {
        std::size_t length = offset - cursor_ - 8;
        std::vector<std::uint8_t> body(length, 0xff);
        return section(0x55aafeef, body);
    }
    // Moves the cursor without writing (the gap stays 0xff).
    SyntheticEeprom& skipTo(std::size_t offset) {
        cursor_ = offset;
        return *this;
    }
    std::size_t cursor() const { return cursor_; }
    std::vector<std::uint8_t> bytes() const { return image_; }

  private:
    static std::size_t align8(std::size_t v) { return (v + 7) & ~std::size_t{7}; }
    void put32(std::size_t at, std::uint32_t v) {
        image_[at] = static_cast<std::uint8_t>(v >> 24);
        image_[at + 1] = static_cast<std::uint8_t>(v >> 16);
        image_[at + 2] = static_cast<std::uint8_t>(v >> 8);
        image_[at + 3] = static_cast<std::uint8_t>(v);
    }
    std::vector<std::uint8_t> image_;
    std::size_t cursor_ = 0;
};

inline constexpr std::string_view kShippedBootConf2711 =
    "[all]\nBOOT_UART=0\nWAKE_ON_GPIO=1\nPOWER_OFF_ON_HALT=0\nNET_INSTALL_AT_POWER_ON=1\n";
inline constexpr std::string_view kShippedBootConf2712 =
    "[all]\nBOOT_UART=1\nPOWER_OFF_ON_HALT=0\nBOOT_ORDER=0xf461\nNET=1\n";

inline std::vector<std::uint8_t> updatetime() {
    return {0x5f, 0x2e, 0x9c, 0x99, 0xa0, 0xd1, 0x63, 0x66};
}

// The 2711 layout: bootcode, blobs, updatetime 0x71c78, pubkey.bin 0x71d00,
// cacert.der 0x72000, bootconf.sig 0x72900, bootconf.txt 0x72e00 (last).
inline std::vector<std::uint8_t> makeEeprom2711() {
    SyntheticEeprom e(512 * 1024);
    e.blob(0x55aaf00f, 73120, 0x11);
    e.blob(0x55aaf44f, 0x20000, 0x22);
    e.blob(0x55aaf33f, 0x71c78 - e.cursor() - 8, 0x33);
    e.file("updatetime", updatetime());
    e.padTo(0x71d00);
    e.file("pubkey.bin", std::vector<std::uint8_t>(512, 0));
    e.padTo(0x72000);
    std::vector<std::uint8_t> cacert(2048);
    for (std::size_t i = 0; i < cacert.size(); ++i) {
        cacert[i] = static_cast<std::uint8_t>(0x30 + i);
    }
    e.file("cacert.der", cacert);
    e.padTo(0x72900);
    e.file("bootconf.sig", std::vector<std::uint8_t>(1024, 0));
    e.padTo(0x72e00);
    e.file("bootconf.txt", kShippedBootConf2711);
    return e.bytes();
}

// The 2712 layout (A/B capable): bootcode, updatetime 0x67a0 outside the
// partition, bootsys 0x10000, padding to 0x23430, blobs, updatetime 0xa1d10, pubkey.bin 0xa1e00,
// cacert.der 0xa2100, bootconf.sig 0xa2a00, bootconf.txt 0xa3000, padding to
// 0x107000 and to 0x1fe000, then 8 KiB of 0xff.
inline std::vector<std::uint8_t> makeEeprom2712() {
    SyntheticEeprom e(2 * 1024 * 1024);
    e.blob(0x55aaf00f, 25984, 0x44);
    e.padTo(0x67a0);
    e.file("updatetime", updatetime());
    e.padTo(0x10000);
    e.file("bootsys", std::vector<std::uint8_t>(78332, 0x5a));
    e.padTo(0x23430);  // room for a counter-signed bootsys, as in shipped images
    e.blob(0x55aaf44f, 0xa1d10 - e.cursor() - 8, 0x55);
    e.file("updatetime", updatetime());
    e.padTo(0xa1e00);
    e.file("pubkey.bin", std::vector<std::uint8_t>(512, 0));
    e.padTo(0xa2100);
    e.file("cacert.der", std::vector<std::uint8_t>(2048, 0x30));
    e.padTo(0xa2a00);
    e.file("bootconf.sig", std::vector<std::uint8_t>(1024, 0));
    e.padTo(0xa3000);
    e.file("bootconf.txt", kShippedBootConf2712);
    e.padTo(0x107000);
    e.padTo(0x1fe000);
    return e.bytes();
}

}  // namespace rpiboot::test
