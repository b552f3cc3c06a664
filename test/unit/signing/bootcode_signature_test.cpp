// BCM2712 signature blocks and the EEPROM edits counter-signing needs. Each
// block is checked with the openssl command line; offsets come from the
// format (docs/protocol.md §10), not from the code under test.
#include "rpiboot/signing/bootcode_signature.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rpiboot/core/error.hpp"
#include "rpiboot/image/eeprom_image.hpp"
#include "rpiboot/signing/pkcs11_signer.hpp"
#include "rpiboot/signing/signature_file.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "rpiboot_test/synthetic_eeprom.hpp"
#include "rpiboot_test/test_keys.hpp"
#include "rpiboot_test/thrown_by.hpp"

namespace rpiboot {
namespace {

using rpiboot::test::run;
using rpiboot::test::ScratchDir;
using rpiboot::test::shellQuote;
using rpiboot::test::testKeys;
using rpiboot::test::thrownBy;
using ::testing::HasSubstr;

Bytes pattern(std::size_t n, std::uint8_t seed) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) {
        b[i] = static_cast<std::uint8_t>(seed + i * 7);
    }
    return b;
}

std::uint32_t le32(const Bytes& b, std::size_t at) {
    return std::uint32_t{b[at]} | (std::uint32_t{b[at + 1]} << 8) |
           (std::uint32_t{b[at + 2]} << 16) | (std::uint32_t{b[at + 3]} << 24);
}

bool opensslVerifies(const std::filesystem::path& publicPem, const Bytes& data,
                     const Bytes& signature) {
    ScratchDir dir;
    const auto d = dir.writeBytes("data", data);
    const auto s = dir.writeBytes("sig", signature);
    return run("openssl dgst -sha256 -verify " + shellQuote(publicPem.string()) + " -signature " +
               shellQuote(s.string()) + " " + shellQuote(d.string()))
               .exitCode == 0;
}

TEST(BootcodeSignature, AppendsABlockOpensslVerifies) {
    ASSERT_TRUE(testKeys().ok) << testKeys().log;
    const KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    const Bytes loader = pattern(70001, 3);  // odd size: no alignment is added
    const Bytes out = signBootcode2712(loader, signer, *signer.publicKey(), 16, 7);
    ASSERT_EQ(out.size(), loader.size() + 532);
    EXPECT_TRUE(std::equal(loader.begin(), loader.end(), out.begin()));
    EXPECT_EQ(le32(out, 70001), 70001u);
    EXPECT_EQ(le32(out, 70005), 16u);
    EXPECT_EQ(le32(out, 70009), 7u);
    const Bytes covered(out.begin(), out.begin() + 70013);
    const Bytes signature(out.begin() + 70013, out.begin() + 70013 + 256);
    EXPECT_TRUE(opensslVerifies(testKeys().public2048, covered, signature));

    const auto blocks = bootcodeSignatures2712(out);
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].offset, 70001u);
    EXPECT_EQ(blocks[0].keyNumber, 16u);
    EXPECT_EQ(blocks[0].version, 7u);
    EXPECT_TRUE(verifyBootcodeBlock2712(out, blocks[0]));
    EXPECT_TRUE(bootcodeSignatures2712(loader).empty());
}

TEST(BootcodeSignature, CounterSigningStacksASecondBlockAndTamperingShows) {
    ASSERT_TRUE(testKeys().ok) << testKeys().log;
    const KeySigner rom(RsaKey::loadPem(testKeys().otherPrivate2048));
    const KeySigner customer(RsaKey::loadPem(testKeys().private2048));
    const Bytes romSigned = signBootcode2712(pattern(4000, 1), rom, *rom.publicKey(), 0, 1);
    Bytes counter = signBootcode2712(romSigned, customer, *customer.publicKey());
    const auto blocks = bootcodeSignatures2712(counter);
    ASSERT_EQ(blocks.size(), 2u);
    EXPECT_EQ(blocks[0].keyNumber, 16u);
    EXPECT_EQ(blocks[1].keyNumber, 0u);
    EXPECT_EQ(blocks[0].pubkeyBin, customer.publicKey()->pubkeyBin());
    EXPECT_TRUE(verifyBootcodeBlock2712(counter, blocks[0]));
    EXPECT_TRUE(verifyBootcodeBlock2712(counter, blocks[1]));
    counter[10] ^= 1;
    EXPECT_FALSE(verifyBootcodeBlock2712(counter, blocks[0]));
    EXPECT_FALSE(verifyBootcodeBlock2712(counter, blocks[1]));
}

