// The real rpibootd binary, without D-Bus (--bus none): start-up, exit
// status, configuration errors and SIGHUP reloads, seen from outside.
// (The D-Bus face of the running daemon is tested in test/integration.)
#include "rpiboot_test/daemon_process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "rpiboot_test/scratch_dir.hpp"

namespace rpibootd {
namespace {

using Clock = std::chrono::steady_clock;
// Guards against a hang only; never part of what a test asserts.
constexpr auto kSafetyLimit = std::chrono::seconds(60);

class Daemon {
  public:
    explicit Daemon(std::vector<std::string> args,
                    std::vector<std::pair<std::string, std::string>> env = {}) {
        args.insert(args.begin(), RPIBOOTD_BINARY);
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe failed");
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(fds[1], STDOUT_FILENO);
            ::dup2(fds[1], STDERR_FILENO);
            std::vector<char*> argv;
            argv.reserve(args.size() + 1);
            for (auto& a : args) {
                argv.push_back(a.data());
            }
            argv.push_back(nullptr);
            ::unsetenv("JOURNAL_STREAM");
            ::unsetenv("NOTIFY_SOCKET");
            for (const auto& [key, value] : env) {
                ::setenv(key.c_str(), value.c_str(), 1);
            }
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        out_ = fds[0];
    }
    ~Daemon() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(out_);
    }
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    void signal(int sig) const { ::kill(pid_, sig); }

    // Reads output until `text` appears after what was read before; false
    // when the daemon ended (or the safety limit passed) first.
    bool waitFor(const std::string& text) {
        const auto deadline = Clock::now() + kSafetyLimit;
        while (output_.find(text, searchFrom_) == std::string::npos) {
            if (!readSome(deadline)) {
                return false;
            }
        }
        searchFrom_ = output_.find(text, searchFrom_) + text.size();
        return true;
    }

    // Reads everything until the daemon exits; its exit status, -1 on signal.
    int exitStatus() {
        const auto deadline = Clock::now() + kSafetyLimit;
        while (readSome(deadline)) {
        }
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

    const std::string& output() const { return output_; }

  private:
    bool readSome(Clock::time_point deadline) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            return false;
        }
        pollfd p{out_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            return false;
        }
        char buf[4096];
        const ssize_t n = ::read(out_, buf, sizeof buf);
        if (n <= 0) {
            return false;
        }
        output_.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int out_ = -1;
    std::string output_;
    std::size_t searchFrom_ = 0;
};

class DaemonProcessTest : public ::testing::Test {
  protected:
    DaemonProcessTest() {
        firmware_ = rpiboot::test::prepareFirmware(scratch_.path() / "firmware");
    }

    std::vector<std::string> withFirmware(std::vector<std::string> args) const {
        args.insert(args.end(), {"--no-udev", "--bus", "none", "--firmware-dir", firmware_});
        return args;
    }

