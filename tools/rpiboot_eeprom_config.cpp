// rpiboot-eeprom-config: reads and replaces the bootloader configuration of a
// pieeprom image, a subset of Raspberry Pi's rpi-eeprom-config (docs/protocol.md §10).
#include <getopt.h>

#include <iostream>
#include <optional>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/image/eeprom_image.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot/signing/signature_file.hpp"
#include "tool_main.hpp"

namespace {

using namespace rpiboot;
using rpiboot::tools::UsageError;

constexpr const char* kName = "rpiboot-eeprom-config";

void usage() {
    std::cout
        << "Usage:\n"
           "  "
        << kName
        << " IMAGE\n"
           "      print the bootloader configuration (bootconf.txt) of IMAGE\n"
           "  "
        << kName
        << " [--config FILE] [--digest SIG] [--pubkey PEM] --out OUT IMAGE\n"
           "      write a copy of IMAGE with the given parts replaced\n"
           "\n"
           "  -c, --config FILE   new bootconf.txt (at most 4076 bytes)\n"
           "  -d, --digest SIG    embed SIG (from rpiboot-digest -k) as bootconf.sig; its\n"
           "                      digest must match the configuration\n"
           "  -p, --pubkey PEM    embed the RSA-2048 public key (a public or private PEM) as\n"
           "                      pubkey.bin\n"
           "  -o, --out OUT       where to write the new image\n"
           "  -h, --help          show this help\n";
}

struct Options {
    std::string config;
    std::string digest;
    std::string pubkey;
    std::string out;
    std::string image;
    bool help = false;
};

Options parse(int argc, char** argv) {
    static const option kLong[] = {
        {"config", required_argument, nullptr, 'c'}, {"digest", required_argument, nullptr, 'd'},
        {"pubkey", required_argument, nullptr, 'p'}, {"out", required_argument, nullptr, 'o'},
        {"help", no_argument, nullptr, 'h'},         {nullptr, 0, nullptr, 0}};
    Options o;
    opterr = 0;
    int c = 0;
    while ((c = getopt_long(argc, argv, ":c:d:p:o:h", kLong, nullptr)) != -1) {
        switch (c) {
            case 'c':
                o.config = optarg;
                break;
            case 'd':
                o.digest = optarg;
                break;
            case 'p':
                o.pubkey = optarg;
                break;
            case 'o':
                o.out = optarg;
                break;
            case 'h':
                o.help = true;
                return o;
            case ':':
                throw UsageError(std::string("option ") + argv[optind - 1] + " needs a value");
            default:
                throw UsageError(std::string("unknown option ") + argv[optind - 1]);
        }
    }
    if (optind + 1 != argc) {
        throw UsageError(optind == argc ? "no EEPROM image given"
                                        : "give exactly one EEPROM image");
    }
    o.image = argv[optind];
    bool modifies = !o.config.empty() || !o.digest.empty() || !o.pubkey.empty();
    if (modifies && o.out.empty()) {
        throw UsageError("--config, --digest and --pubkey need --out OUT for the new image");
    }
    if (!modifies && !o.out.empty()) {
        throw UsageError("--out needs something to change: --config, --digest or --pubkey");
    }
    return o;
}

// The embedded signature must be of the configuration it sits next to, and of
// the key the board will check it with, or the bootloader rejects the config.
void checkDigest(const SignatureFile& sig, const EepromImage& image, const std::string& sigName,
                 const std::optional<RsaKey>& key) {
    Bytes conf = *image.file("bootconf.txt");
    verifyDigest(conf, sig, "the configuration in " + image.origin(), sigName);
    if (key) {
        verifySignatureFile(conf, sig, *key, "the configuration in " + image.origin(), sigName);
    }
}

int run(int argc, char** argv) {
    Options o = parse(argc, argv);
    if (o.help) {
        usage();
        return 0;
    }
    EepromImage image = EepromImage::parse(readFileBytes(o.image), o.image);
    if (o.out.empty()) {
        std::cout << image.bootConfig();
        return 0;
    }
    if (!o.config.empty()) {
        image.setBootConfig(tools::textOf(readFileBytes(o.config)));
    }
    std::optional<RsaKey> key;
    if (!o.pubkey.empty()) {
        key = RsaKey::loadPem(o.pubkey);
        image.setPublicKey(*key);
    }
    if (!o.digest.empty()) {
        std::string sigText = tools::textOf(readFileBytes(o.digest));
        SignatureFile sig = SignatureFile::parse(sigText, o.digest);
        if (!key && sig.rsa2048) {
            // Check against the key already in the image, if it holds one.
            if (auto bin = image.file("pubkey.bin"); bin && bin->size() == kPubkeyBinSize) {
                try {
                    key = RsaKey::fromPubkeyBin(*bin, "pubkey.bin in " + o.image);
                } catch (const Error&) {
                    // A blank placeholder key: nothing to check against.
                }
            }
        }
        checkDigest(sig, image, o.digest, key);
        image.setBootConfigSignature(sigText);
    }
    writeFileBytes(o.out, image.bytes());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return rpiboot::tools::runTool(kName, [&] { return run(argc, argv); });
}
