#include "rpiboot_test/private_bus.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

namespace rpiboot::test {
namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// The rules every bus config starts with: anyone may connect.
constexpr const char* kConfigHead = R"(<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=@DIR@/bus</listen>
  <auth>EXTERNAL</auth>
)";

constexpr const char* kOpenPolicy = R"(  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
)";

// The default rules of a Debian system bus (deny method calls and owning
// names unless a service's policy file allows them), then our policy file.
constexpr const char* kSystemPolicy = R"(  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>@POLICY@</include>
)";

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
    return text;
}

std::string readAll(int fd) {
    std::string out;
    char buffer[4096];
    for (;;) {
        const ssize_t n = read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return out;
        }
        out.append(buffer, static_cast<std::size_t>(n));
    }
}

std::vector<char*> toArgv(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (const auto& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    return argv;
}

}  // namespace

PrivateBus::PrivateBus(BusPolicy policy) {
    // Unprivileged clients must reach the bus socket inside.
    std::filesystem::permissions(dir(), std::filesystem::perms(0755));
    std::string config = kConfigHead;
    config += policy == BusPolicy::Open ? kOpenPolicy : kSystemPolicy;
    config += "</busconfig>\n";
    config = replaceAll(config, "@DIR@", dir().string());
    config = replaceAll(config, "@POLICY@", RPIBOOT_DBUS_POLICY_FILE);
    const auto configPath = dir() / "bus.conf";
    std::ofstream(configPath) << config;

    int pipeFds[2];
    if (pipe2(pipeFds, O_CLOEXEC) != 0) {
        fail("pipe");
    }
    const std::vector<std::string> args = {"dbus-daemon", "--nofork", "--nopidfile",
                                           "--config-file=" + configPath.string(),
                                           "--print-address=1"};
    auto argv = toArgv(args);
    // Its complaints (refused messages, fd limits) go to a log beside the socket.
    const std::string logPath = (dir() / "bus.log").string();
    const int logFd = open(logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_ = fork();
    if (pid_ < 0) {
        fail("fork");
    }
    if (pid_ == 0) {
        dup2(pipeFds[1], STDOUT_FILENO);
        if (logFd >= 0) {
            dup2(logFd, STDERR_FILENO);
        }
        execvp(argv[0], argv.data());
        _exit(127);
    }
    close(pipeFds[1]);
    if (logFd >= 0) {
        close(logFd);
    }
    // dbus-daemon prints its address once it listens; then closes nothing,
    // so read the first line only.
    std::string line;
    char c = 0;
    while (read(pipeFds[0], &c, 1) == 1 && c != '\n') {
        line += c;
    }
    close(pipeFds[0]);
    if (line.empty()) {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
        throw std::runtime_error("dbus-daemon did not start with config " + configPath.string());
    }
    address_ = line.substr(0, line.find(','));
}

PrivateBus::~PrivateBus() {
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
    }
}

std::string PrivateBus::log() const {
    std::ifstream in(dir() / "bus.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
}

CommandResult runCommand(const std::vector<std::string>& args) {
    int pipeFds[2];
    if (pipe2(pipeFds, O_CLOEXEC) != 0) {
        fail("pipe");
    }
    auto argv = toArgv(args);
    const pid_t pid = fork();
    if (pid < 0) {
        fail("fork");
    }
    if (pid == 0) {
        dup2(pipeFds[1], STDOUT_FILENO);
        dup2(pipeFds[1], STDERR_FILENO);
        execvp(argv[0], argv.data());
        _exit(127);
    }
    close(pipeFds[1]);
    CommandResult result;
    result.output = readAll(pipeFds[0]);
    close(pipeFds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

CommandResult runCommandAsNobody(const std::vector<std::string>& argv) {
    std::vector<std::string> full = {"setpriv", "--reuid=nobody", "--regid=nogroup",
                                     "--clear-groups"};
    full.insert(full.end(), argv.begin(), argv.end());
    return runCommand(full);
}

std::vector<std::string> busctl(const std::string& address, std::vector<std::string> args) {
    std::vector<std::string> full = {"busctl", "--address=" + address, "--timeout=10"};
    full.insert(full.end(), args.begin(), args.end());
    return full;
}

std::vector<std::string> dbusSend(const std::string& address, std::vector<std::string> args) {
    std::vector<std::string> full = {"dbus-send", "--bus=" + address, "--print-reply",
                                     "--reply-timeout=10000", "--dest=io.rpibootd1"};
    full.insert(full.end(), args.begin(), args.end());
    return full;
}

}  // namespace rpiboot::test
