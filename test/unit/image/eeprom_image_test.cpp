// EEPROM image parsing and in-place configuration replacement (docs/protocol.md §10).
#include "rpiboot/image/eeprom_image.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/hsm_signer.hpp"
#include "rpiboot/signing/signature_file.hpp"
#include "rpiboot_test/synthetic_eeprom.hpp"
#include "rpiboot_test/test_keys.hpp"
#include "rpiboot_test/thrown_by.hpp"

namespace rpiboot {
namespace {

using namespace rpiboot::test;
using ::testing::HasSubstr;

const std::filesystem::path kFixtures = RPIBOOT_FIXTURES_DIR;

std::uint32_t be32(const Bytes& b, std::size_t at) {
    return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
           (std::uint32_t{b[at + 2]} << 8) | b[at + 3];
}

// Index of the first byte that differs in [from, to), or `to`.
std::size_t firstDifference(const Bytes& a, const Bytes& b, std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
        if (a[i] != b[i]) {
            return i;
        }
    }
    return to;
}

bool allFf(const Bytes& b, std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
        if (b[i] != 0xff) {
            return false;
        }
    }
    return true;
}

std::string readConf() {
    Bytes b = readFileBytes(kFixtures / "recovery/boot.conf");
    return std::string(b.begin(), b.end());
}

TEST(EepromImageTest, Parses2711LayoutAndReadsItsConfig) {
    EepromImage image = EepromImage::parse(makeEeprom2711(), "pieeprom-2711.bin");
    EXPECT_EQ(image.bootConfig(), test::kShippedBootConf2711);
    const EepromSection* conf = image.findFile("bootconf.txt");
    ASSERT_NE(conf, nullptr);
    EXPECT_EQ(conf->offset, 0x72e00u);
    EXPECT_EQ(conf->length, 95u);
    EXPECT_EQ(image.sections().back().offset, 0x72e00u);  // bootconf.txt is last
    EXPECT_EQ(image.findFile("pubkey.bin")->offset, 0x71d00u);
    EXPECT_EQ(image.file("updatetime")->size(), 8u);
}

TEST(EepromImageTest, Parses2712LayoutAndLooksOnlyInsideThePartition) {
    EepromImage image = EepromImage::parse(makeEeprom2712(), "pieeprom-2712.bin");
    EXPECT_EQ(image.bootConfig(), test::kShippedBootConf2712);
    // The updatetime at 0x67a0 lies in the first 64 KiB; tools use the one in the partition.
    EXPECT_EQ(image.findFile("updatetime")->offset, 0xa1d10u);
    EXPECT_EQ(image.findFile("bootconf.txt")->offset, 0xa3000u);
    EXPECT_EQ(image.sections().back().offset, 0x107000u);  // padding to 0x1fe000
}

// docs/protocol.md §10.3 worked example: recovery/boot.conf into a 2711 image.
TEST(EepromImageTest, RecoveryBootConfIntoA2711ImageMatchesTheWorkedExample) {
    const Bytes original = makeEeprom2711();
    const std::string conf = readConf();
    ASSERT_EQ(conf.size(), 414u);
    EepromImage image = EepromImage::parse(original, "pieeprom.bin");
    image.setBootConfig(conf);
    const Bytes& out = image.bytes();

    const Bytes header = {0x55, 0xaa, 0xf1, 0x1f, 0x00, 0x00, 0x01, 0xae, 'b', 'o', 'o', 't',
                          'c',  'o',  'n',  'f',  '.',  't',  'x',  't',  0,   0,   0,   0};
    EXPECT_EQ(Bytes(out.begin() + 0x72e00, out.begin() + 0x72e18), header);
    EXPECT_EQ(std::string(out.begin() + 0x72e18, out.begin() + 0x72fb6), conf);
    // Last section: 0xff from the end of the text on, and no padding header.
    EXPECT_TRUE(allFf(out, 0x72fb6, 0x7f000));
    EXPECT_EQ(firstDifference(original, out, 0, 0x72e00), 0x72e00u);
    EXPECT_EQ(firstDifference(original, out, 0x7f000, out.size()), out.size());
    EXPECT_EQ(image.bootConfig(), conf);
}

