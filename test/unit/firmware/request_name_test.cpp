#include "rpiboot/firmware/request_name.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace rpiboot {
namespace {

TEST(RequestName, AllowsPlainNamesAndRelativeSubpaths) {
    for (const char* name : {"start4.elf", "config.txt", "overlays/dwc2.dtbo", "2711/bootmain",
                             "./cmdline.txt", "a..b", "file-with spaces.bin"}) {
        EXPECT_EQ(requestNameRefusal(name), std::nullopt) << name;
    }
}

TEST(RequestName, RefusesEmptyName) {
    EXPECT_EQ(requestNameRefusal(""), "the name is empty");
}

TEST(RequestName, RefusesAbsoluteNames) {
    const auto refusal = requestNameRefusal("/etc/shadow");
    ASSERT_TRUE(refusal);
    EXPECT_NE(refusal->find("absolute"), std::string::npos);
}

TEST(RequestName, RefusesDotDotComponentsAnywhere) {
    for (const char* name : {"..", "../x", "a/../b", "a/..", "overlays/../../etc/passwd"}) {
        const auto refusal = requestNameRefusal(name);
        ASSERT_TRUE(refusal) << name;
        EXPECT_NE(refusal->find("'..'"), std::string::npos) << name;
    }
}

TEST(RequestName, RefusesBackslashes) {
    const auto refusal = requestNameRefusal("..\\windows");
    ASSERT_TRUE(refusal);
    EXPECT_NE(refusal->find("backslash"), std::string::npos);
}

TEST(RequestName, RefusesControlAndNonAsciiBytes) {
    for (const std::string& name : {std::string("a\nb"), std::string("tab\t"), std::string("x\x7f"),
                                    std::string("caf\xc3\xa9"), std::string("a\0b", 3)}) {
        const auto refusal = requestNameRefusal(name);
        ASSERT_TRUE(refusal) << name;
        EXPECT_NE(refusal->find("non-printable byte 0x"), std::string::npos) << *refusal;
    }
}

TEST(RequestName, RefusesNamesOverTheFieldLength) {
    EXPECT_EQ(requestNameRefusal(std::string(255, 'a')), std::nullopt);
    const auto refusal = requestNameRefusal(std::string(256, 'a'));
    ASSERT_TRUE(refusal);
    EXPECT_NE(refusal->find("256 bytes"), std::string::npos);
}

TEST(RequestName, RefusesNamesThatNameNoFile) {
    EXPECT_TRUE(requestNameRefusal("."));
    EXPECT_TRUE(requestNameRefusal("./"));
    EXPECT_TRUE(requestNameRefusal("./."));
}

TEST(RequestName, SafePathComponentsAreSingleHarmlessLevels) {
    EXPECT_TRUE(isSafePathComponent("1-1.3.2"));
    EXPECT_TRUE(isSafePathComponent("10000000abcdef01"));
    for (const char* bad : {"", ".", "..", "a/b", "a\\b", "x\n"}) {
        EXPECT_FALSE(isSafePathComponent(bad)) << bad;
    }
}

TEST(RequestNameField, CutsAtTheFirstNul) {
    std::vector<std::uint8_t> field(256, 0);
    const std::string name = "config.txt";
    std::copy(name.begin(), name.end(), field.begin());
    field[20] = 'x';  // junk after the terminator is ignored
    const RequestName parsed = parseRequestNameField(field);
    EXPECT_EQ(parsed.name, "config.txt");
    EXPECT_EQ(parsed.refusal, std::nullopt);
}

TEST(RequestNameField, RefusesAFieldWithoutNul) {
    const std::vector<std::uint8_t> field(256, 'a');
    const RequestName parsed = parseRequestNameField(field);
    ASSERT_TRUE(parsed.refusal);
    EXPECT_EQ(*parsed.refusal, "the name field has no NUL terminator within 256 bytes");
    EXPECT_EQ(parsed.name.size(), 256u);
}

TEST(RequestNameField, EmptyFieldNameIsRefusedAsEmpty) {
    const std::vector<std::uint8_t> field(256, 0);
    const RequestName parsed = parseRequestNameField(field);
    EXPECT_EQ(parsed.name, "");
    EXPECT_EQ(parsed.refusal, "the name is empty");
}

TEST(RequestNameField, AppliesTheNameRulesAfterCutting) {
    std::vector<std::uint8_t> field(256, 0);
    const std::string name = "../../etc/passwd";
    std::copy(name.begin(), name.end(), field.begin());
    EXPECT_TRUE(parseRequestNameField(field).refusal);
}

}  // namespace
}  // namespace rpiboot
