#include "rpiboot_test/daemon_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

#include "rpiboot_test/synthetic_eeprom.hpp"

namespace rpiboot::test {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

void writeFile(const fs::path& path, std::string_view text) {
    if (path.has_parent_path()) {
        fs::create_directories(path.parent_path());
    }
    std::ofstream(path, std::ios::binary) << text;
}

std::string readFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string devicePath(std::string_view port) {
    std::string out = "/io/rpibootd1/device/";
    static const char* hex = "0123456789abcdef";
    for (std::size_t i = 0; i < port.size(); ++i) {
        const auto c = static_cast<unsigned char>(port[i]);
        if (std::isalpha(c) || (std::isdigit(c) && i > 0)) {
            out += static_cast<char>(c);
        } else {
            out += '_';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

fs::path prepareFirmware(const fs::path& dir) {
    const fs::path fixtures = RPIBOOT_FIXTURES_DIR;
    fs::copy(fixtures, dir, fs::copy_options::recursive);
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        fs::permissions(entry.path(), fs::perms::owner_write, fs::perm_options::add);
    }
    fs::copy_file(fixtures / "2711/bootcode4.bin", dir / "msd/bootcode4.bin",
                  fs::copy_options::overwrite_existing);
    fs::copy_file(fixtures / "msd/start.elf", dir / "msd/start4.elf",
                  fs::copy_options::overwrite_existing);
    fs::copy_file(fixtures / "mass-storage-gadget64/boot-secure-msd.img",
                  dir / "mass-storage-gadget64/boot.img", fs::copy_options::overwrite_existing);
    // The recovery profile builds pieeprom.bin from this at load.
    const auto eeprom = makeEeprom2711();
    std::ofstream(dir / "recovery/pieeprom.original.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(eeprom.data()),
               static_cast<std::streamsize>(eeprom.size()));
    return dir;
}

ProcFigures procFigures(const std::string& pid) {
    ProcFigures f;
    const fs::path proc = "/proc/" + pid;
    std::error_code ec;
    int fds = 0;
    for (auto it = fs::directory_iterator(proc / "fd", ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        ++fds;
    }
    if (!ec) {
        f.fds = fds;
    }
    std::ifstream status(proc / "status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("Threads:", 0) == 0) {
            f.threads = std::stoi(line.substr(8));
        } else if (line.rfind("VmRSS:", 0) == 0) {
            f.rssKiB = std::stol(line.substr(6));
        }
    }
    return f;
}

std::string describe(const ProcFigures& f) {
    return "fds " + std::to_string(f.fds) + ", threads " + std::to_string(f.threads) + ", VmRSS " +
           std::to_string(f.rssKiB) + " KiB";
}

DaemonProcess::DaemonProcess(const std::vector<std::string>& args, fs::path log)
    : log_(std::move(log)) {
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (const auto& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) {
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid_ == 0) {
        const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
}

DaemonProcess::~DaemonProcess() {
    stop();
}

bool DaemonProcess::reap(int flags) {
    if (exited_) {
        return true;
    }
    int status = 0;
    if (::waitpid(pid_, &status, flags) != pid_) {
        return false;
    }
    exited_ = true;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return true;
}

int DaemonProcess::stop(milliseconds grace) {
    if (pid_ <= 0 || reap(WNOHANG)) {
        return status_;
    }
    ::kill(pid_, SIGTERM);
    if (wait(grace) != -3) {
        return status_;
    }
    ::kill(pid_, SIGKILL);
    reap(0);
    return status_ = -2;
}

int DaemonProcess::wait(milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!reap(WNOHANG)) {
        if (std::chrono::steady_clock::now() > end) {
            return -3;
        }
        std::this_thread::sleep_for(milliseconds(5));
    }
    return status_;
}

bool DaemonProcess::running() {
    return pid_ > 0 && !reap(WNOHANG);
}

VirtualControlClient::VirtualControlClient(const fs::path& socket, milliseconds limit,
                                           DaemonProcess* daemon) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (socket.string().size() >= sizeof address.sun_path) {
        throw std::runtime_error("control socket path too long: " + socket.string());
    }
    std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
    const auto end = std::chrono::steady_clock::now() + limit;
    while (true) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
            break;
        }
        const int why = errno;
        ::close(fd_);
        fd_ = -1;
        if (daemon != nullptr && !daemon->running()) {
            throw std::runtime_error("the daemon exited before it opened " + socket.string() +
                                     "; its output:\n" + daemon->log());
        }
        if (std::chrono::steady_clock::now() > end) {
            throw std::runtime_error("cannot connect to " + socket.string() + ": " +
                                     std::strerror(why));
        }
        std::this_thread::sleep_for(milliseconds(10));
    }
    timeval timeout{60, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
}

VirtualControlClient::~VirtualControlClient() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void VirtualControlClient::send(std::string_view bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::runtime_error("control socket: send: " + std::string(std::strerror(errno)));
        }
        sent += static_cast<std::size_t>(n);
    }
}

std::optional<std::string> VirtualControlClient::readLine() {
    while (true) {
        if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        char chunk[65536];
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n == 0) {
            return std::nullopt;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::runtime_error("control socket: no reply (" +
                                     std::string(std::strerror(errno)) + ")");
        }
        buffer_.append(chunk, static_cast<std::size_t>(n));
    }
}

std::string VirtualControlClient::command(std::string_view line) {
    send(std::string(line) + "\n");
    auto reply = readLine();
    if (!reply) {
        throw std::runtime_error("control socket: closed instead of answering \"" +
                                 std::string(line) + "\"");
    }
    return *reply;
}

std::vector<std::string> VirtualControlClient::ok(std::string_view line) {
    const std::string reply = command(line);
    if (reply != "ok" && reply.rfind("ok ", 0) != 0) {
        throw std::runtime_error("control: \"" + std::string(line) + "\" -> " + reply);
    }
    std::vector<std::string> words;
    std::size_t i = 2;
    while (i < reply.size()) {
        while (i < reply.size() && reply[i] == ' ') {
            ++i;
        }
        const std::size_t start = i;
        while (i < reply.size() && reply[i] != ' ') {
            ++i;
        }
        if (i > start) {
            words.push_back(reply.substr(start, i - start));
        }
    }
    return words;
}

}  // namespace rpiboot::test
