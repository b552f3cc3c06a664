// rpibootctl against the real rpibootd with virtual boards, on a private bus
// configured like the system bus with dbus/io.rpibootd1.conf: exit codes and
// output of status, --json, show, wait, retry, hold/release, watch (in a
// pseudo-terminal and on a pipe); held and ignored boards never opened; a
// board that stalls once retried; the metrics file read by a strict parser
// (and promtool when installed) and compared with what D-Bus says.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "prometheus_text.hpp"
#include "rpiboot_test/daemon_process.hpp"
#include "rpiboot_test/private_bus.hpp"
#include "rpiboot_test/scratch_dir.hpp"

namespace rpibootd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace rpiboot::test;

constexpr const char* kMsdSteps = R"(
    { "kind": "file", "name": "config.txt", "optional": true },
    { "kind": "file", "name": "pieeprom.sig", "optional": true },
    "start4.elf",
    { "kind": "file", "name": "fixup4.dat", "optional": true },
    { "kind": "empty-name" })";

// A BCM2711 at 2 MB/s, so that a person (and the pty test) sees its bars move.
const std::string kSlowBoard =
    R"({ "name": "slow-2711", "chip": "2711", "bulkBytesPerSecond": 2000000, "steps": [)" +
    std::string(kMsdSteps) + "] }";
// A BCM2711 whose ROM stalls the bulk endpoint 4 KiB into the bootcode, then hangs.
const std::string kStallingBoard =
    R"({ "name": "stalls-once", "chip": "2711", "rom": { "fault": { "kind": "stall-bulk",
       "at": "bootcode", "afterBytes": 4096 } }, "steps": [)" +
    std::string(kMsdSteps) + "] }";
// A BCM2711 that leaves the bus 64 KiB into start4.elf and does not come back.
constexpr const char* kVanishingBoard = R"({ "name": "vanishes", "chip": "2711", "steps": [
    { "kind": "file", "name": "config.txt", "optional": true },
    { "kind": "file", "name": "pieeprom.sig", "optional": true },
    { "kind": "file", "name": "start4.elf",
      "fault": { "kind": "disconnect", "at": "data", "afterBytes": 65536 } } ] })";

constexpr const char* kOnceProfile = R"({ "name": "once",
  "description": "msd without retries", "firmware": { "root": "msd" }, "retries": 0 })";
constexpr const char* kPatientProfile = R"({ "name": "patient",
  "description": "msd with a long back-off", "firmware": { "root": "msd" },
  "timeouts": { "control_ms": 500, "reenumerate_ms": 5000 },
  "retries": 2, "retry_backoff_ms": 8000 })";

constexpr const char* kEightBoards =
    "2835:1:msd,2837:1:msd,2711:2:msd,2711:1:mass-storage-gadget,2712:1:mass-storage-gadget,"
    "2711:2:msd";

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 60s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) {
            return true;
        }
        std::this_thread::sleep_for(50ms);
    }
    return pred();
}

// A configuration's rules replace the built-in one: BCM2712 boots the gadget.
constexpr const char* kGadgetRule = R"([{ "chip": "2712", "profile": "mass-storage-gadget" }])";

class RpibootctlTest : public ::testing::Test {
  protected:
    void SetUp() override {
        rpiboot::test::prepareFirmware(work.path() / "firmware");
        writeFile(work.path() / "profiles/once.json", kOnceProfile);
        writeFile(work.path() / "profiles/patient.json", kPatientProfile);
        writeFile(work.path() / "slow.json", kSlowBoard);
        writeFile(work.path() / "stalls.json", kStallingBoard);
        writeFile(work.path() / "vanishes.json", kVanishingBoard);
        fs::create_directories(work.path() / "metrics");
        // A copy that user nobody can run (the scratch directory is private).
        ctlForNobody = bus.dir() / "rpibootctl";
        fs::copy_file(RPIBOOTCTL_BINARY, ctlForNobody, fs::copy_options::overwrite_existing);
        fs::permissions(ctlForNobody, fs::perms::owner_all | fs::perms::group_read |
                                          fs::perms::group_exec | fs::perms::others_read |
                                          fs::perms::others_exec);
    }

