// Secure boot end to end on virtual boards: profiles build counter-signed
// BCM2712 loaders, signed EEPROM images and boot.sig at load; locked boards
// (test/virtualpi) check them as the ROM and firmware do and refuse what is
// not signed with the key in their OTP; recovery programs OTP. Expected
// values come from the openssl command line, never from the code under test.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "rpiboot/image/eeprom_image.hpp"
#include "rpiboot/profile/daemon_config.hpp"
#include "rpiboot/profile/generated_files.hpp"
#include "rpiboot/profile/profile.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/pkcs11_signer.hpp"
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
const fs::path kFixtures{RPIBOOT_FIXTURES_DIR};
constexpr std::int64_t kTimestamp = 1700000000;

int sh(const std::string& command) {
    return std::system((command + " >/dev/null 2>&1").c_str());
}

std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

Bytes bytesOf(std::span<const std::uint8_t> s) {
    return Bytes(s.begin(), s.end());
}

// An RSA-2048 key pair made by the openssl CLI, with its pubkey.bin and
// key hash computed from `openssl rsa -modulus`.
struct Key {
    ScratchDir dir;
    fs::path privatePem = dir / "private.pem";
    fs::path publicPem = dir / "public.pem";
    Key() {
        EXPECT_EQ(sh("openssl genrsa -out '" + privatePem.string() + "' 2048"), 0);
        EXPECT_EQ(sh("openssl rsa -in '" + privatePem.string() + "' -pubout -out '" +
                     publicPem.string() + "'"),
                  0);
    }
    Bytes pubkeyBin() const {
        const fs::path out = dir / "modulus.txt";
        EXPECT_EQ(std::system(("openssl rsa -in '" + privatePem.string() + "' -noout -modulus > '" +
                               out.string() + "'")
                                  .c_str()),
                  0);
        std::string line = slurp(out);
        line = line.substr(line.find('=') + 1, 512);
        const Bytes modulus = fromHex(line, "modulus");
        Bytes bin(modulus.rbegin(), modulus.rend());
        const Bytes exponent{0x01, 0x00, 0x01, 0, 0, 0, 0, 0};
        bin.insert(bin.end(), exponent.begin(), exponent.end());
        return bin;
    }
    std::string hash() const {
        const Bytes bin = pubkeyBin();
        return test::sha256Hex(std::string(bin.begin(), bin.end()));
    }
    // `openssl dgst -sha256 -verify` of `signature` over `data`.
    bool verifies(const Bytes& data, const Bytes& signature) const {
        const fs::path d = dir / "data.bin";
        const fs::path s = dir / "sig.bin";
        std::ofstream(d, std::ios::binary)
            .write(reinterpret_cast<const char*>(data.data()),
                   static_cast<std::streamsize>(data.size()));
        std::ofstream(s, std::ios::binary)
            .write(reinterpret_cast<const char*>(signature.data()),
                   static_cast<std::streamsize>(signature.size()));
        return sh("openssl dgst -sha256 -verify '" + publicPem.string() + "' -signature '" +
                  s.string() + "' '" + d.string() + "'") == 0;
    }
};

std::uint32_t le32(const Bytes& b, std::size_t at) {
    return std::uint32_t{b[at]} | (std::uint32_t{b[at + 1]} << 8) |
           (std::uint32_t{b[at + 2]} << 16) | (std::uint32_t{b[at + 3]} << 24);
}

// Checks that `signedLoader` is `original` plus one block (§10.6) by `key`.
void expectCounterSigned(const Bytes& original, const Bytes& signedLoader, const Key& key) {
    ASSERT_EQ(signedLoader.size(), original.size() + 532);
    EXPECT_TRUE(std::equal(original.begin(), original.end(), signedLoader.begin()));
    const std::size_t at = original.size();
    EXPECT_EQ(le32(signedLoader, at), at);
    EXPECT_EQ(le32(signedLoader, at + 4), 16u);
    EXPECT_EQ(le32(signedLoader, at + 8), 0u);
    const Bytes covered(signedLoader.begin(), signedLoader.begin() + static_cast<long>(at + 12));
    const Bytes signature(signedLoader.begin() + static_cast<long>(at + 12),
                          signedLoader.begin() + static_cast<long>(at + 268));
    EXPECT_TRUE(key.verifies(covered, signature));
    const Bytes embedded(signedLoader.begin() + static_cast<long>(at + 268), signedLoader.end());
    EXPECT_EQ(embedded, key.pubkeyBin());
}

