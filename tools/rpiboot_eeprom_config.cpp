// rpiboot-eeprom-config: reads and replaces the bootloader configuration of a
// pieeprom image, a subset of Raspberry Pi's rpi-eeprom-config (docs/protocol.md §10).
#include <getopt.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "rpiboot/core/error.hpp"
#include "rpiboot/image/eeprom_image.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/rsa_key.hpp"
#include "rpiboot/signing/signature_file.hpp"
#include "tool_main.hpp"

extern char** environ;

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
        << " -x [--out DIR] IMAGE\n"
           "      extract bootcode.bin, bootconf.txt and, where present, bootconf.sig,\n"
           "      pubkey.bin, cacert.der and bootsys into DIR (default: .)\n"
           "  "
        << kName
        << " [--edit | --config FILE] [--digest SIG] [--pubkey PEM] [--bootcode BIN]\n"
           "      [--bootsys BIN] [--cacertder DER] [--timestamp N] --out OUT IMAGE\n"
           "      write a copy of IMAGE with the given parts replaced\n"
           "\n"
           "  -c, --config FILE    new bootconf.txt (at most 4076 bytes)\n"
           "  -e, --edit           edit the current bootconf.txt with $VISUAL or $EDITOR\n"
           "                       (default vi) and use the result as the new one\n"
           "  -d, --digest SIG     embed SIG (from rpiboot-digest -k) as bootconf.sig; its\n"
           "                       digest must match the configuration\n"
           "  -p, --pubkey PEM     embed the RSA-2048 public key (a public or private PEM) as\n"
           "                       pubkey.bin\n"
           "  -b, --bootcode BIN   replace the EEPROM's bootcode (BCM2712 secure boot: the\n"
           "                       loader counter-signed by rpiboot-sign-bootcode)\n"
           "  -s, --bootsys BIN    replace bootsys of an A/B image (BCM2712), likewise\n"
           "      --cacertder DER  replace cacert.der (at most 4076 bytes)\n"
           "  -t, --timestamp N    set the self-update time (updatetime) to N Unix seconds\n"
           "  -x, --extract        extract the image's files (see above)\n"
           "  -o, --out OUT        where to write the new image (or, with -x, the directory)\n"
           "  -h, --help           show this help\n";
}

struct Options {
    std::string config;
    std::string digest;
    std::string pubkey;
    std::string bootcode;
    std::string bootsys;
    std::string cacert;
    std::optional<std::uint32_t> timestamp;
    std::string out;
    std::string image;
    bool edit = false;
    bool extract = false;
    bool help = false;
};

std::uint32_t parseTimestamp(const std::string& text) {
    if (text.empty() || text.size() > 10 ||
        text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(text) > 0xffffffffULL) {
        throw UsageError("--timestamp takes Unix seconds that fit in 32 bits, not '" + text + "'");
    }
    return static_cast<std::uint32_t>(std::stoull(text));
}

Options parse(int argc, char** argv) {
    static const option kLong[] = {{"config", required_argument, nullptr, 'c'},
                                   {"digest", required_argument, nullptr, 'd'},
                                   {"pubkey", required_argument, nullptr, 'p'},
                                   {"out", required_argument, nullptr, 'o'},
                                   {"bootcode", required_argument, nullptr, 'b'},
                                   {"bootsys", required_argument, nullptr, 's'},
                                   {"cacertder", required_argument, nullptr, 'C'},
                                   {"timestamp", required_argument, nullptr, 't'},
                                   {"edit", no_argument, nullptr, 'e'},
                                   {"extract", no_argument, nullptr, 'x'},
                                   {"help", no_argument, nullptr, 'h'},
                                   {nullptr, 0, nullptr, 0}};
    Options o;
    opterr = 0;
    int c = 0;
    while ((c = getopt_long(argc, argv, ":c:d:p:o:b:s:t:exh", kLong, nullptr)) != -1) {
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
            case 'b':
                o.bootcode = optarg;
                break;
            case 's':
                o.bootsys = optarg;
                break;
            case 'C':
                o.cacert = optarg;
                break;
            case 't':
                o.timestamp = parseTimestamp(optarg);
                break;
            case 'e':
                o.edit = true;
                break;
            case 'x':
                o.extract = true;
                break;
            case 'h':
                o.help = true;
                return o;
            default:
                tools::badLongOption(c, argv);
        }
    }
    o.image = tools::oneOperand(argc, argv, "EEPROM image");
    if (o.edit && !o.config.empty()) {
        throw UsageError("--edit and --config both give the configuration; use one");
    }
    bool modifies = !o.config.empty() || !o.digest.empty() || !o.pubkey.empty() ||
                    !o.bootcode.empty() || !o.bootsys.empty() || !o.cacert.empty() || o.timestamp ||
                    o.edit;
    if (o.extract) {
        if (modifies) {
            throw UsageError("--extract cannot be combined with options that change the image");
        }
        return o;
    }
    if (modifies && o.out.empty()) {
        throw UsageError("--config, --digest, --pubkey and the other changes need --out OUT");
    }
    if (!modifies && !o.out.empty()) {
        throw UsageError("--out needs something to change: --config, --digest or --pubkey");
    }
    return o;
}