    // `rules` is the JSON of the rules array.
    void startDaemon(const std::string& virtualSpec, const std::string& rules = kGadgetRule,
                     const std::string& defaultProfile = "msd") {
        writeFile(work.path() / "rpibootd.json",
                  R"({ "firmware_dir": "firmware", "profiles_dir": "profiles",
  "default_profile": ")" +
                      defaultProfile +
                      R"(", "forget_after_ms": 600000, "state_dir": "state",
  "metrics": { "enabled": true, "file": ")" +
                      metricsFile().string() + R"(", "interval_ms": 100 },
  "rules": )" + rules +
                      "}");
        std::vector<std::string> argv = {RPIBOOTD_BINARY,
                                         "-c",
                                         (work.path() / "rpibootd.json").string(),
                                         "--bus",
                                         bus.address(),
                                         "--no-udev",
                                         "--virtual-control",
                                         socket().string()};
        if (!virtualSpec.empty()) {
            argv.push_back("--virtual");
            argv.push_back(virtualSpec);
        }
        daemon = std::make_unique<DaemonProcess>(argv, work.path() / "rpibootd.log");
        control = std::make_unique<VirtualControlClient>(socket(), 30s, daemon.get());
        ASSERT_TRUE(eventually([&] { return ctl({"status"}).exitCode == 0; }, 30s))
            << daemon->log();
    }

    fs::path socket() const { return work.path() / "control.sock"; }
    fs::path metricsFile() const { return work.path() / "metrics/rpibootd.prom"; }

    CommandResult ctl(std::vector<std::string> args) const {
        std::vector<std::string> argv = {RPIBOOTCTL_BINARY, "--bus", bus.address()};
        argv.insert(argv.end(), args.begin(), args.end());
        return rpiboot::test::runCommand(argv);
    }
    CommandResult ctlAsNobody(std::vector<std::string> args) const {
        std::vector<std::string> argv = {ctlForNobody.string(), "--bus", bus.address()};
        argv.insert(argv.end(), args.begin(), args.end());
        return rpiboot::test::runCommandAsNobody(argv);
    }
    nlohmann::json statusJson() const {
        const CommandResult r = ctl({"status", "--json"});
        EXPECT_EQ(r.exitCode, 0) << r.output;
        return nlohmann::json::parse(r.output);
    }
    nlohmann::json boardJson(const std::string& port) const {
        const nlohmann::json doc = statusJson();
        for (const auto& b : doc["boards"]) {
            if (b["port"] == port) {
                return b;
            }
        }
        return nullptr;
    }
    rpiboot::test::PromFile metrics() const {
        const rpiboot::test::PromFile f =
            rpiboot::test::parsePrometheusText(rpiboot::test::readFile(metricsFile()));
        EXPECT_EQ(f.error, "");
        return f;
    }

    rpiboot::test::ScratchDir work;
    PrivateBus bus{BusPolicy::System};
    fs::path ctlForNobody;
    std::unique_ptr<DaemonProcess> daemon;
    std::unique_ptr<VirtualControlClient> control;
};

TEST_F(RpibootctlTest, DaemonThatIsNotRunningIsNamedWithHowToStartIt) {
    const CommandResult r = ctl({"status"});
    EXPECT_EQ(r.exitCode, 3);
    EXPECT_EQ(r.output, "rpibootctl: rpibootd is not running (nobody owns io.rpibootd1 on the " +
                            bus.address() +
                            " bus). Start it with: sudo systemctl start rpibootd\n");
    EXPECT_EQ(ctl({"frobnicate"}).exitCode, 2);
}