TEST(BootcodeSignature, RefusesBadKeyNumbersVersionsSizesAndMismatchedKeys) {
    ASSERT_TRUE(testKeys().ok) << testKeys().log;
    const KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    const RsaKey other = RsaKey::loadPem(testKeys().otherPublic2048);
    const RsaKey& key = *signer.publicKey();
    EXPECT_EQ(thrownBy([&] { signBootcode2712(pattern(10, 0), signer, key, 5); }).code(),
              Errc::InvalidArgument);
    EXPECT_EQ(thrownBy([&] { signBootcode2712(pattern(10, 0), signer, key, 16, 33); }).code(),
              Errc::InvalidArgument);
    EXPECT_EQ(thrownBy([&] { signBootcode2712(pattern(112641 - 532, 0), signer, key); }).code(),
              Errc::TooLarge);
    EXPECT_NO_THROW(signBootcode2712(pattern(112640 - 532, 0), signer, key));
    EXPECT_THAT(thrownBy([&] { signBootcode2712(pattern(10, 0), signer, other); }).what(),
                HasSubstr("does not verify"));
}

TEST(EepromLoaders, BootcodeReplacementPadsUpToTheNextSection) {
    EepromImage image = EepromImage::parse(test::makeEeprom2712(), "2712");
    ASSERT_TRUE(image.isAbImage());
    const Bytes loader = pattern(25984 + 532, 9);
    image.replaceBootcode(loader);
    EXPECT_EQ(image.bootcode(), loader);
    // 8 + 26516 = 0x679c, aligned 0x67a0: exactly where updatetime starts, no pad header.
    EXPECT_EQ(image.sections().at(1).offset, 0x67a0u);
    EXPECT_EQ(image.sections().at(1).name, "updatetime");
    const Bytes& bytes = image.bytes();
    EXPECT_EQ(bytes[0x679c], 0xff);
    EXPECT_EQ(bytes[0x679f], 0xff);

    const Bytes shorter = pattern(1000, 2);
    image.replaceBootcode(shorter);
    EXPECT_EQ(image.bootcode(), shorter);
    EXPECT_EQ(image.sections().at(1).magic, kEepromMagicPadding);
    EXPECT_EQ(image.sections().at(2).offset, 0x67a0u);
    EXPECT_EQ(thrownBy([&] { image.replaceBootcode(pattern(0x67a0, 0)); }).code(), Errc::TooLarge);
}

TEST(EepromLoaders, BootsysGrowsIntoItsPaddingAndTimestampsLandInBothCopies) {
    EepromImage image = EepromImage::parse(test::makeEeprom2712(), "2712");
    const Bytes bootsys = pattern(78332 + 532, 5);
    image.replaceBootsys(bootsys);
    EXPECT_EQ(*image.file("bootsys"), bootsys);
    EXPECT_EQ(thrownBy([&] { image.replaceBootsys(pattern(0x14000, 0)); }).code(), Errc::TooLarge);

    image.setUpdateTimestamp(1700000000);
    const Bytes expected{0xff, 0x0e, 0xac, 0x9a, 0x00, 0xf1, 0x53, 0x65};  // ~ts, ts (LE)
    EXPECT_EQ(Bytes(image.bytes().begin() + 0x67a0 + 24, image.bytes().begin() + 0x67a0 + 32),
              expected);
    EXPECT_EQ(*image.file("updatetime"), expected);

    EepromImage image2711 = EepromImage::parse(test::makeEeprom2711(), "2711");
    EXPECT_FALSE(image2711.isAbImage());
    const Bytes before = *image2711.file("updatetime");
    image2711.setUpdateTimestamp(1700000000);
    EXPECT_EQ(*image2711.file("updatetime"), before);  // only a read-only copy would change
    EXPECT_EQ(Bytes(image2711.bytes().end() - 8, image2711.bytes().end()), expected);
    EXPECT_THAT(thrownBy([&] { image2711.replaceBootsys(pattern(10, 0)); }).what(),
                HasSubstr("not an A/B image"));
}

TEST(Pkcs11Uri, PinIsRedactedInMessages) {
    EXPECT_TRUE(isPkcs11Uri("pkcs11:token=a"));
    EXPECT_FALSE(isPkcs11Uri("/etc/key.pem"));
    EXPECT_EQ(redactPkcs11Uri("pkcs11:token=a;object=k;type=private?pin-value=1234"),
              "pkcs11:token=a;object=k;type=private?pin-value=***");
    EXPECT_EQ(redactPkcs11Uri("pkcs11:token=a?module-path=/m.so&pin-value=9"),
              "pkcs11:token=a?module-path=/m.so&pin-value=***");
    EXPECT_THAT(thrownBy([] { Pkcs11Signer("pkcs11:token=a?pin-value=1", ""); }).what(),
                HasSubstr("no PKCS#11 module"));
    EXPECT_THAT(
        thrownBy([] { Pkcs11Signer("pkcs11:token=a?pin-value=1", "/nonexistent.so"); }).what(),
        HasSubstr("does not exist"));
}

}  // namespace
}  // namespace rpiboot