// A firmware base laid out as the shipped profiles expect: secure-boot-recovery/
// (per-chip base images, boot.conf, a config.txt that asks for everything),
// recovery/ with the loaders, bootfiles.bin and secure-boot-msd/.
struct Tree {
    ScratchDir dir;
    Bytes eeprom2711 = test::makeEeprom2711();
    Bytes eeprom2712 = test::makeEeprom2712();
    Bytes loader2712;
    Tree() {
        dir.writeBytes("secure-boot-recovery/2711/pieeprom.original.bin", eeprom2711);
        dir.writeBytes("secure-boot-recovery/2712/pieeprom.original.bin", eeprom2712);
        dir.write("secure-boot-recovery/boot.conf", slurp(kFixtures / "recovery/boot.conf"));
        // The generated config.txt must not inherit these from the file on disk.
        dir.write("secure-boot-recovery/config.txt",
                  "uart_2ndstage=1\nprogram_pubkey=1\nrevoke_devkey=1\nprogram_jtag_lock=1\n"
                  "recovery_metadata=0\nprogram_rpiboot_gpio=8\neeprom_write_protect=1\n");
        dir.write("recovery/2711/bootcode4.bin", slurp(kFixtures / "2711/bootcode4.bin"));
        fs::copy_file(kFixtures / "bootfiles.bin", dir / "bootfiles.bin");
        EXPECT_EQ(
            sh("cd '" + dir.path().string() + "' && tar -xf bootfiles.bin 2712/bootcode5.bin"), 0);
        const std::string rpiSigned = slurp(dir / "2712/bootcode5.bin");
        loader2712.assign(rpiSigned.begin(), rpiSigned.end());
        // The 2712 recovery loader stands in as the Raspberry-Pi-signed bootcode5.bin.
        dir.write("recovery/2712/bootcode5.bin", rpiSigned);
        fs::remove_all(dir / "2712");
        fs::create_directories(dir / "secure-boot-msd");
        fs::copy_file(kFixtures / "mass-storage-gadget64/boot-secure-msd.img",
                      dir / "secure-boot-msd/boot.img");
        dir.write("secure-boot-msd/config.txt", "[all]\n");
        dir.write("mass-storage-gadget64/config.txt", "[all]\n");
    }
    Profile profile(const std::string& name, const Key& key) const {
        Profile p = loadProfileFile(kSource / "config/profiles" / (name + ".json"), dir.path());
        if (p.eeprom) {
            p.eeprom->signing.signingKey = key.privatePem;
        }
        if (p.signBootImage) {
            p.signBootImage->signing.signingKey = key.privatePem;
        }
        return p;
    }
};

struct Activated {
    std::unique_ptr<FirmwareSet> firmware;
    BootOptions options;
};

// What the daemon does at load: generate, derive the expected reports.
Activated activate(Profile profile) {
    FirmwareSetConfig config = profile.firmwareSetConfig();
    config.generated = generateProfileFiles(profile, kTimestamp);
    profile.expectedReports = expectedReports(profile, config.generated);
    Activated a;
    a.options = profile.bootOptions();
    a.options.timeouts.controlIn = std::chrono::milliseconds(400);
    a.options.fileServer.idleTimeoutsAllowed = 1;
    a.firmware = std::make_unique<FirmwareSet>(std::move(config), std::make_shared<FileCache>());
    return a;
}

struct BoardRun {
    test::HostResult host;
    virtualpi::BoardRecord record;
    virtualpi::Outcome outcome = virtualpi::Outcome::Running;
};

BoardRun boot(virtualpi::Scenario scenario, const Activated& a) {
    virtualpi::VirtualBus bus;
    const std::string port = bus.plug({scenario, "1-1.2", {}});
    BoardRun r;
    r.host = test::serveBoard(bus, port, *a.firmware, a.options, std::chrono::seconds(5));
    auto board = bus.board(port);
    // A ROM that refused its loader keeps waiting: do not wait long for it.
    r.outcome = board->waitForOutcome(r.host.error.find("rejected the loader") == std::string::npos
                                          ? std::chrono::seconds(5)
                                          : std::chrono::milliseconds(100));
    r.record = board->record();
    return r;
}