TEST_F(RpibootctlTest, StatusJsonShowAndWaitFollowEightBoardsAndTheMetricsAgree) {
    startDaemon(kEightBoards, R"([{ "chip": "2712", "profile": "mass-storage-gadget" },
                                  { "port": "1-5", "profile": "mass-storage-gadget" }])");
    const CommandResult waited = ctl({"wait", "--timeout", "120"});
    ASSERT_EQ(waited.exitCode, 0) << waited.output << daemon->log();
    EXPECT_EQ(waited.output,
              "1-1 done\n1-2 done\n1-3 done\n1-4 done\n1-5 done\n1-6 done\n1-7 done\n1-8 done\n");

    const CommandResult table = ctl({"status"});
    EXPECT_EQ(table.exitCode, 0);
    EXPECT_EQ(table.output.rfind("PORT ", 0), 0U) << table.output;
    EXPECT_NE(table.output.find("\n1-6          BCM2712  "), std::string::npos) << table.output;
    EXPECT_NE(table.output.find("mass-storage-gadget  done"), std::string::npos) << table.output;

    const nlohmann::json doc = statusJson();
    EXPECT_EQ(doc["schema"], 1);
    EXPECT_EQ(doc["daemon_version"], "0.1.0");
    EXPECT_EQ(doc["held_ports"], nlohmann::json::array());
    ASSERT_EQ(doc["boards"].size(), 8U);
    std::uint64_t boots = 0;
    for (const auto& b : doc["boards"]) {
        EXPECT_EQ(b["stage"], "done") << b.dump();
        EXPECT_EQ(b["last_error"], "");
        EXPECT_GT(b["files_served"].get<unsigned>(), 0U);
        EXPECT_GT(b["finished_usec"].get<std::uint64_t>(), b["started_usec"].get<std::uint64_t>());
        boots += b["boot_count"].get<std::uint64_t>();
    }
    EXPECT_EQ(doc["boards"][5]["chip"], "BCM2712");
    EXPECT_EQ(doc["boards"][5]["object_path"], "/io/rpibootd1/device/_31_2d6");

    const CommandResult shown = ctl({"show", "1-3"});
    EXPECT_EQ(shown.exitCode, 0);
    EXPECT_NE(shown.output.find("Port:         1-3\n"), std::string::npos) << shown.output;
    EXPECT_NE(shown.output.find("Stage:        done\n"), std::string::npos) << shown.output;
    const CommandResult unknown = ctl({"show", "9-9"});
    EXPECT_EQ(unknown.exitCode, 1);
    EXPECT_EQ(unknown.output,
              "rpibootctl: no board on port \"9-9\"; known ports: 1-1, 1-2, 1-3, "
              "1-4, 1-5, 1-6, 1-7, 1-8\n");

    // The metrics file says what D-Bus says.
    ASSERT_TRUE(eventually(
        [&] {
            return metrics().sum("rpibootd_boots_finished_total") == 8 &&
                   metrics().value("rpibootd_boards{stage=\"done\"}") == 8;
        },
        10s))
        << rpiboot::test::readFile(metricsFile());
    const rpiboot::test::PromFile m = metrics();
    EXPECT_EQ(m.sum("rpibootd_boots_started_total"), static_cast<double>(boots));
    EXPECT_EQ(m.sum("rpibootd_boots_finished_total", "result=\"success\""), 8);
    EXPECT_EQ(m.sum("rpibootd_boots_finished_total", "result=\"failure\""), 0);
    EXPECT_EQ(m.value("rpibootd_boots_finished_total{chip=\"BCM2712\",profile=\"mass-storage-"
                      "gadget\",result=\"success\"}"),
              1);
    EXPECT_EQ(m.sum("rpibootd_boot_duration_seconds_count"), 8);
    EXPECT_EQ(m.sum("rpibootd_failures_total"), 0);
    EXPECT_GT(m.value("rpibootd_served_bytes_total"), 8 * 100000);
    EXPECT_EQ(m.value("rpibootd_written_bytes_total"), 0);
    EXPECT_GT(m.value("rpibootd_last_success_timestamp_seconds"), 1.7e9);
    EXPECT_EQ(m.types.at("rpibootd_boot_duration_seconds"), "histogram");
    if (rpiboot::test::runCommand({"sh", "-c", "command -v promtool"}).exitCode == 0) {
        const CommandResult check = rpiboot::test::runCommand(
            {"sh", "-c", "promtool check metrics < '" + metricsFile().string() + "'"});
        EXPECT_EQ(check.exitCode, 0) << check.output;
    }
}

TEST_F(RpibootctlTest, WaitExitsOneWhenANamedBoardFailsAndOnATimeout) {
    startDaemon("", R"([{ "port": "1-1", "profile": "once" }])");
    ASSERT_EQ(control->ok("plug " + (work.path() / "vanishes.json").string() + " 1-1"),
              std::vector<std::string>{"1-1"});
    const CommandResult failed = ctl({"wait", "1-1", "--timeout", "60"});
    EXPECT_EQ(failed.exitCode, 1) << failed.output;
    EXPECT_EQ(failed.output.rfind("1-1 failed: second stage failed while sending start4.elf", 0),
              0U)
        << failed.output;

    const CommandResult timedOut = ctl({"wait", "7-7", "--timeout", "0.3"});
    EXPECT_EQ(timedOut.exitCode, 1);
    EXPECT_EQ(timedOut.output,
              "rpibootctl: timed out after 0.3 s; still waiting for: 7-7 (not seen)\n");
    ASSERT_TRUE(eventually(
        [&] { return metrics().value("rpibootd_failures_total{reason=\"device_gone\"}") == 1; },
        10s))
        << rpiboot::test::readFile(metricsFile());
}

