// The model's FACTORY_UUID encoder against docs/protocol.md §5.6.
#include "virtualpi/c40.hpp"

#include <gtest/gtest.h>

#include "rpiboot/core/error.hpp"

namespace virtualpi {
namespace {

TEST(VirtualPiC40, EncodesTheDocumentedFactoryUuid) {
    EXPECT_EQ(c40Encode("001000911006186073"), "19a519a6_19ab520e_1ac0212b");
}

TEST(VirtualPiC40, OddTripleLeavesTheHighHalfZero) {
    EXPECT_EQ(c40Encode("001"), "000019a6");
    EXPECT_EQ(c40Decode("19a6"), "001");
}

TEST(VirtualPiC40, DecodesTheHarnessCases) {
    EXPECT_EQ(c40Decode("19a519a6_19ab520e_1ac0212b"), "001000911006186073");
    EXPECT_EQ(c40Decode("0"), "");
    EXPECT_EQ(c40Decode("19a519a6_0_1ac0212b"), "001000");
    EXPECT_EQ(c40Decode("ffff"), std::nullopt);
}

TEST(VirtualPiC40, LettersRoundTrip) {
    const std::string text = "8IOABCXYZ";
    EXPECT_EQ(c40Decode(c40Encode(text)), text);
    EXPECT_EQ(c40Encode("8IO"), "00004e8d");  // the half 0x4E8D of docs/protocol.md §5.6
}

TEST(VirtualPiC40, RefusesWhatC40CannotCarry) {
    EXPECT_THROW(c40Encode("abc"), rpiboot::Error);
    EXPECT_THROW(c40Encode("0010"), rpiboot::Error);
}

}  // namespace
}  // namespace virtualpi