bool logHas(const virtualpi::BoardRecord& record, const std::string& text) {
    for (const auto& line : record.log) {
        if (line.find(text) != std::string::npos) {
            return true;
        }
    }
    return record.reason.find(text) != std::string::npos;
}

// --- what the profiles build ------------------------------------------------------

TEST(SecureBootProfiles, Recovery5CounterSignsTheEepromLoadersAndRecoveryBin) {
    Tree tree;
    Key key;
    const Profile profile = tree.profile("secure-boot-recovery5", key);
    const auto files = generateProfileFiles(profile, kTimestamp);

    // recovery.bin served to the 2712 ROM: Raspberry Pi's loader + our block.
    expectCounterSigned(tree.loader2712, bytesOf(files.at("2712/bootcode5.bin").bytes), key);

    // The EEPROM's bootcode (first section) and bootsys, counter-signed in place.
    const EepromImage original = EepromImage::parse(tree.eeprom2712, "original");
    const EepromImage built =
        EepromImage::parse(bytesOf(files.at("2712/pieeprom.bin").bytes), "built");
    expectCounterSigned(original.bootcode(), built.bootcode(), key);
    expectCounterSigned(*original.file("bootsys"), *built.file("bootsys"), key);
    EXPECT_EQ(*built.file("pubkey.bin"), key.pubkeyBin());
    // BCM2711 has no customer counter-signing: its bootcode is untouched.
    const EepromImage built2711 =
        EepromImage::parse(bytesOf(files.at("2711/pieeprom.bin").bytes), "built");
    EXPECT_EQ(built2711.bootcode(), EepromImage::parse(tree.eeprom2711, "o").bootcode());
    EXPECT_EQ(files.count("2711/bootcode4.bin"), 0u);
}

