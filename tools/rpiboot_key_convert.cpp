// rpiboot-key-convert: converts an RSA-2048 key between PEM and the
// bootloader's 264-byte pubkey.bin encoding (modulus then exponent, both
// little-endian; protocol.md §10.4), like Raspberry Pi's
// rpi-bootloader-key-convert, and prints the key hash burnt into OTP.
#include <getopt.h>

#include <iostream>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/pkcs11_signer.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot/signing/signature_file.hpp"
#include "tool_main.hpp"

namespace {

using namespace rpiboot;
using rpiboot::tools::UsageError;

constexpr const char* kName = "rpiboot-key-convert";

void usage() {
    std::cout << "Usage: " << kName
              << " [--inform pem|bin] [--hash] [-o OUT] KEY\n"
                 "\n"
                 "With a PEM key (public or private), writes its pubkey.bin encoding (264\n"
                 "bytes); with --inform bin, reads a pubkey.bin and writes the public key as PEM.\n"
                 "Without -o the result goes to standard output.\n"
                 "\n"
                 "  --inform FORMAT  pem (default) or bin\n"
                 "  --hash           print the SHA-256 of the pubkey.bin encoding instead: the\n"
                 "                   value programmed into OTP and reported as CUSTOMER_KEY_HASH\n"
                 "  -o, --output OUT where to write the result\n"
                 "  -h, --help       show this help\n";
}

struct Options {
    std::string inform = "pem";
    std::string output;
    std::string input;
    bool hash = false;
    bool help = false;
};

Options parse(int argc, char** argv) {
    static const option kLong[] = {{"inform", required_argument, nullptr, 'f'},
                                   {"output", required_argument, nullptr, 'o'},
                                   {"hash", no_argument, nullptr, 's'},
                                   {"help", no_argument, nullptr, 'h'},
                                   {nullptr, 0, nullptr, 0}};
    Options o;
    opterr = 0;
    int c = 0;
    while ((c = getopt_long(argc, argv, ":o:h", kLong, nullptr)) != -1) {
        switch (c) {
            case 'f':
                o.inform = optarg;
                break;
            case 'o':
                o.output = optarg;
                break;
            case 's':
                o.hash = true;
                break;
            case 'h':
                o.help = true;
                return o;
            default:
                tools::badLongOption(c, argv);
        }
    }
    if (o.inform != "pem" && o.inform != "bin") {
        throw UsageError("--inform is pem or bin, not '" + o.inform + "'");
    }
    o.input = tools::oneOperand(argc, argv, "key");
    return o;
}

int run(const Options& o) {
    const Bytes in = readFileBytes(o.input);
    const RsaKey key = o.inform == "bin" ? RsaKey::fromPubkeyBin(in, o.input)
                                         : RsaKey::fromPem(tools::textOf(in), o.input);
    Bytes out;
    if (o.hash) {
        const std::string line = sha256Hex(key.pubkeyBin()) + "\n";
        out.assign(line.begin(), line.end());
    } else if (o.inform == "bin") {
        const std::string pem = key.publicPem();
        out.assign(pem.begin(), pem.end());
    } else {
        out = key.pubkeyBin();
    }
    if (o.output.empty()) {
        std::cout.write(reinterpret_cast<const char*>(out.data()),
                        static_cast<std::streamsize>(out.size()));
        return std::cout ? 0 : 1;
    }
    writeFileBytes(o.output, out);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return rpiboot::tools::runTool(kName, argc, argv, parse, usage, run);
}
