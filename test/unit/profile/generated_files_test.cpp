// Profiles that generate what they serve: recovery (pieeprom.bin and
// pieeprom.sig built from a base image and boot.conf), secure-boot-recovery
// (also the public key embedded and boot.conf signed) and secure-boot-msd
// (boot.img with a boot.sig). The recovery boots run virtual 2711 and 2712
// boards, which hash what they receive; every expectation is derived here
// independently (OpenSSL EVP and the openssl CLI), not by the code under test.
#include "rpiboot/profile/generated_files.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include "rpiboot/image/eeprom_image.hpp"
#include "rpiboot/profile/profile.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot/signing/signature_file.hpp"
#include "rpiboot_test/boot_harness.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "rpiboot_test/synthetic_eeprom.hpp"

namespace rpiboot {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

const fs::path kSource{RPIBOOT_SOURCE_DIR};
const fs::path kFixtureBootConf = fs::path(RPIBOOT_FIXTURES_DIR) / "recovery/boot.conf";
constexpr std::int64_t kTimestamp = 1700000000;

std::string readText(const fs::path& path) {
    return test::readFile(path);
}

void writeBytes(const fs::path& path, const Bytes& bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
}

std::string text(const ServedFile& file) {
    return std::string(file.bytes.begin(), file.bytes.end());
}

int run(const std::string& command) {
    return std::system((command + " >/dev/null 2>&1").c_str());
}

// A firmware base with recovery/: per-chip base images, boot.conf, bootcode.
struct RecoveryTree {
    ScratchDir dir;
    Bytes original2711 = test::makeEeprom2711();
    Bytes original2712 = test::makeEeprom2712();
    RecoveryTree() {
        const fs::path root = dir.path() / "recovery";
        writeBytes(root / "2711/pieeprom.original.bin", original2711);
        writeBytes(root / "2712/pieeprom.original.bin", original2712);
        fs::copy_file(kFixtureBootConf, root / "boot.conf");
        fs::copy_file(fs::path(RPIBOOT_FIXTURES_DIR) / "2711/bootcode4.bin",
                      root / "bootcode4.bin");
        dir.write("recovery/bootcode5.bin", "stand-in recovery.bin for BCM2712");
    }
    const Bytes& original(Chip chip) const {
        return chip == Chip::Bcm2711 ? original2711 : original2712;
    }
};

Profile shippedProfile(const std::string& name, const fs::path& firmwareBase) {
    return loadProfileFile(kSource / "config/profiles" / (name + ".json"), firmwareBase);
}

// An RSA-2048 key made by the openssl CLI: private.pem and public.pem.
struct OpensslKey {
    ScratchDir dir;
    fs::path privatePem = dir.path() / "private.pem";
    fs::path publicPem = dir.path() / "public.pem";
    OpensslKey() {
        EXPECT_EQ(run("openssl genrsa -out '" + privatePem.string() + "' 2048"), 0);
        EXPECT_EQ(run("openssl rsa -in '" + privatePem.string() + "' -pubout -out '" +
                      publicPem.string() + "'"),
                  0);
    }
    // pubkey.bin from `openssl rsa -modulus`: modulus little-endian, then the
    // exponent 65537 as 8 little-endian bytes.
    Bytes pubkeyBin() const {
        const fs::path out = dir.path() / "modulus.txt";
        EXPECT_EQ(std::system(("openssl rsa -in '" + privatePem.string() + "' -noout -modulus > '" +
                               out.string() + "'")
                                  .c_str()),
                  0);
        std::string line = readText(out);
        line = line.substr(line.find('=') + 1);
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
            line.pop_back();
        }
        Bytes modulus = fromHex(line, "modulus");
        Bytes bin(modulus.rbegin(), modulus.rend());
        const Bytes exponent{0x01, 0x00, 0x01, 0, 0, 0, 0, 0};
        bin.insert(bin.end(), exponent.begin(), exponent.end());
        return bin;
    }
    // `openssl dgst -sha256 -verify public.pem` on `data` with a raw signature.
    bool opensslVerifies(const std::string& data, const Bytes& signature) const {
        const fs::path dataFile = dir.path() / "data.bin";
        const fs::path sigFile = dir.path() / "sig.bin";
        std::ofstream(dataFile, std::ios::binary) << data;
        writeBytes(sigFile, signature);
        return run("openssl dgst -sha256 -verify '" + publicPem.string() + "' -signature '" +
                   sigFile.string() + "' '" + dataFile.string() + "'") == 0;
    }
};