    rpiboot::test::ScratchDir scratch_;
    std::string firmware_;
};

TEST_F(DaemonProcessTest, BootsEveryVirtualBoardAndExitsZero) {
    Daemon d(withFirmware({"--virtual", "2711:2,2712:1,2837:1", "--exit-when-done"}));
    EXPECT_EQ(d.exitStatus(), 0) << d.output();
    for (const char* port : {"1-1", "1-2", "1-3", "1-4"}) {
        EXPECT_NE(d.output().find(std::string(port) + " BCM"), std::string::npos) << port;
    }
    EXPECT_NE(d.output().find("1-3 BCM2712: booted: "), std::string::npos) << d.output();
    EXPECT_NE(d.output().find("4 board(s): 0 booting, 4 done, 0 failed"), std::string::npos)
        << d.output();
}

TEST_F(DaemonProcessTest, BootsFromTheEmbeddedFirmwareWhenNoneIsInstalled) {
    // A machine with no firmware installed: the msd profile's boards get the
    // compiled-in set and the log says so; BCM2712 (mass-storage gadget,
    // never embedded) fails naming what is missing.
    const std::string empty = scratch_.mkdir("nothing-installed").string();
    Daemon d({"--no-udev", "--bus", "none", "--firmware-dir", empty, "--virtual",
              "2711:2,2837:1,2712:1", "--exit-when-done"});
    EXPECT_EQ(d.exitStatus(), 1) << d.output();
    const std::string& out = d.output();
    EXPECT_NE(out.find("1-1 BCM2711: booted: "), std::string::npos) << out;
    EXPECT_NE(out.find("1-2 BCM2711: booted: "), std::string::npos) << out;
    EXPECT_NE(out.find("1-3 BCM2837: booted: "), std::string::npos) << out;
    EXPECT_NE(out.find("sent bootcode4.bin (105984 bytes from embedded:bootcode4.bin)"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("sent start4.elf (536536 bytes from embedded:start4.elf)"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("sent bootcode.bin (52624 bytes from embedded:bootcode.bin)"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("profile msd: no firmware directory " + empty +
                       "/msd; serving the embedded firmware (bootcode.bin, bootcode4.bin, "
                       "start.elf, start4.elf) as the last resort"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("1-4 BCM2712: error: "), std::string::npos) << out;
    EXPECT_NE(out.find(empty + "/mass-storage-gadget64 is not a directory"), std::string::npos)
        << out;
    EXPECT_NE(out.find("rpibootd-fetch-firmware installs the firmware sets"), std::string::npos)
        << out;
    EXPECT_NE(out.find("4 board(s): 0 booting, 3 done, 1 failed"), std::string::npos) << out;
}

TEST_F(DaemonProcessTest, EmbeddedFirmwareCanBeTurnedOff) {
    const std::string empty = scratch_.mkdir("nothing-installed").string();
    const auto config = scratch_.write("rpibootd.json", R"({"embedded_firmware": false})");
    Daemon d({"--no-udev", "--bus", "none", "--firmware-dir", empty, "-c", config, "--virtual",
              "2711:1", "--exit-when-done"});
    EXPECT_EQ(d.exitStatus(), 1) << d.output();
    EXPECT_NE(d.output().find("1-1 BCM2711: error: "), std::string::npos) << d.output();
    EXPECT_NE(d.output().find(empty + "/msd is not a directory"), std::string::npos) << d.output();
    EXPECT_EQ(d.output().find("embedded:"), std::string::npos) << d.output();
}

TEST_F(DaemonProcessTest, ExitsOneWhenABoardFailed) {
    const auto config = scratch_.write("rpibootd.json", R"({"default_profile": "recovery"})");
    Daemon d(withFirmware({"-c", config, "--virtual", "2711:1", "--exit-when-done"}));
    EXPECT_EQ(d.exitStatus(), 1) << d.output();
    EXPECT_NE(d.output().find("1-1 BCM2711: error: ROM stage failed: bootcode4.bin for BCM2711 "
                              "not found"),
              std::string::npos)
        << d.output();
}

TEST_F(DaemonProcessTest, RefusesToStartOnABrokenConfigurationAndSaysWhere) {
    const auto config =
        scratch_.write("rpibootd.json", R"({"rules": [{"chip": "2711", "profle": "recovery"}]})");
    Daemon d(withFirmware({"-c", config, "--virtual", "2711:1"}));
    EXPECT_EQ(d.exitStatus(), 1);
    EXPECT_NE(d.output().find(config.string() + ": /rules/0/profle: unknown key"),
              std::string::npos)
        << d.output();
}

TEST_F(DaemonProcessTest, MissingExplicitConfigurationIsAnError) {
    Daemon d(withFirmware({"-c", (scratch_.path() / "absent.json").string(), "--virtual", "2711"}));
    EXPECT_EQ(d.exitStatus(), 1);
    EXPECT_NE(d.output().find("absent.json: cannot open daemon configuration"), std::string::npos)
        << d.output();
}

TEST_F(DaemonProcessTest, SighupKeepsTheRunningConfigurationWhenTheNewOneIsBroken) {
    const auto config = scratch_.write("rpibootd.json", R"({"default_profile": "msd"})");
    Daemon d(withFirmware({"-c", config, "--virtual", "2711:1"}));
    ASSERT_TRUE(d.waitFor("1-1 BCM2711: booted")) << d.output();

    scratch_.write("rpibootd.json", R"({"default_profile": "msd", "rules": 7})");
    d.signal(SIGHUP);
    ASSERT_TRUE(d.waitFor("reload rejected, keeping the running configuration: " + config.string() +
                          ": /rules: expected an array"))
        << d.output();

    scratch_.write("rpibootd.json", R"({"default_profile": "recovery"})");
    d.signal(SIGHUP);
    ASSERT_TRUE(d.waitFor("reloaded configuration from " + config.string())) << d.output();
    EXPECT_TRUE(d.waitFor("default recovery")) << d.output();

    d.signal(SIGTERM);
    EXPECT_EQ(d.exitStatus(), 0) << d.output();
}

TEST_F(DaemonProcessTest, SighupKeepsTheRunningConfigurationWhenAnEepromCannotBeBuilt) {
    const auto config = scratch_.write("rpibootd.json", R"({"default_profile": "msd"})");
    Daemon d(withFirmware({"-c", config, "--virtual", "2711:1"}));
    ASSERT_TRUE(d.waitFor("1-1 BCM2711: booted")) << d.output();

    std::filesystem::remove(std::filesystem::path(firmware_) / "recovery/pieeprom.original.bin");
    scratch_.write("rpibootd.json", R"({"default_profile": "recovery"})");
    d.signal(SIGHUP);
    ASSERT_TRUE(
        d.waitFor("reload rejected, keeping the running configuration: profile recovery: "
                  "no base EEPROM image at"))
        << d.output();

    d.signal(SIGTERM);
    EXPECT_EQ(d.exitStatus(), 0) << d.output();
}

TEST_F(DaemonProcessTest, CheckConfigListsProfilesOrNamesTheError) {
    Daemon good(withFirmware({"--check-config"}));
    EXPECT_EQ(good.exitStatus(), 0) << good.output();
    EXPECT_NE(good.output().find("mass-storage-gadget"), std::string::npos);
    // Per profile, whether its set is complete (this tree has no recovery.bin).
    EXPECT_NE(good.output().find("firmware: complete (2835, 2837, 2711: 6 files)"),
              std::string::npos)
        << good.output();
    EXPECT_NE(good.output().find("firmware: INCOMPLETE: missing 2711/bootcode4.bin"),
              std::string::npos)
        << good.output();

    const auto config = scratch_.write("bad.json", R"({"default_profile": "nope"})");
    Daemon bad(withFirmware({"--check-config", "-c", config}));
    EXPECT_EQ(bad.exitStatus(), 1);
    EXPECT_NE(bad.output().find(config.string() + ": /default_profile: no profile named \"nope\""),
              std::string::npos)
        << bad.output();
}

TEST_F(DaemonProcessTest, BadCommandLineExitsTwoWithAHint) {
    Daemon d({"--virtual", "2799:1", "--no-udev", "--bus", "none"});
    EXPECT_EQ(d.exitStatus(), 2);
    EXPECT_NE(d.output().find("\"2799\" is not a chip"), std::string::npos) << d.output();
}

// Stands in for systemd's notification socket (sd_notify).
class NotifySocket {
  public:
    explicit NotifySocket(const std::filesystem::path& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            throw std::runtime_error("cannot bind the notify socket");
        }
    }
    ~NotifySocket() { ::close(fd_); }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    const std::filesystem::path& path() const { return path_; }

    // Reads datagrams until one contains `text`; false if none did in time.
    bool waitFor(const std::string& text) {
        const auto deadline = Clock::now() + kSafetyLimit;
        while (true) {
            for (const auto& m : messages_) {
                if (m.find(text) != std::string::npos) {
                    messages_.clear();
                    return true;
                }
            }
            messages_.clear();
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            pollfd p{fd_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
                return false;
            }
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) {
                messages_.emplace_back(buf, static_cast<std::size_t>(n));
            }
        }
    }

  private:
    std::filesystem::path path_;
    int fd_ = -1;
    std::vector<std::string> messages_;
};

TEST_F(DaemonProcessTest, TellsSystemdReadyStatusWatchdogReloadingAndStopping) {
    NotifySocket notify(scratch_.path() / "notify");
    Daemon d(withFirmware({"--virtual", "2711:1"}),
             {{"NOTIFY_SOCKET", notify.path().string()}, {"WATCHDOG_USEC", "200000"}});
    EXPECT_TRUE(notify.waitFor("READY=1"));
    ASSERT_TRUE(d.waitFor("1-1 BCM2711: booted")) << d.output();
    EXPECT_TRUE(notify.waitFor("STATUS=1 board(s): 0 booting, 1 done, 0 failed"));
    EXPECT_TRUE(notify.waitFor("WATCHDOG=1"));
    d.signal(SIGHUP);
    EXPECT_TRUE(notify.waitFor("RELOADING=1"));
    EXPECT_TRUE(notify.waitFor("READY=1"));
    d.signal(SIGTERM);
    EXPECT_TRUE(notify.waitFor("STOPPING=1"));
    EXPECT_EQ(d.exitStatus(), 0) << d.output();
}

}  // namespace
}  // namespace rpibootd