TEST(SecureBootProfiles, IrreversibleSwitchesComeOnlyFromTheProfile) {
    Tree tree;
    Key key;
    Profile profile = tree.profile("secure-boot-recovery", key);
    for (const char* chip : {"2711", "2712"}) {
        const auto files = generateProfileFiles(profile, kTimestamp);
        const ServedFile& config = files.at(std::string(chip) + "/config.txt");
        const std::string text(config.bytes.begin(), config.bytes.end());
        EXPECT_NE(text.find("uart_2ndstage=1\n"), std::string::npos) << text;
        EXPECT_NE(text.find("program_pubkey=0\n"), std::string::npos) << text;
        EXPECT_NE(text.find("revoke_devkey=0\n"), std::string::npos) << text;
        EXPECT_NE(text.find("program_jtag_lock=0\n"), std::string::npos) << text;
        EXPECT_EQ(text.find("=1\nprogram"), std::string::npos) << text;
        EXPECT_EQ(text.find("recovery_metadata=0"), std::string::npos) << text;
        EXPECT_EQ(text.find("program_rpiboot_gpio"), std::string::npos) << text;
        EXPECT_EQ(text.find("eeprom_write_protect"), std::string::npos) << text;
    }
    profile.eeprom->eepromWriteProtect = true;
    profile.eeprom->programPubkey = true;
    const auto files = generateProfileFiles(profile, kTimestamp);
    const ServedFile& config = files.at("2711/config.txt");
    const std::string text(config.bytes.begin(), config.bytes.end());
    EXPECT_NE(text.find("program_pubkey=1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("program_jtag_lock=0\n"), std::string::npos) << text;
    EXPECT_NE(text.find("eeprom_write_protect=1\n"), std::string::npos) << text;
}

TEST(SecureBootProfiles, ShippedProfilesKeepIrreversibleSwitchesOff) {
    for (const char* name : {"secure-boot-recovery", "secure-boot-recovery5"}) {
        const Profile p =
            loadProfileFile(kSource / "config/profiles" / (std::string(name) + ".json"), "/fw");
        ASSERT_TRUE(p.eeprom) << name;
        EXPECT_FALSE(p.irreversible()) << name;
        EXPECT_TRUE(p.eeprom->counterSign) << name;
    }
    const Profile erase = loadProfileFile(kSource / "config/profiles/eeprom-erase.json", "/fw");
    EXPECT_EQ(erase.firmware.root, "/fw/eeprom-erase");
}

TEST(SecureBootProfiles, SwitchesWithoutAKeyAreRejected) {
    const std::string head =
        R"({"name": "p", "firmware": {"root": "r"}, "eeprom": {"image": "a", "config": "b", )";
    for (const char* key :
         {"program_pubkey", "revoke_devkey", "program_jtag_lock", "counter_sign"}) {
        try {
            parseProfile(head + "\"" + key + "\": true}}", "p.json", "/fw");
            ADD_FAILURE() << key;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(std::string("/eeprom/") + key +
                                                 ": needs the customer key"),
                      std::string::npos)
                << e.what();
        }
    }
    try {
        parseProfile(head + R"("signing_key": "pkcs11:token=t;object=k"}})", "p.json", "/fw");
        ADD_FAILURE() << "pkcs11 without module";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/eeprom/pkcs11_module: missing"), std::string::npos)
            << e.what();
    }
    const Profile ok = parseProfile(
        head +
            R"("signing_key": "pkcs11:token=t;object=k", "pkcs11_module": "/usr/lib/softhsm/libsofthsm2.so"}})",
        "p.json", "/fw");
    EXPECT_EQ(ok.eeprom->signing.signingKey.string(), "pkcs11:token=t;object=k");
}

// --- the daemon's selection rules -----------------------------------------------------

TEST(SecureBootProfiles, IrreversibleProfilesNeedRulesNamingPortsOrSerials) {
    const std::vector<ProfileText> builtins{
        {"msd.json", R"({"name": "msd", "firmware": {"root": "msd"}})"},
        {"lock.json",
         R"({"name": "lock", "firmware": {"root": "r"}, "eeprom": {"image": "a", "config": "b",
             "signing_key": "/k.pem", "program_pubkey": true}})"}};
    auto build = [&](const std::string& daemonJson) {
        DaemonConfig c = parseDaemonConfig(daemonJson, "rpibootd.json");
        c.profilesDir.clear();
        return buildConfiguration(std::move(c), builtins);
    };
    auto rejected = [&](const std::string& daemonJson, const std::string& expected) {
        try {
            build(daemonJson);
            ADD_FAILURE() << "accepted: " << daemonJson;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
        }
    };
    rejected(R"({"rules": [{"profile": "lock"}]})", "must name a port or a serial");
    rejected(R"({"rules": [{"chip": "2711", "profile": "lock"}]})", "must name a port or a serial");
    rejected(R"({"rules": [{"port": "*", "profile": "lock"}]})", "must name a port or a serial");
    rejected(R"({"default_profile": "lock"})", "cannot be the default");
    EXPECT_NO_THROW(build(R"({"rules": [{"port": "1-1.3", "profile": "lock"}]})"));
    EXPECT_NO_THROW(build(R"({"rules": [{"serial": "a7eb274c", "profile": "lock"}]})"));
}

TEST(SecureBootProfiles, UnmetReportsNameTheKeyAndTheMeaning) {
    const std::vector<ExpectedReport> expected{
        {"SECURE_BOOT_PROVISION", "success", Chip::Bcm2711, "the customer key was not programmed"},
        {"CUSTOMER_KEY_HASH", "AB", std::nullopt, "OTP holds another customer key"}};
    EXPECT_EQ(
        unmetReport(expected, {{"SECURE_BOOT_PROVISION", "success"}, {"CUSTOMER_KEY_HASH", "ab"}},
                    Chip::Bcm2711),
        std::nullopt);
    EXPECT_EQ(*unmetReport(expected, {{"SECURE_BOOT_PROVISION", "failed"}}, Chip::Bcm2711),
              "the board reported SECURE_BOOT_PROVISION=failed instead of success: the customer "
              "key was not programmed");
    EXPECT_EQ(*unmetReport(expected, {}, Chip::Bcm2712),
              "the board did not report CUSTOMER_KEY_HASH (expected CUSTOMER_KEY_HASH=AB): OTP "
              "holds another customer key");
}