TEST_F(RpibootctlTest, HeldPortIsLeftUntouchedUntilReleasedAndHoldsSurviveARestart) {
    startDaemon("");
    const CommandResult hold = ctl({"hold", "1-2"});
    ASSERT_EQ(hold.exitCode, 0) << hold.output;
    EXPECT_EQ(hold.output, "holding 1-2\n");
    EXPECT_EQ(ctl({"hold", "3-*"}).exitCode, 0);
    ASSERT_EQ(control->ok("plug 2711 1-2"), std::vector<std::string>{"1-2"});
    ASSERT_TRUE(eventually([&] { return boardJson("1-2") != nullptr; })) << daemon->log();
    std::this_thread::sleep_for(500ms);  // time enough to have touched it, were it not held

    const nlohmann::json held = boardJson("1-2");
    EXPECT_EQ(held["stage"], "held");
    EXPECT_EQ(held["chip"], "BCM2711");
    EXPECT_EQ(held["boot_count"], 0);
    const auto record = nlohmann::json::parse(control->ok("record 1-2").at(0));
    EXPECT_TRUE(record["romAttempts"].empty()) << record.dump();
    EXPECT_TRUE(record["requests"].empty()) << record.dump();
    EXPECT_EQ(statusJson()["held_ports"], (nlohmann::json{"1-2", "3-*"}));
    EXPECT_EQ(rpiboot::test::readFile(work.path() / "state/held-ports"),
              "# Ports held by rpibootctl hold / io.rpibootd1 HoldPort; one glob per line.\n"
              "1-2\n3-*\n");
    const CommandResult table = ctl({"status"});
    EXPECT_NE(table.output.find("held ports: 1-2, 3-*\n"), std::string::npos) << table.output;
    const CommandResult notHeld = ctl({"release", "4-*"});
    EXPECT_EQ(notHeld.exitCode, 1);
    EXPECT_NE(notHeld.output.find("port 4-* is not held (held: 1-2, 3-*)"), std::string::npos)
        << notHeld.output;

    const CommandResult release = ctl({"release", "1-2"});
    ASSERT_EQ(release.exitCode, 0) << release.output;
    const CommandResult waited = ctl({"wait", "1-2", "--timeout", "60"});
    EXPECT_EQ(waited.exitCode, 0) << waited.output;
    EXPECT_EQ(boardJson("1-2")["boot_count"], 1);

    // A restart keeps what is still held.
    control.reset();
    ASSERT_EQ(daemon->stop(), 0);
    startDaemon("");
    EXPECT_EQ(statusJson()["held_ports"], (nlohmann::json{"3-*"}));
}

TEST_F(RpibootctlTest, UnprivilegedUserCanReadButNotControl) {
    startDaemon("2711:1:msd");
    ASSERT_EQ(ctl({"wait", "1-1", "--timeout", "60"}).exitCode, 0);

    const CommandResult status = ctlAsNobody({"status", "--json"});
    EXPECT_EQ(status.exitCode, 0) << status.output;
    EXPECT_EQ(nlohmann::json::parse(status.output)["boards"].size(), 1U);
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"retry", "1-1"}, {"forget", "1-1"}, {"hold", "1-1"}, {"hold", "2-*"}, {"reload"}}) {
        const CommandResult refused = ctlAsNobody(args);
        EXPECT_EQ(refused.exitCode, 1) << args[0];
        EXPECT_NE(refused.output.find("rpibootctl: permission denied: only root and members of "
                                      "group rpiboot may "),
                  std::string::npos)
            << refused.output;
        EXPECT_NE(refused.output.find("sudo usermod -aG rpiboot nobody"), std::string::npos)
            << refused.output;
    }
    EXPECT_EQ(statusJson()["held_ports"], nlohmann::json::array());
    EXPECT_EQ(boardJson("1-1")["boot_count"], 1);
}

