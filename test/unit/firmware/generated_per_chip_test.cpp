// Generated files keyed "<chip folder>/NAME": each chip gets its own bytes
// for the same requested name (a recovery profile's per-chip pieeprom.bin).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/firmware/firmware_set.hpp"
#include "rpiboot_test/scratch_dir.hpp"

namespace rpiboot {
namespace {

ServedFile servedText(const std::string& text) {
    auto storage = std::make_shared<std::string>(text);
    return ServedFile{
        storage, std::span(reinterpret_cast<const std::uint8_t*>(storage->data()), storage->size()),
        ""};
}

std::string text(const Lookup& lookup) {
    if (!lookup.found()) {
        return "<not found: " + lookup.refusal + ">";
    }
    return std::string(lookup.file->bytes.begin(), lookup.file->bytes.end());
}

TEST(GeneratedPerChip, ChipKeyedEntryWinsOverThePlainNameForThatChipOnly) {
    test::ScratchDir tree;
    tree.write("set/pieeprom.bin", "disk");
    FirmwareSetConfig config;
    config.root = tree / "set";
    config.generated["2711/pieeprom.bin"] = servedText("pi4 eeprom");
    config.generated["2712/pieeprom.bin"] = servedText("pi5 eeprom");
    config.generated["boot.sig"] = servedText("any chip");
    FirmwareSet set(config, std::make_shared<FileCache>());

    EXPECT_EQ(text(set.resolve("pieeprom.bin", {Chip::Bcm2711, "", ""})), "pi4 eeprom");
    EXPECT_EQ(text(set.resolve("pieeprom.bin", {Chip::Bcm2712, "", ""})), "pi5 eeprom");
    EXPECT_EQ(set.resolve("pieeprom.bin", {Chip::Bcm2712, "", ""}).file->origin,
              "generated:2712/pieeprom.bin");
    EXPECT_EQ(text(set.resolve("pieeprom.bin", {Chip::Bcm2837, "", ""})), "disk")
        << "a chip without a generated entry falls through to disk";
    EXPECT_EQ(text(set.resolve("boot.sig", {Chip::Bcm2712, "", ""})), "any chip");
}

TEST(GeneratedPerChip, RequestNameRulesStillApplyBeforeGeneratedFiles) {
    test::ScratchDir tree;
    tree.mkdir("set");
    FirmwareSetConfig config;
    config.root = tree / "set";
    config.generated["2711/pieeprom.bin"] = servedText("pi4 eeprom");
    FirmwareSet set(config, std::make_shared<FileCache>());
    const Lookup lookup = set.resolve("2711/../pieeprom.bin", {Chip::Bcm2711, "", ""});
    EXPECT_FALSE(lookup.found());
}

}  // namespace
}  // namespace rpiboot