// Runs the user's editor on `path` and waits for it.
void runEditor(const std::filesystem::path& path) {
    const char* editor = std::getenv("VISUAL");
    if (editor == nullptr || *editor == '\0') {
        editor = std::getenv("EDITOR");
    }
    std::string command = (editor != nullptr && *editor != '\0') ? editor : "vi";
    std::vector<std::string> args{"/bin/sh", "-c", command + " \"$1\"", "sh", path.string()};
    std::vector<char*> argvv;
    for (auto& a : args) {
        argvv.push_back(a.data());
    }
    argvv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argvv.data(), environ) != 0) {
        throw Error(Errc::Io, "cannot start the editor '" + command + "'");
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        throw Error(Errc::Io, "the editor '" + command + "' failed; the image is not changed");
    }
}

std::string editedConfig(const EepromImage& image) {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string dir = (tmpdir != nullptr && *tmpdir != '\0') ? tmpdir : "/tmp";
    std::string pattern = dir + "/rpiboot-bootconf-XXXXXX";
    int fd = mkstemp(pattern.data());
    if (fd < 0) {
        throw Error(Errc::Io, "cannot create a temporary file in " + dir);
    }
    ::close(fd);
    const std::filesystem::path path = pattern;
    try {
        tools::writeText(path, image.bootConfig());
        runEditor(path);
        std::string text = tools::textOf(readFileBytes(path));
        std::filesystem::remove(path);
        return text;
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove(path, ec);
        throw;
    }
}

int extract(const EepromImage& image, const std::string& outDir) {
    const std::filesystem::path dir = outDir.empty() ? "." : outDir;
    writeFileBytes(dir / "bootcode.bin", image.bootcode());
    for (const char* name :
         {"bootconf.txt", "bootconf.sig", "pubkey.bin", "cacert.der", "bootsys"}) {
        if (auto content = image.file(name)) {
            writeFileBytes(dir / name, *content);
        }
    }
    return 0;
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

int run(const Options& o) {
    EepromImage image = EepromImage::parse(readFileBytes(o.image), o.image);
    if (o.extract) {
        return extract(image, o.out);
    }
    if (o.out.empty()) {
        std::cout << image.bootConfig();
        return 0;
    }
    // Loaders first: they may move nothing else, but a failure should leave no output.
    if (!o.bootcode.empty()) {
        image.replaceBootcode(readFileBytes(o.bootcode));
    }
    if (!o.bootsys.empty()) {
        image.replaceBootsys(readFileBytes(o.bootsys));
    }
    if (!o.cacert.empty()) {
        image.replaceFile("cacert.der", readFileBytes(o.cacert));
    }
    if (o.edit) {
        image.setBootConfig(editedConfig(image));
    } else if (!o.config.empty()) {
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
    if (o.timestamp) {
        image.setUpdateTimestamp(*o.timestamp);
    }
    writeFileBytes(o.out, image.bytes());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return rpiboot::tools::runTool(kName, argc, argv, parse, usage, run);
}