TEST(EepromImageTest, ConfigRoundTripChangesNothingButTheConfigSection) {
    for (const Bytes& original : {makeEeprom2711(), makeEeprom2712()}) {
        EepromImage image = EepromImage::parse(original, "pieeprom.bin");
        const std::string before = image.bootConfig();
        const EepromSection conf = *image.findFile("bootconf.txt");
        const std::string replacement = "[all]\nBOOT_ORDER=0xf25641\nSD_BOOT_MAX_RETRIES=3\n";
        image.setBootConfig(replacement);
        EXPECT_EQ(EepromImage::parse(image.bytes(), "out.bin").bootConfig(), replacement);

        const bool is2711 = original.size() == kEepromSize2711;
        const std::size_t spaceEnd = is2711 ? 0x7f000 : 0x107000;
        EXPECT_EQ(firstDifference(original, image.bytes(), 0, conf.offset), conf.offset)
            << "bytes before bootconf.txt changed";
        EXPECT_EQ(firstDifference(original, image.bytes(), spaceEnd, original.size()),
                  original.size())
            << "bytes after the free space following bootconf.txt changed";
        // Every section after the config is still there, at the same place.
        std::vector<std::size_t> offsetsBefore;
        std::vector<std::size_t> offsetsAfter;
        const EepromImage originalImage = EepromImage::parse(original, "a");
        for (const auto& s : originalImage.sections()) {
            if (s.offset >= spaceEnd) {
                offsetsBefore.push_back(s.offset);
            }
        }
        for (const auto& s : image.sections()) {
            if (s.offset >= spaceEnd) {
                offsetsAfter.push_back(s.offset);
            }
        }
        EXPECT_EQ(offsetsBefore, offsetsAfter);

        image.setBootConfig(before);
        EXPECT_EQ(image.bytes(), original) << "putting the old config back must restore the image";
    }
}

TEST(EepromImageTest, NonLastConfigIsFollowedByAPaddingSectionUpToTheNextSection) {
    EepromImage image = EepromImage::parse(makeEeprom2712(), "pieeprom-2712.bin");
    const std::string conf = readConf();
    image.setBootConfig(conf);
    const Bytes& out = image.bytes();
    const std::size_t textEnd = 0xa3000 + 24 + conf.size();  // 0xa31b6
    const std::size_t pad = (textEnd + 7) & ~std::size_t{7};
    EXPECT_TRUE(allFf(out, textEnd, pad));
    EXPECT_EQ(be32(out, pad), kEepromMagicPadding);
    EXPECT_EQ(be32(out, pad + 4), 0x107000 - pad - 8);
    EXPECT_TRUE(allFf(out, pad + 8, 0x107000));
    EXPECT_EQ(be32(out, 0x107000), kEepromMagicPadding);  // the next padding is untouched
}

TEST(EepromImageTest, ShorterConfigErasesTheOldText) {
    EepromImage image = EepromImage::parse(makeEeprom2711(), "pieeprom.bin");
    image.setBootConfig(readConf());
    image.setBootConfig("[all]\n");
    EXPECT_EQ(image.bootConfig(), "[all]\n");
    EXPECT_TRUE(allFf(image.bytes(), 0x72e18 + 6, 0x7f000));
}

