// rpiboot-sign-bootcode: counter-signs a BCM2712 second-stage loader
// (bootcode5.bin, recovery.bin, an EEPROM's bootcode or bootsys) with the
// customer key, the equivalent of Raspberry Pi's rpi-sign-bootcode for
// secure boot (protocol.md §10.6), and lists the signature blocks of a loader.
#include <getopt.h>

#include <iostream>
#include <optional>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/bootcode_signature.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/pkcs11_signer.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot/signing/signature_file.hpp"
#include "tool_main.hpp"

namespace {

using namespace rpiboot;
using rpiboot::tools::UsageError;

constexpr const char* kName = "rpiboot-sign-bootcode";

void usage() {
    std::cout
        << "Usage:\n"
           "  "
        << kName
        << " -c 2712 -i LOADER -o OUT (-k KEY [-P MODULE] | -H WRAPPER -p PUBLIC.pem)\n"
           "        [-n KEYNUM] [-v VERSION]\n"
           "      append a signature block to LOADER (counter-signing)\n"
           "  "
        << kName
        << " -c 2712 -e LOADER\n"
           "      list the signature blocks of LOADER and check each one\n"
           "\n"
           "  -c CHIP      2712; BCM2711 loaders cannot be counter-signed by customers\n"
           "  -i LOADER    the loader to sign (usually already signed by Raspberry Pi)\n"
           "  -o OUT       where to write the signed loader\n"
           "  -k KEY       RSA-2048 private key: a PEM file or a pkcs11: URI\n"
           "  -P MODULE    PKCS#11 module for a pkcs11: key (default: $RPIBOOT_PKCS11_MODULE)\n"
           "  -H WRAPPER   sign through 'WRAPPER -a rsa2048-sha256 FILE' (needs -p)\n"
           "  -p PUBLIC    the public key (PEM) to embed; checked against the signature\n"
           "  -n KEYNUM    key number stored in the block: 16 (customer, default) or 0-4\n"
           "  -v VERSION   anti-rollback version 0-32 (default 0)\n"
           "  -e LOADER    list the signature blocks of LOADER\n"
           "  -h           show this help\n";
}

struct Options {
    std::string chip;
    std::string input;
    std::string output;
    tools::SignerOptions signer;
    std::string pub;
    std::string extract;
    std::uint32_t keyNumber = kCustomerKeyNumber;
    std::uint32_t version = 0;
    bool help = false;
};

std::uint32_t number(const char* text, const char* what) {
    std::string s(text);
    if (s.empty() || s.size() > 3 || s.find_first_not_of("0123456789") != std::string::npos) {
        throw UsageError(std::string(what) + " must be a small decimal number, not '" + s + "'");
    }
    return static_cast<std::uint32_t>(std::stoul(s));
}

Options parse(int argc, char** argv) {
    Options o;
    opterr = 0;
    int c = 0;
    while ((c = getopt(argc, argv, ":c:i:o:k:P:H:p:n:v:e:dh")) != -1) {
        switch (c) {
            case 'c':
                o.chip = optarg;
                break;
            case 'i':
                o.input = optarg;
                break;
            case 'o':
                o.output = optarg;
                break;
            case 'p':
                o.pub = optarg;
                break;
            case 'n':
                o.keyNumber = number(optarg, "the key number (-n)");
                break;
            case 'v':
                o.version = number(optarg, "the version (-v)");
                break;
            case 'e':
                o.extract = optarg;
                break;
            case 'd':
                break;  // accepted for compatibility; there is no debug output
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
    if (o.chip == "2711") {
        throw UsageError(
            "BCM2711 loaders carry only Raspberry Pi's signature; the 2711 boot ROM checks no "
            "customer counter-signature");
    }
    if (o.chip != "2712") {
        throw UsageError("give the chip with -c 2712");
    }
    if (!o.extract.empty()) {
        if (!o.input.empty() || !o.output.empty()) {
            throw UsageError("-e cannot be combined with -i or -o");
        }
        return o;
    }
    if (o.input.empty() || o.output.empty()) {
        throw UsageError("signing needs -i LOADER and -o OUT");
    }
    if (o.signer.key.empty() == o.signer.hsm.empty()) {
        throw UsageError("give exactly one signer: -k KEY or -H WRAPPER");
    }
    if (!o.signer.hsm.empty() && o.pub.empty()) {
        throw UsageError("-H needs the public key with -p PUBLIC.pem, to embed and check it");
    }
    return o;
}

int listBlocks(const std::string& path) {
    const Bytes loader = readFileBytes(path);
    const auto blocks = bootcodeSignatures2712(loader);
    if (blocks.empty()) {
        std::cout << path << ": no BCM2712 signature block\n";
        return 1;
    }
    bool allGood = true;
    for (const auto& b : blocks) {
        const bool ok = verifyBootcodeBlock2712(loader, b);
        allGood = allGood && ok;
        std::cout << "block at " << b.offset << ": keynum " << b.keyNumber << " version "
                  << b.version << " key-hash " << sha256Hex(b.pubkeyBin) << " signature "
                  << (ok ? "good" : "BAD") << "\n";
    }
    return allGood ? 0 : 1;
}

int run(const Options& o) {
    if (!o.extract.empty()) {
        return listBlocks(o.extract);
    }
    std::unique_ptr<Signer> signer = o.signer.open();
    std::optional<RsaKey> pub;
    if (!o.pub.empty()) {
        pub = RsaKey::loadPem(o.pub);
    }
    const RsaKey* key = pub ? &*pub : signer->publicKey();
    if (key == nullptr) {
        throw UsageError("the public key is unknown: give it with -p PUBLIC.pem");
    }
    const Bytes loader = readFileBytes(o.input);
    const Bytes signedLoader = signBootcode2712(loader, *signer, *key, o.keyNumber, o.version);
    writeFileBytes(o.output, signedLoader);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return rpiboot::tools::runTool(kName, argc, argv, parse, usage, run);
}