// --- parsing ------------------------------------------------------------------

TEST(GeneratedProfile, ShippedProfilesParseWithTheirSections) {
    const Profile recovery = shippedProfile("recovery", "/fw");
    ASSERT_TRUE(recovery.eeprom);
    EXPECT_EQ(recovery.eeprom->image, "pieeprom.original.bin");
    EXPECT_EQ(recovery.eeprom->config, "/fw/recovery/boot.conf");
    EXPECT_FALSE(recovery.eeprom->signing.enabled());

    const Profile sbr = shippedProfile("secure-boot-recovery", "/fw");
    ASSERT_TRUE(sbr.eeprom);
    EXPECT_EQ(sbr.eeprom->signing.signingKey, "/etc/rpibootd/keys/private.pem");

    const Profile sbm = shippedProfile("secure-boot-msd", "/fw");
    ASSERT_TRUE(sbm.signBootImage);
    EXPECT_EQ(sbm.signBootImage->image, "boot.img");
    EXPECT_EQ(sbm.signBootImage->signing.signingKey, "/etc/rpibootd/keys/private.pem");
}

void expectRejected(const std::string& json, const std::string& expected) {
    try {
        parseProfile(json, "p.json", "/fw");
        ADD_FAILURE() << "accepted: " << json;
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
}

TEST(GeneratedProfile, InvalidSectionsAreRejectedWithFileAndPointer) {
    const std::string head = R"({"name": "p", "firmware": {"root": "r"}, )";
    expectRejected(head + R"("eeprom": {"image": "a.bin", "config": "b", "sign_key": "/k"}})",
                   "p.json: /eeprom/sign_key: unknown key");
    expectRejected(head + R"("eeprom": {"config": "b"}})", "p.json: /eeprom/image: missing");
    expectRejected(head + R"("eeprom": {"image": "a.bin"}})", "p.json: /eeprom/config: missing");
    expectRejected(head + R"("eeprom": {"image": "../a.bin", "config": "b"}})",
                   "p.json: /eeprom/image:");
    expectRejected(head + R"("eeprom": {"image": "a", "config": "b", "signing_key": "k.pem"}})",
                   "p.json: /eeprom/signing_key: must be an absolute path");
    expectRejected(
        head +
            R"("eeprom": {"image": "a", "config": "b", "signing_key": "/k", "hsm_wrapper": "/w"}})",
        "p.json: /eeprom/hsm_wrapper: give either");
    expectRejected(head + R"("eeprom": {"image": "a", "config": "b", "hsm_wrapper": "/w"}})",
                   "p.json: /eeprom/public_key: missing");
    expectRejected(head + R"("sign_boot_image": {"image": "boot.img"}})",
                   "p.json: /sign_boot_image/signing_key: missing");
    expectRejected(head + R"("sign_boot_image": {"image": 3, "signing_key": "/k"}})",
                   "p.json: /sign_boot_image/image: expected a string");
}

// --- errors while generating -------------------------------------------------------

void expectGenerationError(const Profile& profile, Errc code, const std::string& expected) {
    try {
        generateProfileFiles(profile, kTimestamp);
        ADD_FAILURE() << "generated files for " << profile.name;
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("profile " + profile.name), std::string::npos)
            << e.what();
    }
}

TEST(GeneratedProfile, MissingImageNamesWhereItLooked) {
    ScratchDir dir;
    dir.write("recovery/boot.conf", "[all]\n");
    const Profile p = shippedProfile("recovery", dir.path());
    expectGenerationError(p, Errc::NotFound,
                          (dir.path() / "recovery/2712/pieeprom.original.bin").string());
}

