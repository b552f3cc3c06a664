// Signing through an external HSM wrapper program (docs/protocol.md §9.2).
#include "rpiboot/signing/hsm_signer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/unique_fd.hpp"
#include "rpiboot/signing/bytes_io.hpp"
#include "rpiboot/signing/rsa_key.hpp"

extern char** environ;

namespace rpiboot {

namespace {

// Keeps a temporary file holding the bytes to sign, removed on scope exit.
class TempFile {
  public:
    explicit TempFile(ByteView data) {
        const char* tmpdir = std::getenv("TMPDIR");
        std::filesystem::path dir = (tmpdir && *tmpdir) ? tmpdir : "/tmp";
        std::random_device random;
        UniqueFd fd;
        for (int attempt = 0; attempt < 16 && !fd; ++attempt) {
            path_ = dir / ("rpiboot-sign-" + std::to_string(random()) + ".bin");
            fd.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
            if (!fd && errno != EEXIST) {
                break;
            }
        }
        if (!fd) {
            throw Error(Errc::Io, "cannot create a temporary file in " + dir.string() +
                                      " for the HSM wrapper: " + errnoText(errno));
        }
        owned_ = true;
        std::size_t done = 0;
        while (done < data.size()) {
            ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                int err = errno;
                fd.reset();
                remove();
                throw Error(Errc::Io, "cannot write the temporary file " + path_.string() +
                                          " for the HSM wrapper: " + errnoText(err));
            }
            done += static_cast<std::size_t>(n);
        }
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() { remove(); }
    const std::filesystem::path& path() const noexcept { return path_; }

  private:
    void remove() noexcept {
        if (owned_) {
            ::unlink(path_.c_str());
            owned_ = false;
        }
    }
    std::filesystem::path path_;
    bool owned_ = false;
};

class Pipe {
  public:
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            throw Error(Errc::Io, std::string("cannot create a pipe for the HSM wrapper: ") +
                                      errnoText(errno));
        }
        read_.reset(fds[0]);
        write_.reset(fds[1]);
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    int readEnd() const noexcept { return read_.get(); }
    int writeEnd() const noexcept { return write_.get(); }
    void closeWrite() noexcept { write_.reset(); }
    void closeRead() noexcept { read_.reset(); }

  private:
    UniqueFd read_;
    UniqueFd write_;
};

struct SpawnActions {
    posix_spawn_file_actions_t actions{};
    SpawnActions() { posix_spawn_file_actions_init(&actions); }
    SpawnActions(const SpawnActions&) = delete;
    SpawnActions& operator=(const SpawnActions&) = delete;
    ~SpawnActions() { posix_spawn_file_actions_destroy(&actions); }
};

std::string describeStatus(int status) {
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return std::string("was killed by signal ") + std::to_string(WTERMSIG(status));
    }
    return "ended abnormally";
}

// Runs `argv`, returns its stdout once it exits (stderr is inherited so the
// operator sees the wrapper's own messages). Kills it after `timeout`.
std::string runCapturingStdout(const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout) {
    const std::string& program = argv.front();
    Pipe out;
    SpawnActions fa;
    posix_spawn_file_actions_adddup2(&fa.actions, out.writeEnd(), STDOUT_FILENO);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, program.c_str(), &fa.actions, nullptr, args.data(), environ);
    if (rc != 0) {
        throw Error(Errc::NotFound, "cannot run the HSM wrapper " + program + ": " + errnoText(rc));
    }
    out.closeWrite();

    std::string output;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool timedOut = false;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timedOut = true;
            break;
        }
        pollfd pfd{out.readEnd(), POLLIN, 0};
        int n = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            timedOut = n == 0;
            break;
        }
        char buf[4096];
        ssize_t got = ::read(out.readEnd(), buf, sizeof buf);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        output.append(buf, static_cast<std::size_t>(got));
        if (output.size() > (1u << 20)) {
            break;  // far beyond any signature; stop reading and judge what we have
        }
    }
    out.closeRead();
    if (timedOut) {
        ::kill(pid, SIGKILL);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timedOut) {
        throw Error(Errc::Timeout, "the HSM wrapper " + program + " gave no signature within " +
                                       std::to_string(timeout.count() / 1000) + " s");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        throw Error(Errc::Crypto, "the HSM wrapper " + program + " " + describeStatus(status) +
                                      " instead of printing a signature");
    }
    return output;
}

}  // namespace

HsmSigner::HsmSigner(std::filesystem::path wrapper, std::chrono::milliseconds timeout)
    : wrapper_(std::move(wrapper)), timeout_(timeout) {}

Bytes HsmSigner::signFile(const std::filesystem::path& file) const {
    std::string output =
        runCapturingStdout({wrapper_.string(), "-a", "rsa2048-sha256", file.string()}, timeout_);
    std::string hex;
    for (char c : output) {
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
            hex.push_back(c);
        }
    }
    const std::string what = "the output of the HSM wrapper " + wrapper_.string();
    if (hex.size() != kRsaSignatureSize * 2) {
        throw Error(Errc::Crypto, what + " is " + std::to_string(hex.size()) +
                                      " hex digits; an RSA-2048 signature is 512");
    }
    return fromHex(hex, what);
}

Bytes HsmSigner::sign(ByteView data) const {
    TempFile tmp(data);
    return signFile(tmp.path());
}

}  // namespace rpiboot