TEST_F(RpibootctlTest, RetryBootsABoardAgainWhenItComesBackAndForgetDropsIt) {
    startDaemon("2711:1:msd");
    ASSERT_EQ(ctl({"wait", "1-1", "--timeout", "60"}).exitCode, 0);
    const CommandResult unknown = ctl({"retry", "5-5"});
    EXPECT_EQ(unknown.exitCode, 1);
    EXPECT_EQ(unknown.output, "rpibootctl: no board on port \"5-5\"; known ports: 1-1\n");

    // The board left the bus to run what it was served: it is booted when it comes back.
    const CommandResult retry = ctl({"retry", "1-1"});
    ASSERT_EQ(retry.exitCode, 0) << retry.output;
    EXPECT_EQ(retry.output, "retrying 1-1\n");
    EXPECT_EQ(boardJson("1-1")["stage"], "waiting");
    control->ok("unplug 1-1");
    control->ok("plug 2711 1-1");
    const CommandResult waited = ctl({"wait", "1-1", "--timeout", "60"});
    EXPECT_EQ(waited.exitCode, 0) << waited.output;
    EXPECT_EQ(boardJson("1-1")["boot_count"], 2);

    const CommandResult forget = ctl({"forget", "1-1"});
    EXPECT_EQ(forget.exitCode, 0) << forget.output;
    EXPECT_EQ(statusJson()["boards"].size(), 0U);
}

TEST_F(RpibootctlTest, IgnoredBoardIsNeverOpened) {
    startDaemon("", R"([{ "port": "1-9", "ignore": true }])");
    ASSERT_EQ(control->ok("plug 2711 1-9"), std::vector<std::string>{"1-9"});
    ASSERT_EQ(control->ok("plug 2711 1-1"), std::vector<std::string>{"1-1"});
    ASSERT_EQ(ctl({"wait", "1-1", "--timeout", "60"}).exitCode, 0);
    std::this_thread::sleep_for(300ms);

    EXPECT_EQ(boardJson("1-9"), nullptr);
    const auto record = nlohmann::json::parse(control->ok("record 1-9").at(0));
    EXPECT_TRUE(record["romAttempts"].empty()) << record.dump();
    EXPECT_NE(daemon->log().find("ignoring the board on port 1-9 (BCM2711): a rule of the "
                                 "configuration says ignore"),
              std::string::npos);
}

TEST_F(RpibootctlTest, BoardThatStallsOnceIsRetriedAndBoots) {
    startDaemon("", kGadgetRule, "patient");
    ASSERT_EQ(control->ok("plug " + (work.path() / "stalls.json").string() + " 1-1"),
              std::vector<std::string>{"1-1"});
    ASSERT_TRUE(eventually(
        [&] {
            const auto b = boardJson("1-1");
            return b != nullptr &&
                   b["last_error"].get<std::string>().rfind("attempt 1 of 3", 0) == 0;
        },
        30s))
        << daemon->log();
    const nlohmann::json between = boardJson("1-1");
    EXPECT_EQ(between["stage"], "waiting");
    EXPECT_NE(between["last_error"].get<std::string>().find("trying again in 8 s"),
              std::string::npos)
        << between.dump();

    // Power-cycled during the back-off, it comes back on the same port.
    control->ok("unplug 1-1");
    control->ok("plug 2711 1-1");
    const CommandResult waited = ctl({"wait", "1-1", "--timeout", "60"});
    ASSERT_EQ(waited.exitCode, 0) << waited.output << daemon->log();
    const nlohmann::json booted = boardJson("1-1");
    EXPECT_EQ(booted["boot_count"], 2);
    EXPECT_EQ(booted["last_error"], "");
    ASSERT_TRUE(
        eventually([&] { return metrics().sum("rpibootd_boots_finished_total") == 1; }, 10s));
    const rpiboot::test::PromFile m = metrics();
    EXPECT_EQ(m.sum("rpibootd_boots_started_total"), 1) << "a retry is not a new boot";
    EXPECT_EQ(m.sum("rpibootd_boots_finished_total", "result=\"success\""), 1);
    EXPECT_EQ(m.value("rpibootd_attempt_failures_total{reason=\"stall\"}"), 1);
}

// Reads what the child writes to the pty until `done(output)` or `limit`.
std::string readPty(int fd, const std::function<bool(const std::string&)>& done,
                    std::chrono::milliseconds limit) {
    std::string out;
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end && !done(out)) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) > 0) {
            char buf[4096];
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) {
                break;
            }
            out.append(buf, static_cast<std::size_t>(n));
        }
    }
    return out;
}