TEST(GeneratedProfile, ImageOfNoEepromSizeIsRefused) {
    ScratchDir dir;
    dir.write("recovery/boot.conf", "[all]\n");
    dir.write("recovery/pieeprom.original.bin", "not an eeprom");
    expectGenerationError(shippedProfile("recovery", dir.path()), Errc::Corrupt,
                          "not a 512 KiB (2711) or 2 MiB (2712) EEPROM image");
}

TEST(GeneratedProfile, CorruptImageIsRefused) {
    ScratchDir dir;
    dir.write("recovery/boot.conf", "[all]\n");
    writeBytes(dir.path() / "recovery/2711/pieeprom.original.bin", Bytes(kEepromSize2711, 0));
    expectGenerationError(shippedProfile("recovery", dir.path()), Errc::Corrupt,
                          (dir.path() / "recovery/2711/pieeprom.original.bin").string());
}

TEST(GeneratedProfile, MissingBootConfIsReported) {
    RecoveryTree tree;
    fs::remove(tree.dir.path() / "recovery/boot.conf");
    expectGenerationError(shippedProfile("recovery", tree.dir.path()), Errc::NotFound, "boot.conf");
}

TEST(GeneratedProfile, ChipFolderBootConfOverridesTheSetsOwnForThatChipOnly) {
    // Upstream keeps a BCM2712 configuration apart (recovery5/boot.conf); the
    // installed set has it as recovery/2712/boot.conf.
    RecoveryTree tree;
    const std::string conf2712 = "[all]\nBOOT_UART=1\nBOOT_ORDER=0xf2461\n";
    tree.dir.write("recovery/2712/boot.conf", conf2712);
    const Profile profile = shippedProfile("recovery", tree.dir.path());
    const auto generated = generateProfileFiles(profile, kTimestamp);
    auto embedded = [&](const std::string& key) {
        const std::string bytes = text(generated.at(key));
        return EepromImage::parse(Bytes(bytes.begin(), bytes.end()), key).bootConfig();
    };
    EXPECT_EQ(embedded("2712/pieeprom.bin"), conf2712);
    EXPECT_EQ(embedded("2711/pieeprom.bin"), readText(kFixtureBootConf));
    EXPECT_NE(generated.at("2712/pieeprom.bin").origin.find("recovery/2712/boot.conf"),
              std::string::npos)
        << generated.at("2712/pieeprom.bin").origin;
}

TEST(GeneratedProfile, BadSigningKeyIsReportedWithItsPath) {
    RecoveryTree tree;
    const fs::path key = tree.dir.write("keys/private.pem", "not a key");
    Profile p = shippedProfile("secure-boot-recovery", tree.dir.path());
    p.firmware.root = tree.dir.path() / "recovery";
    p.eeprom->config = tree.dir.path() / "recovery/boot.conf";
    p.eeprom->signing.signingKey = key;
    expectGenerationError(p, Errc::Crypto, key.string());
}

// --- recovery served to virtual boards ---------------------------------------------

class RecoveryBoot : public ::testing::TestWithParam<Chip> {};

