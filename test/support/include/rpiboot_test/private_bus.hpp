// Test support: a private dbus-daemon per test, and running command-line
// clients (busctl) against it, as root or as an unprivileged user.
//
// Used by the D-Bus tests only. It never touches the machine's system or
// session bus, and it stops every process it started.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "rpiboot_test/scratch_dir.hpp"

namespace rpiboot::test {

// What the bus lets through. Open: anyone may do anything (the adapter's own
// checks are what is tested). System: the system bus's default-deny rules
// plus the project's dbus/io.rpibootd1.conf, as installed on a real system.
enum class BusPolicy { Open, System };

// `dbus-daemon --nofork` with a config written into a world-readable temp
// dir, listening on a unix socket that unprivileged users can reach.
class PrivateBus {
  public:
    explicit PrivateBus(BusPolicy policy = BusPolicy::Open);
    ~PrivateBus();
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;

    // "unix:path=/tmp/.../bus"
    const std::string& address() const { return address_; }
    const std::filesystem::path& dir() const { return dir_.path(); }
    // What dbus-daemon wrote to stderr so far (refused messages and such).
    std::string log() const;

  private:
    rpiboot::test::ScratchDir dir_;
    pid_t pid_ = -1;
    std::string address_;
};

struct CommandResult {
    int exitCode = -1;   // -1 when killed by a signal
    std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (looked up in PATH) and waits for it; output is captured.
CommandResult runCommand(const std::vector<std::string>& argv);

// The same, as user nobody / group nogroup with no supplementary groups.
CommandResult runCommandAsNobody(const std::vector<std::string>& argv);

// `busctl --address=ADDRESS --timeout=10 ARGS...`
std::vector<std::string> busctl(const std::string& address, std::vector<std::string> args);

// `dbus-send --bus=ADDRESS --print-reply --reply-timeout=10000 --dest=io.rpibootd1 ARGS...`
// (it prints an error's name and message as the service sent them).
std::vector<std::string> dbusSend(const std::string& address, std::vector<std::string> args);

}  // namespace rpiboot::test