// --- provisioning on virtual boards -------------------------------------------------

class Provision : public ::testing::TestWithParam<Chip> {};

TEST_P(Provision, RecoveryProgramsTheKeyThenReportsItAlreadyProgrammed) {
    const Chip chip = GetParam();
    Tree tree;
    Key key;
    Profile profile = tree.profile("secure-boot-recovery", key);
    profile.eeprom->programPubkey = true;
    profile.eeprom->programJtagLock = true;
    const Activated a = activate(profile);
    const auto scenario = virtualpi::builtinScenario(chip, virtualpi::Profile::Recovery);

    const BoardRun first = boot(scenario, a);
    ASSERT_EQ(first.host.error, "");
    EXPECT_EQ(first.outcome, virtualpi::Outcome::Succeeded) << first.record.reason;
    EXPECT_EQ(first.record.secureBoot.otpKeyHash, key.hash());
    EXPECT_TRUE(first.record.secureBoot.jtagLocked);
    EXPECT_FALSE(first.record.secureBoot.devkeyRevoked);  // not asked for
    ASSERT_TRUE(first.host.files);
    EXPECT_EQ(first.host.files->metadata.at("SECURE_BOOT_PROVISION"), "success");
    EXPECT_EQ(first.host.files->metadata.at("CUSTOMER_KEY_HASH"), key.hash());
    EXPECT_EQ(first.host.files->metadata.at("JTAG_LOCKED"), "1");
    EXPECT_TRUE(logHas(first.record, "programmed key " + key.hash()));

    // The same board again, now locked: a BCM2712 ROM needs recovery.bin
    // counter-signed (upstream's -r). OTP unchanged, the key already there.
    profile.eeprom->counterSignRecovery = chip == Chip::Bcm2712;
    virtualpi::Scenario again = scenario;
    again.secureBoot = first.record.secureBoot;
    const BoardRun second = boot(again, activate(profile));
    ASSERT_EQ(second.host.error, "");
    EXPECT_EQ(second.record.secureBoot.otpKeyHash, key.hash());
    EXPECT_TRUE(logHas(second.record, "already programmed"));
}

TEST_P(Provision, ABoardLockedToAnotherKeyEndsFailedWithTheReason) {
    const Chip chip = GetParam();
    Tree tree;
    Key key;
    Key other;
    Profile profile = tree.profile("secure-boot-recovery", key);
    profile.eeprom->programPubkey = true;
    profile.eeprom->counterSignRecovery = chip == Chip::Bcm2712;
    const Activated a = activate(profile);
    virtualpi::Scenario scenario = virtualpi::builtinScenario(chip, virtualpi::Profile::Recovery);
    scenario.secureBoot.otpKeyHash = other.hash();
    const BoardRun run = boot(scenario, a);
    if (chip == Chip::Bcm2712) {
        // The locked ROM refuses recovery.bin signed with another key.
        EXPECT_NE(run.host.error.find("rejected the loader"), std::string::npos) << run.host.error;
        ASSERT_FALSE(run.record.romAttempts.empty());
        EXPECT_NE(run.record.romAttempts.back().reason.find("OTP holds " + other.hash()),
                  std::string::npos)
            << run.record.romAttempts.back().reason;
    } else {
        EXPECT_NE(run.host.error.find("SECURE_BOOT_PROVISION=failed"), std::string::npos)
            << run.host.error;
        EXPECT_NE(run.host.error.find("not programmed"), std::string::npos) << run.host.error;
        EXPECT_TRUE(logHas(run.record, "not signed with the key in OTP"));
    }
    EXPECT_EQ(run.record.secureBoot.otpKeyHash, other.hash());
}

TEST_P(Provision, ALockedBoardTakesAnUpdateSignedWithItsKey) {
    const Chip chip = GetParam();
    Tree tree;
    Key key;
    Profile profile = tree.profile("secure-boot-recovery5", key);
    const Activated a = activate(profile);
    virtualpi::Scenario scenario = virtualpi::builtinScenario(chip, virtualpi::Profile::Recovery);
    scenario.secureBoot.otpKeyHash = key.hash();
    const BoardRun run = boot(scenario, a);
    EXPECT_EQ(run.host.error, "");
    EXPECT_EQ(run.outcome, virtualpi::Outcome::Succeeded) << run.record.reason;
    ASSERT_TRUE(run.host.files);
    EXPECT_EQ(run.host.files->metadata.at("EEPROM_UPDATE"), "success");
}

