// Digests, RSA-2048 signatures and .sig files, cross-checked with the openssl CLI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/hsm_signer.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot/signing/signature_file.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "rpiboot_test/test_keys.hpp"
#include "rpiboot_test/thrown_by.hpp"

namespace rpiboot {
namespace {

using namespace rpiboot::test;
using ::testing::HasSubstr;

Bytes bytesOf(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

std::string q(const std::filesystem::path& p) {
    return shellQuote(p.string());
}

const std::filesystem::path kFixtures = RPIBOOT_FIXTURES_DIR;

class SignatureTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(testKeys().ok) << "openssl could not make the test keys:\n" << testKeys().log;
    }
    ScratchDir scratch;
    const Bytes data = bytesOf("[all]\nBOOT_UART=1\nBOOT_ORDER=0xf21\n");
};

TEST_F(SignatureTest, Sha256OfRecoveryBootConfMatchesPublishedVector) {
    Bytes conf = readFileBytes(kFixtures / "recovery/boot.conf");
    EXPECT_EQ(sha256Hex(conf), "2e763f6cc60961a4653d901fe2681651840ae6103f1ba98587ee0b319f75949c");
}

TEST_F(SignatureTest, UnsignedSigFileIsHashAndTimestampLines) {
    SignatureFile sig = makeSignatureFile(data, 1700000000);
    std::string text = sig.toText();
    EXPECT_EQ(text, sha256Hex(data) + "\nts: 1700000000\n");
    EXPECT_EQ(text.size(), 80u);
}

TEST_F(SignatureTest, TimestampComesFromSourceDateEpoch) {
    ::setenv("SOURCE_DATE_EPOCH", "1234567890", 1);
    std::int64_t ts = signatureTimestamp();
    ::setenv("SOURCE_DATE_EPOCH", "yesterday", 1);
    Error e = thrownBy([] { signatureTimestamp(); });
    ::unsetenv("SOURCE_DATE_EPOCH");
    EXPECT_EQ(ts, 1234567890);
    EXPECT_EQ(e.code(), Errc::InvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("SOURCE_DATE_EPOCH"));
}

TEST_F(SignatureTest, SignedSigFileIs602BytesAndRoundTrips) {
    KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    SignatureFile sig = makeSignatureFile(data, 1700000000, &signer, "2712");
    std::string text = sig.toText();
    EXPECT_THAT(text, HasSubstr("\ntarget-soc: 2712\nrsa2048: "));
    SignatureFile unsignedSoc = sig;
    unsignedSoc.targetSoc.reset();
    EXPECT_EQ(unsignedSoc.toText().size(), 602u);
    SignatureFile back = SignatureFile::parse(text, "test.sig");
    EXPECT_EQ(back.sha256, sig.sha256);
    EXPECT_EQ(back.timestamp, 1700000000);
    EXPECT_EQ(back.targetSoc, "2712");
    EXPECT_EQ(back.rsa2048, sig.rsa2048);
}

TEST_F(SignatureTest, SignatureMadeHereVerifiesWithOpenssl) {
    KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    writeFileBytes(scratch / "data.bin", data);
    writeFileBytes(scratch / "data.sig.bin", signer.sign(data));
    auto r = run("openssl dgst -sha256 -verify " + q(testKeys().public2048) + " -signature " +
                 q(scratch / "data.sig.bin") + " " + q(scratch / "data.bin"));
    EXPECT_EQ(r.exitCode, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("Verified OK"));
}

TEST_F(SignatureTest, SignatureMadeByOpensslVerifiesHere) {
    writeFileBytes(scratch / "data.bin", data);
    auto r = run("openssl dgst -sha256 -sign " + q(testKeys().private2048) + " -out " +
                 q(scratch / "data.sig.bin") + " " + q(scratch / "data.bin"));
    ASSERT_EQ(r.exitCode, 0) << r.output;
    SignatureFile sig = makeSignatureFile(data, 1);
    sig.rsa2048 = readFileBytes(scratch / "data.sig.bin");
    RsaKey pub = RsaKey::loadPem(testKeys().public2048);
    EXPECT_NO_THROW(verifySignatureFile(data, sig, pub, "data.bin", "data.sig"));
    // PKCS#1 v1.5 is deterministic: our signature is byte-identical to openssl's.
    KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    EXPECT_EQ(signer.sign(data), *sig.rsa2048);
}

TEST_F(SignatureTest, TamperedFileIsRejectedWithDigestMismatch) {
    KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    SignatureFile sig = makeSignatureFile(data, 1, &signer);
    Bytes tampered = data;
    tampered[3] ^= 0x01;
    Error e = thrownBy([&] {
        verifySignatureFile(tampered, sig, RsaKey::loadPem(testKeys().public2048), "boot.img",
                            "boot.sig");
    });
    EXPECT_EQ(e.code(), Errc::Crypto);
    EXPECT_THAT(e.what(), HasSubstr("boot.img does not match boot.sig"));
}

TEST_F(SignatureTest, AlteredSignatureIsRejected) {
    KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    SignatureFile sig = makeSignatureFile(data, 1, &signer);
    (*sig.rsa2048)[100] ^= 0x40;
    Error e = thrownBy([&] {
        verifySignatureFile(data, sig, RsaKey::loadPem(testKeys().public2048), "boot.img",
                            "boot.sig");
    });
    EXPECT_EQ(e.code(), Errc::Crypto);
    EXPECT_THAT(e.what(), HasSubstr("does not verify"));
}

TEST_F(SignatureTest, WrongKeyIsRejected) {
    KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    SignatureFile sig = makeSignatureFile(data, 1, &signer);
    RsaKey other = RsaKey::loadPem(testKeys().otherPublic2048);
    Error e = thrownBy([&] { verifySignatureFile(data, sig, other, "boot.img", "boot.sig"); });
    EXPECT_EQ(e.code(), Errc::Crypto);
    EXPECT_THAT(e.what(), HasSubstr("does not verify for boot.img with the public key"));
    EXPECT_THAT(e.what(), HasSubstr("other2048.pub.pem"));
}

TEST_F(SignatureTest, TruncatedSignatureIsRejected) {
    KeySigner signer(RsaKey::loadPem(testKeys().private2048));
    std::string text = makeSignatureFile(data, 1, &signer).toText();
    std::string cut = text.substr(0, text.size() - 101);  // drops 100 hex digits and the newline
    Error e = thrownBy([&] { SignatureFile::parse(cut, "boot.sig"); });
    EXPECT_EQ(e.code(), Errc::Corrupt);
    EXPECT_THAT(e.what(), HasSubstr("boot.sig has an rsa2048 signature of 412 hex digits instead "
                                    "of 512 (truncated)"));
}

TEST_F(SignatureTest, SigFileCutBeforeTimestampIsRejected) {
    std::string text = makeSignatureFile(data, 1).toText().substr(0, 65);
    Error e = thrownBy([&] { SignatureFile::parse(text, "pieeprom.sig"); });
    EXPECT_EQ(e.code(), Errc::Corrupt);
    EXPECT_THAT(e.what(), HasSubstr("no 'ts:' line"));
}

TEST_F(SignatureTest, BinaryOrEmptyFileIsNotASignatureFile) {
    std::string binary("\x01\x02\0\x03", 4);
    EXPECT_EQ(thrownBy([&] { SignatureFile::parse(binary, "x.sig"); }).code(), Errc::Corrupt);
    EXPECT_EQ(thrownBy([&] { SignatureFile::parse("", "x.sig"); }).code(), Errc::Corrupt);
    EXPECT_THAT(thrownBy([&] { SignatureFile::parse("hello\nts: 1\n", "x.sig"); }).what(),
                HasSubstr("first line must be a SHA-256 digest"));
}

TEST_F(SignatureTest, UnsignedDigestCannotBeVerifiedWithAKey) {
    SignatureFile sig = makeSignatureFile(data, 1);
    Error e = thrownBy([&] {
        verifySignatureFile(data, sig, RsaKey::loadPem(testKeys().public2048), "pieeprom.bin",
                            "pieeprom.sig");
    });
    EXPECT_THAT(e.what(), HasSubstr("pieeprom.sig has no rsa2048 line"));
    EXPECT_NO_THROW(verifyDigest(data, sig, "pieeprom.bin", "pieeprom.sig"));
}

TEST_F(SignatureTest, Rsa3072KeysAreRejectedWithTheReason) {
    for (const auto& path : {testKeys().private3072, testKeys().public3072}) {
        Error e = thrownBy([&] { RsaKey::loadPem(path); });
        EXPECT_EQ(e.code(), Errc::Crypto);
        EXPECT_THAT(e.what(), HasSubstr("is an RSA-3072 key; only RSA-2048 keys are supported"));
    }
}

TEST_F(SignatureTest, NonRsaKeyIsRejectedWithTheReason) {
    Error e = thrownBy([&] { RsaKey::loadPem(testKeys().privateEc); });
    EXPECT_EQ(e.code(), Errc::Crypto);
    EXPECT_THAT(e.what(), HasSubstr("holds a key of type EC; only RSA-2048 keys are supported"));
}

TEST_F(SignatureTest, EncryptedOrGarbagePemIsRejectedWithoutPrompting) {
    Error e = thrownBy([&] { RsaKey::loadPem(testKeys().encrypted2048); });
    EXPECT_EQ(e.code(), Errc::Crypto);
    EXPECT_THAT(e.what(), HasSubstr("does not hold a readable key"));
    Error g = thrownBy([&] { RsaKey::fromPem("not a key", "junk.pem"); });
    EXPECT_THAT(g.what(), HasSubstr("junk.pem does not hold a readable key"));
}

TEST_F(SignatureTest, PublicKeyCannotSign) {
    RsaKey pub = RsaKey::loadPem(testKeys().public2048);
    EXPECT_FALSE(pub.hasPrivateKey());
    EXPECT_THAT(thrownBy([&] { KeySigner signer(std::move(pub)); }).what(),
                HasSubstr("is a public key"));
}

TEST_F(SignatureTest, PubkeyBinHoldsModulusAndExponentLittleEndian) {
    RsaKey key = RsaKey::loadPem(testKeys().private2048);
    Bytes bin = key.pubkeyBin();
    ASSERT_EQ(bin.size(), kPubkeyBinSize);
    auto r = run("openssl rsa -in " + q(testKeys().private2048) + " -noout -modulus");
    ASSERT_EQ(r.exitCode, 0) << r.output;
    std::string modulusHex = r.output.substr(r.output.find('=') + 1, 512);
    Bytes modulusBe = fromHex(modulusHex, "modulus");
    Bytes modulusLe(modulusBe.rbegin(), modulusBe.rend());
    EXPECT_EQ(Bytes(bin.begin(), bin.begin() + 256), modulusLe);
    EXPECT_EQ(Bytes(bin.begin() + 256, bin.end()), (Bytes{0x01, 0x00, 0x01, 0, 0, 0, 0, 0}));
}

TEST_F(SignatureTest, PubkeyBinVerifiesSignaturesOfItsPrivateKey) {
    RsaKey priv = RsaKey::loadPem(testKeys().private2048);
    RsaKey fromBin = RsaKey::fromPubkeyBin(priv.pubkeyBin(), "pubkey.bin");
    EXPECT_TRUE(fromBin.verify(data, priv.sign(data)));
    EXPECT_EQ(fromBin.publicPem(), RsaKey::loadPem(testKeys().public2048).publicPem());
    EXPECT_EQ(thrownBy([] { RsaKey::fromPubkeyBin(Bytes(264, 0), "zero.bin"); }).code(),
              Errc::Crypto);
    EXPECT_EQ(thrownBy([] { RsaKey::fromPubkeyBin(Bytes(100, 1), "short.bin"); }).code(),
              Errc::Corrupt);
}

class HsmSignerTest : public SignatureTest {
  protected:
    std::filesystem::path wrapper(const std::string& body) {
        auto path = scratch / "hsm-wrapper";
        test::writeText(path, "#!/bin/sh\n" + body);
        std::filesystem::permissions(path, std::filesystem::perms::owner_all);
        return path;
    }
};

TEST_F(HsmSignerTest, WrapperSignatureVerifiesWithThePublicKey) {
    auto w = wrapper(
        "[ \"$1\" = -a ] && [ \"$2\" = rsa2048-sha256 ] || exit 9\n"
        "openssl dgst -sha256 -sign " +
        q(testKeys().private2048) + " \"$3\" | od -An -tx1 -v\n");
    HsmSigner signer(w);
    SignatureFile sig = makeSignatureFile(data, 5, &signer);
    EXPECT_NO_THROW(verifySignatureFile(data, sig, RsaKey::loadPem(testKeys().public2048),
                                        "bootconf.txt", "bootconf.sig"));
}

TEST_F(HsmSignerTest, FailingWrapperIsReported) {
    HsmSigner signer(wrapper("echo 'token not present' >&2\nexit 3\n"));
    Error e = thrownBy([&] { signer.sign(data); });
    EXPECT_EQ(e.code(), Errc::Crypto);
    EXPECT_THAT(e.what(), HasSubstr("exited with status 3"));
}

TEST_F(HsmSignerTest, WrapperPrintingNoSignatureIsRejected) {
    HsmSigner signer(wrapper("echo deadbeef\n"));
    Error e = thrownBy([&] { signer.sign(data); });
    EXPECT_THAT(e.what(), HasSubstr("is 8 hex digits; an RSA-2048 signature is 512"));
}

TEST_F(HsmSignerTest, MissingWrapperIsReported) {
    HsmSigner signer(scratch / "no-such-wrapper");
    Error e = thrownBy([&] { signer.sign(data); });
    EXPECT_EQ(e.code(), Errc::NotFound);
    EXPECT_THAT(e.what(), HasSubstr("cannot run the HSM wrapper"));
}

TEST_F(HsmSignerTest, SilentWrapperTimesOut) {
    HsmSigner signer(wrapper("exec sleep 30\n"), std::chrono::milliseconds(200));
    EXPECT_EQ(thrownBy([&] { signer.sign(data); }).code(), Errc::Timeout);
}

}  // namespace
}  // namespace rpiboot
