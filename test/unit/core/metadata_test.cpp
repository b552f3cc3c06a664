#include "rpiboot/core/metadata.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "rpiboot/core/error.hpp"

namespace rpiboot {
namespace {

TEST(FactoryUuid, DecodesTheDocumentedExample) {
    EXPECT_EQ(decodeFactoryUuid("19a519a6_19ab520e_1ac0212b"), "001000911006186073");
}

TEST(FactoryUuid, DecodesTheSpecHalfWordExample) {
    // docs/protocol.md §5.6: the half 0x4E8D gives '8', 'I', 'O'.
    EXPECT_EQ(decodeFactoryUuid("4e8d"), "8IO");
}

TEST(FactoryUuid, StopsAtTheFirstZeroWord) {
    EXPECT_EQ(decodeFactoryUuid("19a519a6_0_1ac0212b"), "001000");
    EXPECT_EQ(decodeFactoryUuid("19a6"), "001");
    EXPECT_EQ(decodeFactoryUuid("0"), "");
    EXPECT_EQ(decodeFactoryUuid("0x19a6"), "001");
}

TEST(FactoryUuid, RejectsValuesOutsideTheC40AlphabetWithoutPartialResult) {
    EXPECT_THROW(decodeFactoryUuid("ffff"), Error);
    EXPECT_THROW(decodeFactoryUuid("19a6_ffff"), Error);
    EXPECT_THROW(decodeFactoryUuid("19a6_zz"), Error);
    EXPECT_THROW(decodeFactoryUuid(""), Error);
    EXPECT_THROW(decodeFactoryUuid("123456789"), Error);
    EXPECT_THROW(decodeFactoryUuid("19a6__19a6"), Error);
    try {
        decodeFactoryUuid("ffff");
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::Protocol);
        EXPECT_NE(std::string(e.what()).find("FACTORY_UUID"), std::string::npos);
    }
}

TEST(FactoryUuid, LongValuesDoNotOverflow) {
    std::string value = "19a519a6";
    for (int i = 0; i < 20; ++i) {
        value += "_19a519a6";
    }
    EXPECT_EQ(decodeFactoryUuid(value).size(), 21U * 6U);
    std::string tooLong = "19a519a6";
    for (int i = 0; i < 70; ++i) {
        tooLong += "_19a519a6";
    }
    EXPECT_THROW(decodeFactoryUuid(tooLong), Error);
}

TEST(FactoryUuid, EncodeIsTheInverseOfDecode) {
    for (std::string text : {"001000911006186073", "8IO", "ABCXYZ012", "RPI5CM5"}) {
        if (text.size() % 3 != 0) {
            EXPECT_THROW(encodeFactoryUuid(text), Error);
            continue;
        }
        EXPECT_EQ(decodeFactoryUuid(encodeFactoryUuid(text)), text);
    }
    EXPECT_EQ(encodeFactoryUuid("001000911006186073"), "19a519a6_19ab520e_1ac0212b");
}

TEST(MetadataMessage, SplitsKeyAndValueAtStars) {
    auto entry = parseMetadataMessage("*MAC_ADDR*d8:3a:dd:05:ee:78");
    ASSERT_TRUE(entry);
    EXPECT_EQ(entry->key, "MAC_ADDR");
    EXPECT_EQ(entry->value, "d8:3a:dd:05:ee:78");
    auto cut = parseMetadataMessage("*KEY*VALUE*EXTRA");
    ASSERT_TRUE(cut);
    EXPECT_EQ(cut->value, "VALUE");
}

TEST(MetadataMessage, MessagesWithoutKeyOrValueCarryNoEntry) {
    EXPECT_FALSE(parseMetadataMessage("config.txt"));
    EXPECT_FALSE(parseMetadataMessage("*KEYONLY"));
    EXPECT_FALSE(parseMetadataMessage("*KEY*"));
    EXPECT_FALSE(parseMetadataMessage("**VALUE"));
    EXPECT_TRUE(isMetadataMessage("*"));
    EXPECT_FALSE(isMetadataMessage(""));
}

TEST(MetadataJson, MatchesUpstreamLayoutAndEscapes) {
    EXPECT_EQ(renderMetadataJson({{"EEPROM_UPDATE", "success"}, {"JTAG_LOCKED", "0"}}),
              "{\n\t\"EEPROM_UPDATE\": \"success\",\n\t\"JTAG_LOCKED\": \"0\"\n}\n");
    EXPECT_EQ(renderMetadataJson({{"K", "a\"b\\c\x01"}}),
              "{\n\t\"K\": \"a\\\"b\\\\c\\u0001\"\n}\n");
}

TEST(MetadataFile, SerialCannotEscapeTheDirectory) {
    EXPECT_EQ(metadataFileStem("af04b2da"), "af04b2da");
    EXPECT_EQ(metadataFileStem("../../etc/passwd"), "______etc_passwd");
    EXPECT_EQ(metadataFileStem(""), "unknown");
    const auto dir =
        std::filesystem::temp_directory_path() / ("rpiboot-meta-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto path = writeMetadataFile(dir, "../x", {{"MAC_ADDR", "2c:cf:67:70:76:f3"}});
    EXPECT_EQ(path.parent_path(), dir);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), "{\n\t\"MAC_ADDR\": \"2c:cf:67:70:76:f3\"\n}\n");
    std::filesystem::remove_all(dir);
}

TEST(MetadataFile, UnwritableDirectoryIsAClearError) {
    try {
        writeMetadataFile("/nonexistent-dir-for-rpiboot", "abc", {{"A", "B"}});
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::Io);
        EXPECT_NE(std::string(e.what()).find("/nonexistent-dir-for-rpiboot"), std::string::npos);
    }
}

}  // namespace
}  // namespace rpiboot