// docs/protocol.md §10.5 signed variant: pubkey.bin and bootconf.sig are
// followed by padding sections reaching the next section.
TEST(EepromImageTest, EmbeddingKeyAndSignatureAddsPaddingAsTheWorkedExample) {
    ASSERT_TRUE(testKeys().ok) << testKeys().log;
    EepromImage image = EepromImage::parse(makeEeprom2711(), "pieeprom.bin");
    const std::string conf = readConf();
    RsaKey key = RsaKey::loadPem(testKeys().private2048);
    KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    const ByteView confBytes(reinterpret_cast<const std::uint8_t*>(conf.data()), conf.size());
    std::string sigText = makeSignatureFile(confBytes, 1700000000, &signer).toText();
    ASSERT_EQ(sigText.size(), 602u);
    image.setBootConfig(conf);
    image.setBootConfigSignature(sigText);
    image.setPublicKey(key);
    const Bytes& out = image.bytes();
    EXPECT_EQ(be32(out, 0x71d04), 280u);
    EXPECT_EQ(be32(out, 0x71e20), kEepromMagicPadding);
    EXPECT_EQ(be32(out, 0x71e24), 472u);
    EXPECT_EQ(be32(out, 0x72904), 618u);
    EXPECT_EQ(be32(out, 0x72b78), kEepromMagicPadding);
    EXPECT_EQ(be32(out, 0x72b7c), 640u);
    EXPECT_EQ(image.findFile("bootconf.txt")->offset, 0x72e00u);
    EXPECT_EQ(*image.file("pubkey.bin"), key.pubkeyBin());
    EXPECT_EQ(*image.file("bootconf.sig"), Bytes(sigText.begin(), sigText.end()));
}

TEST(EepromImageTest, ConfigOver4076BytesIsRefused) {
    EepromImage image = EepromImage::parse(makeEeprom2711(), "pieeprom.bin");
    EXPECT_NO_THROW(image.setBootConfig(std::string(4076, '#')));
    Error e = thrownBy([&] { image.setBootConfig(std::string(4077, '#')); });
    EXPECT_EQ(e.code(), Errc::TooLarge);
    EXPECT_THAT(e.what(), HasSubstr("bootconf.txt in pieeprom.bin is 4077 bytes; at most 4076"));
}

// Upstream bounds the content with a 20-byte header although it starts at +24,
// so a file 1-4 bytes too long overwrote the next section's magic (W36). Here
// the exact fit is accepted and one byte more is refused, leaving the image intact.
TEST(EepromImageTest, ExactFitIsAcceptedAndOneByteMoreDoesNotTouchTheNextSection) {
    const Bytes original = makeEeprom2711();
    EepromImage image = EepromImage::parse(original, "pieeprom.bin");
    const std::size_t room = 0x72000 - (0x71d00 + 24);  // pubkey.bin up to cacert.der
    for (std::size_t extra = 1; extra <= 4; ++extra) {
        Error e = thrownBy([&] { image.replaceFile("pubkey.bin", Bytes(room + extra, 0xab)); });
        EXPECT_EQ(e.code(), Errc::TooLarge);
        EXPECT_THAT(e.what(), HasSubstr("only " + std::to_string(room) +
                                        " bytes fit before the next section at 0x72000"));
        EXPECT_EQ(image.bytes(), original);
    }
    image.replaceFile("pubkey.bin", Bytes(room, 0xab));
    EXPECT_EQ(be32(image.bytes(), 0x72000), kEepromMagicFile);
    EXPECT_EQ(firstDifference(original, image.bytes(), 0x72000, original.size()), original.size());
    EXPECT_EQ(image.findFile("cacert.der")->offset, 0x72000u);
}

TEST(EepromImageTest, LastSectionMayNotGrowIntoTheReservedLast4KiB) {
    SyntheticEeprom e(kEepromSize2711);
    e.blob(kEepromMagicCode, 0x100, 1);
    e.padTo(0x7e000);
    e.file("bootconf.txt", "[all]\n");
    EepromImage image = EepromImage::parse(e.bytes(), "tail.bin");
    const std::size_t room = 0x7f000 - (0x7e000 + 24);  // 4072
    Error err = thrownBy([&] { image.setBootConfig(std::string(room + 1, 'x')); });
    EXPECT_EQ(err.code(), Errc::TooLarge);
    EXPECT_THAT(err.what(), HasSubstr("reserved last 4 KiB"));
    image.setBootConfig(std::string(room, 'x'));
    EXPECT_EQ(image.bootConfig().size(), room);
    EXPECT_TRUE(allFf(image.bytes(), 0x7f000, kEepromSize2711));
}