TEST_P(RecoveryBoot, BoardReceivesTheGeneratedEepromAndReportsItsMetadata) {
    const Chip chip = GetParam();
    RecoveryTree tree;
    const Profile profile = shippedProfile("recovery", tree.dir.path());
    FirmwareSetConfig config = profile.firmwareSetConfig();
    config.generated = generateProfileFiles(profile, kTimestamp);
    auto cache = std::make_shared<FileCache>();
    FirmwareSet firmware(config, cache);

    // What the set serves this chip, checked independently of the builder.
    const BoardContext context{chip, "", ""};
    const Lookup bin = firmware.resolve("pieeprom.bin", context);
    const Lookup sig = firmware.resolve("pieeprom.sig", context);
    ASSERT_TRUE(bin.found() && sig.found());
    const std::string served = text(*bin.file);
    const std::string servedSig = text(*sig.file);
    const std::string binHash = test::sha256Hex(served);

    const EepromImage image = EepromImage::parse(Bytes(served.begin(), served.end()), "served");
    EXPECT_EQ(image.bootConfig(), readText(kFixtureBootConf));
    // Only bootconf.txt and the free space after it changed.
    const EepromSection* conf = image.findFile("bootconf.txt");
    ASSERT_NE(conf, nullptr);
    const Bytes& original = tree.original(chip);
    ASSERT_EQ(served.size(), original.size());
    const std::size_t confStart = conf->offset;
    EXPECT_TRUE(std::equal(
        original.begin(), original.begin() + static_cast<long>(confStart), served.begin(),
        [](std::uint8_t a, char b) { return a == static_cast<std::uint8_t>(b); }))
        << "bytes before bootconf.txt changed";
    const SignatureFile parsedSig = SignatureFile::parse(servedSig, "pieeprom.sig");
    EXPECT_EQ(parsedSig.sha256, binHash);
    EXPECT_EQ(parsedSig.timestamp, kTimestamp);
    EXPECT_FALSE(parsedSig.rsa2048);

    // The board hashes what arrives.
    virtualpi::VirtualBus bus;
    virtualpi::Scenario scenario = virtualpi::builtinScenario(chip, virtualpi::Profile::Recovery);
    scenario.expectSha256("pieeprom.bin", binHash);
    scenario.expectSha256("pieeprom.sig", test::sha256Hex(servedSig));
    const std::string port = bus.plug({scenario, "1-1.4", {}});
    test::HostResult host = test::serveBoard(bus, port, firmware);
    auto board = bus.board(port);
    ASSERT_EQ(board->waitForOutcome(std::chrono::seconds(10)), virtualpi::Outcome::Succeeded)
        << board->record().reason << "\nhost: " << host.error;
    const virtualpi::BoardRecord record = board->record();
    for (const char* name : {"pieeprom.bin", "pieeprom.sig"}) {
        const virtualpi::FileRecord* file = record.file(name);
        ASSERT_NE(file, nullptr) << name;
        EXPECT_TRUE(file->complete) << name;
        EXPECT_EQ(file->hashMatches, std::optional<bool>(true)) << name;
    }
    EXPECT_EQ(record.file("pieeprom.bin")->sha256, binHash);

    // The board's metadata as the host received it (what the daemon records).
    ASSERT_TRUE(host.files);
    const auto& metadata = host.files->metadata;
    EXPECT_EQ(metadata.at("EEPROM_HASH"), binHash);
    EXPECT_EQ(metadata.at("EEPROM_UPDATE"), "success");
    EXPECT_EQ(metadata.count("MAC_ADDR"), 1U);
    if (chip == Chip::Bcm2712) {
        EXPECT_EQ(metadata.at("FACTORY_UUID"), "001000911006186073");
    }
}

std::string chipCaseName(const ::testing::TestParamInfo<Chip>& param) {
    return param.param == Chip::Bcm2711 ? "Bcm2711" : "Bcm2712";
}

INSTANTIATE_TEST_SUITE_P(Chips, RecoveryBoot, ::testing::Values(Chip::Bcm2711, Chip::Bcm2712),
                         chipCaseName);

// --- secure-boot-recovery ------------------------------------------------------------

