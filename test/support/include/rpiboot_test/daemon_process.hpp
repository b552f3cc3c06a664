// Test support: the real rpibootd as a child process, what /proc says about
// it, its --virtual-control socket, and the small file helpers the process
// tests share.
//
// Used by the D-Bus, fault and soak tests. It stops every process it started
// (SIGTERM, then SIGKILL after a grace period) and never touches real USB.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rpiboot::test {

void writeFile(const std::filesystem::path& path, std::string_view text);
std::string readFile(const std::filesystem::path& path);

// The object path rpibootd gives the board at `port` (sd_bus_path_encode:
// a leading digit and every byte outside [A-Za-z0-9] become _XX).
std::string devicePath(std::string_view port);

// The firmware fixtures as a tree the daemon can serve every built-in
// profile from: msd/ gets real BCM2711 files (in place of the links git
// stored as text), mass-storage-gadget64/ a boot.img and recovery/ a synthetic
// BCM2711 base EEPROM image (pieeprom.original.bin). Plain files, so a
// test may replace or truncate them. Returns `dir`.
std::filesystem::path prepareFirmware(const std::filesystem::path& dir);

struct ProcFigures {
    int fds = -1;
    int threads = -1;
    long rssKiB = -1;
};
// Open descriptors, threads and VmRSS of a process ("self" or a pid).
ProcFigures procFigures(const std::string& pid = "self");
inline ProcFigures procFigures(pid_t pid) {
    return procFigures(std::to_string(pid));
}
std::string describe(const ProcFigures& figures);

// A program run in the background with stdout and stderr in `log`.
class DaemonProcess {
  public:
    DaemonProcess(const std::vector<std::string>& argv, std::filesystem::path log);
    // stop()
    ~DaemonProcess();
    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;

    // SIGTERM and wait (SIGKILL after `grace`). Its exit status; -1 when a
    // signal ended it, -2 when it had to be killed.
    int stop(std::chrono::milliseconds grace = std::chrono::seconds(30));
    // Waits for it to exit on its own; its exit status, or -3 on timeout.
    int wait(std::chrono::milliseconds limit);
    bool running();
    pid_t pid() const { return pid_; }
    std::string log() const { return readFile(log_); }

  private:
    bool reap(int flags);

    std::filesystem::path log_;
    pid_t pid_ = -1;
    bool exited_ = false;
    int status_ = -1;
};

// A client of rpibootd --virtual-control SOCKET: one command, one reply line.
class VirtualControlClient {
  public:
    // Connects, waiting up to `limit` for the daemon to create the socket
    // (and no longer once `daemon`, if given, has exited). Throws
    // std::runtime_error when it cannot.
    explicit VirtualControlClient(const std::filesystem::path& socket,
                                  std::chrono::milliseconds limit = std::chrono::seconds(30),
                                  DaemonProcess* daemon = nullptr);
    ~VirtualControlClient();
    VirtualControlClient(const VirtualControlClient&) = delete;
    VirtualControlClient& operator=(const VirtualControlClient&) = delete;

    // The reply line as sent ("ok ..." or "error ..."); throws
    // std::runtime_error when the daemon does not answer within 60 s.
    std::string command(std::string_view line);
    // Raw access, for tests of the protocol itself: `send` writes the bytes
    // as given; `readLine` returns the next line without its newline, or
    // nullopt once the daemon closed the connection (throws on a timeout).
    void send(std::string_view bytes);
    std::optional<std::string> readLine();
    // The words after "ok"; throws std::runtime_error with the reply when
    // it is an error.
    std::vector<std::string> ok(std::string_view line);

  private:
    int fd_ = -1;
    std::string buffer_;
};

}  // namespace rpiboot::test
