// rpiboot-digest: writes and verifies `.sig` files, with the options of
// Raspberry Pi's rpi-eeprom-digest (docs/protocol.md §9).
#include <getopt.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/hsm_signer.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot/signing/signature_file.hpp"
#include "tool_main.hpp"

namespace {

using namespace rpiboot;
using rpiboot::tools::UsageError;

constexpr const char* kName = "rpiboot-digest";

void usage() {
    std::cout << "Usage:\n"
                 "  "
              << kName
              << " -i FILE -o SIG [-k KEY [-P MODULE] | -H WRAPPER] [-c 2711|2712]\n"
                 "  "
              << kName
              << " -i FILE -k PUBLIC.pem -v SIG\n"
                 "\n"
                 "Writes SIG: the SHA-256 of FILE, a 'ts:' line (SOURCE_DATE_EPOCH when set) and,\n"
                 "with a key, an 'rsa2048:' RSA-2048 PKCS#1 v1.5 SHA-256 signature of FILE.\n"
                 "\n"
                 "  -i FILE      the file to digest or verify\n"
                 "  -o SIG       where to write the signature file\n"
                 "  -k KEY       RSA-2048 private key to sign with (PEM file, or a pkcs11: URI\n"
                 "               of a key in a token), or public key PEM with -v\n"
                 "  -P MODULE    PKCS#11 module for a pkcs11: key (default:\n"
                 "               $RPIBOOT_PKCS11_MODULE)\n"
                 "  -H WRAPPER   sign through an HSM: runs 'WRAPPER -a rsa2048-sha256 FILE',\n"
                 "               which must print the signature as hex\n"
                 "  -c SOC       add a 'target-soc:' line (2711 or 2712)\n"
                 "  -v SIG       verify SIG against FILE with the public key given by -k\n"
                 "  -h           show this help\n";
}

struct Options {
    std::string input;
    std::string output;
    tools::SignerOptions signer;
    std::string verify;
    std::optional<std::string> soc;
    bool help = false;
};

Options parse(int argc, char** argv) {
    Options o;
    int c = 0;
    opterr = 0;
    while ((c = getopt(argc, argv, ":i:o:k:H:P:c:v:h")) != -1) {
        switch (c) {
            case 'i':
                o.input = optarg;
                break;
            case 'o':
                o.output = optarg;
                break;
            case 'c':
                o.soc = optarg;
                break;
            case 'v':
                o.verify = optarg;
                break;
            case 'h':
                o.help = true;
                return o;
            default:
                if (!o.signer.take(c, optarg)) {
                    tools::badShortOption(c);
                }
        }
    }
    tools::noOperands(argc, argv);
    if (o.input.empty()) {
        throw UsageError("no input file: give it with -i FILE");
    }
    if (!o.verify.empty()) {
        if (o.signer.key.empty()) {
            throw UsageError("verifying (-v) needs the public key: give it with -k PUBLIC.pem");
        }
        if (!o.output.empty() || !o.signer.hsm.empty()) {
            throw UsageError("-v cannot be combined with -o or -H");
        }
        return o;
    }
    if (o.output.empty()) {
        throw UsageError("no output file: give it with -o SIG (or verify with -v SIG)");
    }
    if (!o.signer.key.empty() && !o.signer.hsm.empty()) {
        throw UsageError("-k and -H both choose a signer; give only one");
    }
    return o;
}

int run(const Options& o) {
    Bytes data = readFileBytes(o.input);
    if (!o.verify.empty()) {
        RsaKey key = RsaKey::loadPem(o.signer.key);
        Bytes sigBytes = readFileBytes(o.verify);
        SignatureFile sig = SignatureFile::parse(tools::textOf(sigBytes), o.verify);
        verifySignatureFile(data, sig, key, o.input, o.verify);
        std::cout << "Verified OK\n";
        return 0;
    }
    std::unique_ptr<Signer> signer = o.signer.open();
    SignatureFile sig = makeSignatureFile(data, signatureTimestamp(), signer.get(), o.soc);
    tools::writeText(o.output, sig.toText());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return rpiboot::tools::runTool(kName, argc, argv, parse, usage, run);
}