TEST_F(RpibootctlTest, WatchDrawsProgressBarsAndTheSummaryInATerminal) {
    startDaemon("");
    int master = -1;
    winsize size{};
    size.ws_col = 150;
    size.ws_row = 40;
    const std::string address = bus.address();
    const pid_t child = ::forkpty(&master, nullptr, nullptr, &size);
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::execl(RPIBOOTCTL_BINARY, "rpibootctl", "--bus", address.c_str(), "watch",
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    std::string screen = readPty(
        master, [](const std::string& o) { return o.find("booted 0 |") != std::string::npos; },
        10s);
    EXPECT_NE(screen.find("no boards yet"), std::string::npos) << screen;

    const std::string slow = (work.path() / "slow.json").string();
    control->ok("plug " + slow + ":6");
    control->ok("plug 2837:1:msd");
    control->ok("plug 2712:1:mass-storage-gadget");
    screen += readPty(
        master,
        [](const std::string& o) {
            const auto last = o.rfind("\x1b[H");
            return last != std::string::npos && o.find("booted 8 |", last) != std::string::npos;
        },
        120s);
    ::kill(child, SIGTERM);
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(master);

    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    const std::string last = screen.substr(screen.rfind("\x1b[H"));
    EXPECT_NE(last.find("booted 8 | failed 0 | in flight 0 | held 0 |"), std::string::npos) << last;
    for (const char* port : {"1-1 ", "1-2 ", "1-3 ", "1-4 ", "1-5 ", "1-6 ", "1-7 ", "1-8 "}) {
        EXPECT_NE(last.find(std::string("\n") + port), std::string::npos) << port << last;
    }
    EXPECT_NE(last.find("[####################] "), std::string::npos) << last;
    // Mid-transfer frames: a bar partly filled while a slow board served start4.elf.
    EXPECT_NE(screen.find("#-"), std::string::npos) << "no partial progress bar was drawn";
    EXPECT_NE(screen.find("serving-files"), std::string::npos);
    EXPECT_NE(screen.find("\x1b[?25l"), std::string::npos) << "cursor hidden while drawing";

    // For people reading the test log: a screen while boards were booting,
    // the last screen and the metrics file.
    const auto withoutCodes = [](const std::string& frame) {
        std::string plain;
        for (std::size_t i = 0; i < frame.size(); ++i) {
            if (frame[i] == '\x1b') {
                while (i < frame.size() && !std::isalpha(static_cast<unsigned char>(frame[i]))) {
                    ++i;
                }
                continue;
            }
            plain += frame[i];
        }
        return plain;
    };
    const std::size_t partial = screen.rfind("#-");
    if (partial != std::string::npos) {
        const std::size_t begin = screen.rfind("\x1b[H", partial);
        const std::size_t end = screen.find("\x1b[H", partial);
        std::cout << "--- rpibootctl watch, while booting ---\n"
                  << withoutCodes(screen.substr(begin, end - begin)) << "\n";
    }
    std::cout << "--- rpibootctl watch, last screen ---\n"
              << withoutCodes(last) << "\n--- " << metricsFile().filename().string() << " ---\n";
    ASSERT_TRUE(
        eventually([&] { return metrics().sum("rpibootd_boots_finished_total") == 8; }, 10s));
    std::cout << rpiboot::test::readFile(metricsFile());
}

TEST_F(RpibootctlTest, WatchPrintsPlainLinesWhenStdoutIsNotATerminal) {
    startDaemon("");
    const fs::path out = work.path() / "watch.txt";
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, STDOUT_FILENO);
        ::execl(RPIBOOTCTL_BINARY, "rpibootctl", "--bus", bus.address().c_str(), "watch",
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ASSERT_TRUE(eventually([&] { return fs::exists(out) && fs::file_size(out) > 0; }, 10s));
    control->ok("plug 2711:2:msd");
    ASSERT_EQ(ctl({"wait", "--timeout", "60"}).exitCode, 0);
    ASSERT_TRUE(eventually(
        [&] {
            return rpiboot::test::readFile(out).find("1-2 booted: ") != std::string::npos &&
                   rpiboot::test::readFile(out).find("1-1 booted: ") != std::string::npos;
        },
        10s))
        << rpiboot::test::readFile(out);
    ::kill(child, SIGTERM);
    int status = 0;
    ::waitpid(child, &status, 0);
    const std::string text = rpiboot::test::readFile(out);
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << "no terminal codes on a pipe";
    EXPECT_NE(text.find(" 1-1 BCM2711 sending-bootcode"), std::string::npos) << text;
    EXPECT_NE(text.find(" 1-1 BCM2711 serving-files start4.elf"), std::string::npos) << text;
    EXPECT_NE(text.find(" 1-1 BCM2711 done "), std::string::npos) << text;
    EXPECT_NE(text.find("booted 2 | failed 0 | in flight 0 | held 0"), std::string::npos) << text;
}

}  // namespace
}  // namespace rpibootd