TEST(EepromImageTest, ImagesThatAreNotEepromImagesAreRejectedClearly) {
    Error size = thrownBy([] { EepromImage::parse(Bytes(1000, 0xff), "boot.img"); });
    EXPECT_EQ(size.code(), Errc::Corrupt);
    EXPECT_THAT(size.what(), HasSubstr("boot.img is not an EEPROM image: it is 1000 bytes"));

    Error magic = thrownBy([] { EepromImage::parse(Bytes(kEepromSize2711, 0), "zeros.bin"); });
    EXPECT_THAT(magic.what(), HasSubstr("zeros.bin is not an EEPROM image: it starts with "
                                        "0x00000000"));

    Bytes overrun = makeEeprom2711();
    overrun[0x72e04] = 0x7f;  // bootconf.txt length now reaches far past the end
    Error run = thrownBy([&] { EepromImage::parse(overrun, "bad.bin"); });
    EXPECT_THAT(run.what(), HasSubstr("section at 0x72e00 claims"));
    EXPECT_THAT(run.what(), HasSubstr("past the end of the image"));

    Bytes unknown = makeEeprom2711();
    unknown[0x72e02] = 0x12;
    EXPECT_THAT(thrownBy([&] { EepromImage::parse(unknown, "bad.bin"); }).what(),
                HasSubstr("unknown magic 0x55aa121f"));

    Bytes shortFile = makeEeprom2711();
    shortFile[0x72e04] = 0;
    shortFile[0x72e05] = 0;
    shortFile[0x72e06] = 0;
    shortFile[0x72e07] = 4;
    EXPECT_THAT(thrownBy([&] { EepromImage::parse(shortFile, "bad.bin"); }).what(),
                HasSubstr("too short"));
}

TEST(EepromImageTest, ImageWithoutConfigSaysSo) {
    SyntheticEeprom e(kEepromSize2711);
    e.blob(kEepromMagicCode, 0x100, 1);
    EepromImage image = EepromImage::parse(e.bytes(), "bare.bin");
    EXPECT_EQ(thrownBy([&] { image.bootConfig(); }).code(), Errc::NotFound);
    Error err = thrownBy([&] { image.setBootConfig("x"); });
    EXPECT_EQ(err.code(), Errc::NotFound);
    EXPECT_THAT(err.what(), HasSubstr("bare.bin has no bootconf.txt section"));
}

TEST(EepromImageTest, RandomlyCorruptedImagesNeverReadOutOfBounds) {
    const Bytes original = makeEeprom2711();
    std::mt19937 rng(20261125);
    std::vector<std::size_t> headers;
    const EepromImage originalImage = EepromImage::parse(original, "x");
    for (const auto& s : originalImage.sections()) {
        headers.push_back(s.offset);
    }
    for (int round = 0; round < 3000; ++round) {
        Bytes b = original;
        std::size_t at = headers[rng() % headers.size()] + rng() % 8;
        b[at] = static_cast<std::uint8_t>(rng());
        try {
            EepromImage image = EepromImage::parse(std::move(b), "fuzz.bin");
            image.setBootConfig("[all]\nBOOT_UART=1\n");
        } catch (const Error& e) {
            EXPECT_TRUE(e.code() == Errc::Corrupt || e.code() == Errc::NotFound ||
                        e.code() == Errc::TooLarge)
                << e.what();
        }
    }
}