std::string chipName(const ::testing::TestParamInfo<Chip>& p) {
    return p.param == Chip::Bcm2711 ? "Bcm2711" : "Bcm2712";
}
INSTANTIATE_TEST_SUITE_P(Chips, Provision, ::testing::Values(Chip::Bcm2711, Chip::Bcm2712),
                         chipName);

// --- locked boards booting the signed gadget ------------------------------------------

class LockedGadget : public ::testing::TestWithParam<Chip> {};

TEST_P(LockedGadget, BootsWithTheRightKeyAndStopsWithAWrongOne) {
    const Chip chip = GetParam();
    Tree tree;
    Key key;
    Key other;
    virtualpi::BuiltinOptions options;
    options.secureBoot = true;
    virtualpi::Scenario scenario =
        virtualpi::builtinScenario(chip, virtualpi::Profile::MassStorageGadget, options);
    scenario.secureBoot.otpKeyHash = key.hash();
    scenario.secureBoot.eepromPubkey = toHex(key.pubkeyBin());

    const BoardRun good = boot(scenario, activate(tree.profile("secure-boot-msd", key)));
    EXPECT_EQ(good.host.error, "");
    EXPECT_EQ(good.outcome, virtualpi::Outcome::Succeeded) << good.record.reason;
    EXPECT_TRUE(logHas(good.record, "boot.sig verified"));

    const BoardRun bad = boot(scenario, activate(tree.profile("secure-boot-msd", other)));
    EXPECT_NE(bad.host.error, "");
    EXPECT_NE(bad.outcome, virtualpi::Outcome::Succeeded);
    if (chip == Chip::Bcm2712) {
        // The ROM refuses the loader and waits for another one.
        EXPECT_NE(bad.host.error.find("rejected the loader"), std::string::npos) << bad.host.error;
        EXPECT_NE(
            bad.record.romAttempts.back().reason.find("counter-signed with key " + other.hash()),
            std::string::npos);
    } else {
        EXPECT_NE(bad.record.reason.find("refused boot.img"), std::string::npos)
            << bad.record.reason;
    }
}

INSTANTIATE_TEST_SUITE_P(Chips, LockedGadget, ::testing::Values(Chip::Bcm2711, Chip::Bcm2712),
                         chipName);

// --- BCM2835 signed boot (-s) -------------------------------------------------------

TEST(SignedBoot2835, TheBootMessageCarriesBootcodeSig) {
    ScratchDir dir;
    dir.write("msd/bootcode.bin", slurp(kFixtures / "msd/bootcode.bin"));
    dir.write("msd/start.elf", "start.elf stand-in");
    const std::string sig = "0123456789abcdefghij-and-more";
    dir.write("msd/bootcode.sig", sig);
    Profile profile = loadProfileFile(kSource / "config/profiles/msd.json", dir.path());
    profile.signedBoot = true;
    const Activated a = activate(profile);
    virtualpi::Scenario scenario =
        virtualpi::builtinScenario(Chip::Bcm2835, virtualpi::Profile::Msd);
    scenario.rom.signature = toHex(Bytes(sig.begin(), sig.begin() + 20));
    const BoardRun good = boot(scenario, a);
    EXPECT_EQ(good.host.error, "");
    EXPECT_EQ(good.outcome, virtualpi::Outcome::Succeeded) << good.record.reason;
    ASSERT_FALSE(good.record.romAttempts.empty());
    EXPECT_EQ(good.record.romAttempts.front().signatureHex, *scenario.rom.signature);

    // A board expecting another signature refuses the upload.
    scenario.rom.signature = std::string(40, 'f');
    scenario.rom.returnCodes = {0};
    const BoardRun bad = boot(scenario, a);
    EXPECT_NE(bad.host.error.find("rejected the loader"), std::string::npos) << bad.host.error;
}

}  // namespace
}  // namespace rpiboot