TEST(GeneratedProfile, SecureBootRecoveryEmbedsTheKeyAndASignedConfig) {
    RecoveryTree tree;
    OpensslKey key;
    fs::create_directories(tree.dir.path() / "secure-boot-recovery");
    Profile profile = shippedProfile("secure-boot-recovery", tree.dir.path());
    profile.eeprom->config = tree.dir.path() / "recovery/boot.conf";
    profile.eeprom->signing.signingKey = key.privatePem;
    profile.firmware.root = tree.dir.path() / "recovery";
    const auto files = generateProfileFiles(profile, kTimestamp);
    const Bytes expectedPubkey = key.pubkeyBin();
    for (const char* chip : {"2711", "2712"}) {
        SCOPED_TRACE(chip);
        const std::string served = text(files.at(std::string(chip) + "/pieeprom.bin"));
        const EepromImage image = EepromImage::parse(Bytes(served.begin(), served.end()), "served");
        const auto pubkey = image.file("pubkey.bin");
        ASSERT_TRUE(pubkey);
        ASSERT_GE(pubkey->size(), expectedPubkey.size());
        EXPECT_TRUE(std::equal(expectedPubkey.begin(), expectedPubkey.end(), pubkey->begin()));
        const std::string config = image.bootConfig();
        EXPECT_EQ(config, readText(kFixtureBootConf));
        const auto sigBytes = image.file("bootconf.sig");
        ASSERT_TRUE(sigBytes);
        std::string sigText(sigBytes->begin(), sigBytes->end());
        sigText = sigText.substr(0, sigText.find('\0'));
        const SignatureFile sig = SignatureFile::parse(sigText, "bootconf.sig");
        EXPECT_EQ(sig.sha256, test::sha256Hex(config));
        ASSERT_TRUE(sig.rsa2048);
        EXPECT_TRUE(key.opensslVerifies(config, *sig.rsa2048));
        const SignatureFile digest = SignatureFile::parse(
            text(files.at(std::string(chip) + "/pieeprom.sig")), "pieeprom.sig");
        EXPECT_EQ(digest.sha256, test::sha256Hex(served));
    }
}

// --- secure-boot-msd ---------------------------------------------------------------

TEST(GeneratedProfile, SecureBootMsdServesBootImgWithASignatureOpensslAccepts) {
    ScratchDir dir;
    OpensslKey key;
    const fs::path fixtureImage =
        fs::path(RPIBOOT_FIXTURES_DIR) / "mass-storage-gadget64/boot-secure-msd.img";
    fs::create_directories(dir.path() / "secure-boot-msd");
    fs::copy_file(fixtureImage, dir.path() / "secure-boot-msd/boot.img");
    Profile profile = shippedProfile("secure-boot-msd", dir.path());
    profile.firmware.fallback.clear();
    profile.signBootImage->counterSign = false;  // no BCM2712 loader here
    profile.signBootImage->signing.signingKey = key.privatePem;
    profile.signBootImage->signing.publicKey = key.publicPem;
    FirmwareSetConfig config = profile.firmwareSetConfig();
    config.generated = generateProfileFiles(profile, kTimestamp);
    FirmwareSet firmware(config, std::make_shared<FileCache>());
    for (Chip chip : {Chip::Bcm2711, Chip::Bcm2712}) {
        const Lookup img = firmware.resolve("boot.img", {chip, "", ""});
        const Lookup sig = firmware.resolve("boot.sig", {chip, "", ""});
        ASSERT_TRUE(img.found() && sig.found());
        const std::string served = text(*img.file);
        EXPECT_EQ(test::sha256Hex(served), test::sha256Hex(readText(fixtureImage)));
        const SignatureFile parsed = SignatureFile::parse(text(*sig.file), "boot.sig");
        EXPECT_EQ(parsed.sha256, test::sha256Hex(served));
        ASSERT_TRUE(parsed.rsa2048);
        EXPECT_TRUE(key.opensslVerifies(served, *parsed.rsa2048));
    }
}

TEST(GeneratedProfile, SecureBootMsdWithAMismatchedPublicKeyFails) {
    ScratchDir dir;
    OpensslKey key;
    OpensslKey other;
    dir.write("secure-boot-msd/boot.img", "a boot image");
    Profile profile = shippedProfile("secure-boot-msd", dir.path());
    profile.signBootImage->signing.signingKey = key.privatePem;
    profile.signBootImage->signing.publicKey = other.publicPem;
    expectGenerationError(profile, Errc::Crypto, "boot.img");
}

}  // namespace
}  // namespace rpiboot