TEST(EepromImageTest, RecoveryEepromHasConfigAndMatchingDigest) {
    const std::string conf = readConf();
    RecoveryEeprom out =
        buildRecoveryEeprom(makeEeprom2711(), "pieeprom.original.bin", conf, 1700000000);
    EXPECT_EQ(EepromImage::parse(out.image, "pieeprom.bin").bootConfig(), conf);
    EXPECT_EQ(out.digest, sha256Hex(out.image) + "\nts: 1700000000\n");
    EXPECT_NO_THROW(verifyDigest(out.image, SignatureFile::parse(out.digest, "pieeprom.sig"),
                                 "pieeprom.bin", "pieeprom.sig"));
}

TEST(EepromImageTest, SecureRecoveryEepromCarriesAConfigSignatureTheEmbeddedKeyVerifies) {
    ASSERT_TRUE(testKeys().ok) << testKeys().log;
    const std::string conf = readConf();
    KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    RecoveryEeprom out =
        buildRecoveryEeprom(makeEeprom2712(), "pieeprom.original.bin", conf, 42, &signer);
    EepromImage image = EepromImage::parse(out.image, "pieeprom.bin");
    RsaKey embedded = RsaKey::fromPubkeyBin(*image.file("pubkey.bin"), "pubkey.bin");
    Bytes sigBytes = *image.file("bootconf.sig");
    SignatureFile sig =
        SignatureFile::parse(std::string(sigBytes.begin(), sigBytes.end()), "bootconf.sig");
    Bytes confBytes = *image.file("bootconf.txt");
    EXPECT_NO_THROW(verifySignatureFile(confBytes, sig, embedded, "bootconf.txt", "bootconf.sig"));
    EXPECT_EQ(sig.timestamp, 42);
}

TEST(EepromImageTest, HsmSigningWithoutAPublicKeyIsRefused) {
    HsmSigner hsm("/nonexistent/wrapper");
    Error e = thrownBy([&] { buildRecoveryEeprom(makeEeprom2711(), "p.bin", "[all]\n", 1, &hsm); });
    EXPECT_EQ(e.code(), Errc::InvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("needs the public key"));
}

// Upstream's update-pieeprom.sh refuses images built before secure boot
// existed (BUILD_TIMESTAMP below 1632136573, 2021-09-20); so does a signed build.
TEST(EepromImageTest, SignedBuildRefusesImagesOlderThanSecureBoot) {
    ASSERT_TRUE(testKeys().ok) << testKeys().log;
    KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    auto withTimestamp = [](const std::string& stamp) {
        Bytes image = makeEeprom2711();
        const std::string text = "BUILD_TIMESTAMP=" + stamp + std::string(1, '\0');
        std::copy(text.begin(), text.end(), image.begin() + 0x100);  // inside the bootcode
        return image;
    };
    EXPECT_EQ(eepromBuildTimestamp(withTimestamp("1632136572")), 1632136572);
    EXPECT_EQ(eepromBuildTimestamp(makeEeprom2711()), std::nullopt);
    Error e = thrownBy([&] {
        buildRecoveryEeprom(withTimestamp("1632136572"), "old.bin", "[all]\n", 1, &signer);
    });
    EXPECT_EQ(e.code(), Errc::InvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("old.bin was built at 1632136572"));
    EXPECT_NO_THROW(
        buildRecoveryEeprom(withTimestamp("1632136573"), "new.bin", "[all]\n", 1, &signer));
    // Unsigned recovery images are not concerned.
    EXPECT_NO_THROW(buildRecoveryEeprom(withTimestamp("1600000000"), "old.bin", "[all]\n", 1));
}

TEST(EepromImageTest, SignatureFromTheWrongKeyIsNotEmbedded) {
    ASSERT_TRUE(testKeys().ok) << testKeys().log;
    KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    RsaKey otherPublic = RsaKey::loadPem(testKeys().otherPublic2048);
    Error e = thrownBy([&] {
        buildRecoveryEeprom(makeEeprom2711(), "p.bin", "[all]\n", 1, &signer, &otherPublic);
    });
    EXPECT_EQ(e.code(), Errc::Crypto);
}

}  // namespace
}  // namespace rpiboot
