// Helpers for the signing tests: running the openssl and mtools command-line
// tools for cross-checks, and RSA keys made with openssl.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace rpiboot::test {

struct CommandResult {
    int exitCode = -1;
    std::string output;  // stdout and stderr together
};

inline std::string shellQuote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out.push_back(c);
        }
    }
    return out + "'";
}

// Runs a shell command line (arguments already quoted) and captures its output.
inline CommandResult run(const std::string& command) {
    CommandResult result;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) {
        return result;
    }
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) {
        result.output.append(buf, n);
    }
    int status = ::pclose(pipe);
    result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

inline void writeText(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

inline std::string readText(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Keys made with the openssl command-line tool. ctest runs every test in its
// own process, so the keys are made once into the build tree and reused: a
// process that finds them missing makes a set in a scratch directory and
// renames it into place (the first rename wins; the others use its keys).
struct TestKeys {
    std::filesystem::path dir;
    std::filesystem::path private2048;
    std::filesystem::path public2048;
    std::filesystem::path otherPrivate2048;
    std::filesystem::path otherPublic2048;
    std::filesystem::path private3072;
    std::filesystem::path public3072;
    std::filesystem::path privateEc;
    std::filesystem::path encrypted2048;
    bool ok = true;
    std::string log;

    TestKeys() {
        dir = std::filesystem::path(RPIBOOT_BINARY_DIR) / "test-keys" / "signing";
        if (!std::filesystem::exists(dir / "complete")) {
            make();
        }
        setPaths(dir);
        ok = ok && std::filesystem::exists(dir / "complete");
    }

    static std::string q(const std::filesystem::path& p) { return shellQuote(p.string()); }

  private:
    void setPaths(const std::filesystem::path& d) {
        private2048 = d / "rsa2048.pem";
        public2048 = d / "rsa2048.pub.pem";
        otherPrivate2048 = d / "other2048.pem";
        otherPublic2048 = d / "other2048.pub.pem";
        private3072 = d / "rsa3072.pem";
        public3072 = d / "rsa3072.pub.pem";
        privateEc = d / "ec.pem";
        encrypted2048 = d / "encrypted.pem";
    }

    void make() {
        std::filesystem::create_directories(dir.parent_path());
        std::string tmpl = (dir.parent_path() / "making-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            ok = false;
            log = "cannot create " + tmpl;
            return;
        }
        std::filesystem::path tmp = tmpl;
        setPaths(tmp);
        gen("openssl genrsa -out " + q(private2048) + " 2048");
        gen("openssl rsa -in " + q(private2048) + " -pubout -out " + q(public2048));
        gen("openssl genrsa -out " + q(otherPrivate2048) + " 2048");
        gen("openssl rsa -in " + q(otherPrivate2048) + " -pubout -out " + q(otherPublic2048));
        gen("openssl genrsa -out " + q(private3072) + " 3072");
        gen("openssl rsa -in " + q(private3072) + " -pubout -out " + q(public3072));
        gen("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + q(privateEc));
        gen("openssl rsa -in " + q(private2048) + " -aes128 -passout pass:secret -out " +
            q(encrypted2048));
        if (ok) {
            writeText(tmp / "complete", "");
            std::error_code ec;
            std::filesystem::rename(tmp, dir, ec);
        }
        std::error_code ec;
        std::filesystem::remove_all(tmp, ec);  // only left over if another process won
    }

    void gen(const std::string& cmd) {
        CommandResult r = run(cmd);
        if (r.exitCode != 0) {
            ok = false;
            log += cmd + ": " + r.output + "\n";
        }
    }
};

inline const TestKeys& testKeys() {
    static const TestKeys keys;
    return keys;
}

}  // namespace rpiboot::test
