// The real rpibootd process with virtual boards, on a private dbus-daemon
// configured like a system bus with dbus/io.rpibootd1.conf, watched with an
// sd-bus client (signals, properties, ListDevices), busctl and dbus-send (as
// root and as nobody).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "rpiboot_test/bus_client.hpp"
#include "rpiboot_test/daemon_process.hpp"
#include "rpiboot_test/private_bus.hpp"

namespace rpibootd {
namespace {

namespace fs = std::filesystem;
using namespace rpiboot::test;

constexpr const char* kService = "io.rpibootd1";
constexpr const char* kManagerPath = "/io/rpibootd1";
constexpr const char* kManager = "io.rpibootd1.Manager";
constexpr const char* kDevice = "io.rpibootd1.Device";
constexpr auto kBootDeadline = std::chrono::seconds(120);

// Ports are handed out in the order of the --virtual items: 1-1, 1-2, ...
// Rules give two ports the gadget profile and one a profile of our own.
constexpr const char* kConfig = R"({
  "firmware_dir": "firmware",
  "profiles_dir": "profiles",
  "default_profile": "msd",
  "forget_after_ms": 600000,
  "rules": [
    { "port": "1-5", "profile": "mass-storage-gadget" },
    { "port": "1-6", "profile": "mass-storage-gadget" },
    { "port": "1-7", "profile": "lab-msd" }
  ]
}
)";

constexpr const char* kLabProfile = R"({
  "name": "lab-msd",
  "description": "The msd firmware under another name, chosen by port in the tests.",
  "firmware": { "root": "msd", "port_overlays": false }
}
)";

// A BCM2711 that leaves the bus 64 KiB into start4.elf (536536 bytes).
constexpr const char* kVanishingBoard = R"({
  "name": "vanishes-mid-file",
  "chip": "2711",
  "steps": [
    { "kind": "file", "name": "config.txt", "optional": true },
    { "kind": "file", "name": "pieeprom.sig", "optional": true },
    { "kind": "file", "name": "start4.elf",
      "fault": { "kind": "disconnect", "at": "data", "afterBytes": 65536 } }
  ]
}
)";

struct Expected {
    std::string port, chip, profile;
};

// 1-1 .. 1-8 for kEightBoards; the eighth is replaced by the vanishing board
// in one test.
const std::vector<Expected> kEightBoards = {
    {"1-1", "BCM2835", "msd"},
    {"1-2", "BCM2837", "msd"},
    {"1-3", "BCM2711", "msd"},
    {"1-4", "BCM2711", "msd"},
    {"1-5", "BCM2711", "mass-storage-gadget"},
    {"1-6", "BCM2712", "mass-storage-gadget"},
    {"1-7", "BCM2711", "lab-msd"},
    {"1-8", "BCM2711", "msd"},
};
constexpr const char* kEightBoardsSpec =
    "2835:1:msd,2837:1:msd,2711:2:msd,2711:1:mass-storage-gadget,2712:1:mass-storage-gadget,"
    "2711:1:msd,2711:1:msd";

class DaemonOnBusTest : public ::testing::Test {
  protected:
    void SetUp() override {
        prepareFirmware(work.path() / "firmware");
        writeFile(work.path() / "rpibootd.json", kConfig);
        writeFile(work.path() / "profiles/lab-msd.json", kLabProfile);
        writeFile(work.path() / "vanishing.json", kVanishingBoard);
        client = std::make_unique<BusClient>(event.get(), bus.address());
        client->recordSignals();
    }

    void startDaemon(const std::string& virtualSpec) {
        daemon = std::make_unique<DaemonProcess>(
            std::vector<std::string>{RPIBOOTD_BINARY, "-c",
                                     (work.path() / "rpibootd.json").string(), "--bus",
                                     bus.address(), "--no-udev", "--virtual", virtualSpec},
            work.path() / "rpibootd.log");
    }

    // Waits for `count` BootFinished signals; false (with the daemon's log
    // in the failure message) if they do not come.
    ::testing::AssertionResult waitForBoots(std::size_t count) {
        const bool ok = client->waitForSignals(
            count, [](const SeenSignal& s) { return s.member == "BootFinished"; }, kBootDeadline);
        if (ok) {
            return ::testing::AssertionSuccess();
        }
        return ::testing::AssertionFailure()
               << "fewer than " << count << " boots finished; rpibootd "
               << (daemon->running() ? "still runs" : "has exited") << ", its log:\n"
               << daemon->log();
    }

    // Position of the first recorded signal matching, or -1.
    long indexOf(const std::function<bool(const SeenSignal&)>& match) const {
        const auto& all = client->signals();
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (match(all[i])) {
                return static_cast<long>(i);
            }
        }
        return -1;
    }

    CommandResult busctl(std::vector<std::string> args) {
        return rpiboot::test::runCommand(rpiboot::test::busctl(bus.address(), std::move(args)));
    }

    std::vector<std::string> listDevices() {
        const rpiboot::test::CallResult r = client->call(kManagerPath, kManager, "ListDevices");
        if (!r.ok()) {
            ADD_FAILURE() << r.errorName << ": " << r.errorMessage;
            return {};
        }
        sd_bus_message* m = r.reply.get();
        std::vector<std::string> rows;
        if (sd_bus_message_enter_container(m, 'a', "(ossss)") < 0) {
            return rows;
        }
        const char *path, *port, *chip, *stage, *profile;
        while (sd_bus_message_read(m, "(ossss)", &path, &port, &chip, &stage, &profile) > 0) {
            rows.push_back(std::string(path) + " " + port + " " + chip + " " + stage + " " +
                           profile);
        }
        return rows;
    }

    // Only root may own io.rpibootd1 under the system policy; as anyone else
    // the tests run on an open bus and skip the policy checks.
    PrivateBus bus{geteuid() == 0 ? BusPolicy::System : BusPolicy::Open};
    rpiboot::test::ScratchDir work;
    rpiboot::test::EventPtr event = rpiboot::test::newEventLoop();
    std::unique_ptr<BusClient> client;
    std::unique_ptr<DaemonProcess> daemon;
};

TEST_F(DaemonOnBusTest, EightBoardsOfMixedChipsAndProfilesAllBootAndShowOnTheBus) {
    startDaemon(kEightBoardsSpec);
    ASSERT_TRUE(waitForBoots(8));

    std::vector<std::string> expectedRows;
    for (const Expected& e : kEightBoards) {
        const std::string path = devicePath(e.port);
        SCOPED_TRACE(e.port);
        // Signals: the object is announced, reaches done, then the boot is reported.
        const long added = indexOf(
            [&](const SeenSignal& s) { return s.member == "DeviceAdded" && s.object == path; });
        const long done = indexOf([&](const SeenSignal& s) {
            return s.member == "PropertiesChanged" && s.path == path && s.changed.count("Stage") &&
                   s.changed.at("Stage") == "done";
        });
        const long finished = indexOf(
            [&](const SeenSignal& s) { return s.member == "BootFinished" && s.object == path; });
        ASSERT_GE(added, 0);
        EXPECT_LT(added, done);
        EXPECT_LT(done, finished);
        EXPECT_TRUE(client->signals()[finished].success) << client->signals()[finished].message;
        // Properties, read back.
        EXPECT_EQ(client->getString(path, kDevice, "Port"), e.port);
        EXPECT_EQ(client->getString(path, kDevice, "Chip"), e.chip);
        EXPECT_EQ(client->getString(path, kDevice, "Profile"), e.profile);
        EXPECT_EQ(client->getString(path, kDevice, "Stage"), "done");
        EXPECT_EQ(client->getString(path, kDevice, "LastError"), "");
        EXPECT_GT(client->getUint32(path, "FilesServed"), 0U);
        EXPECT_GE(client->getUint32(path, "BootCount"), 1U);
        EXPECT_GT(client->getUint64(path, "StartedUsec"), 0U);
        EXPECT_GE(client->getUint64(path, "FinishedUsec"), client->getUint64(path, "StartedUsec"));
        expectedRows.push_back(path + " " + e.port + " " + e.chip + " done " + e.profile);
    }
    EXPECT_EQ(listDevices(), expectedRows);

    const CommandResult tree = busctl({"tree", "--list", kService});
    ASSERT_EQ(tree.exitCode, 0) << tree.output;
    for (const Expected& e : kEightBoards) {
        EXPECT_NE(tree.output.find(devicePath(e.port) + "\n"), std::string::npos) << tree.output;
    }
    const CommandResult stage =
        busctl({"get-property", kService, devicePath("1-6"), kDevice, "Stage"});
    EXPECT_EQ(stage.output, "s \"done\"\n");
    const CommandResult profiles =
        busctl({"get-property", kService, kManagerPath, kManager, "Profiles"});
    EXPECT_NE(profiles.output.find("\"lab-msd\""), std::string::npos) << profiles.output;
}

TEST_F(DaemonOnBusTest, BoardVanishingMidFileFailsWhileTheOthersFinish) {
    const std::string spec =
        "2835:1:msd,2837:1:msd,2711:2:msd,2711:1:mass-storage-gadget,"
        "2712:1:mass-storage-gadget,2711:1:msd," +
        (work.path() / "vanishing.json").string();
    startDaemon(spec);
    ASSERT_TRUE(waitForBoots(8));

    const std::string vanished = devicePath("1-8");
    const long finished = indexOf(
        [&](const SeenSignal& s) { return s.member == "BootFinished" && s.object == vanished; });
    ASSERT_GE(finished, 0);
    const SeenSignal& report = client->signals()[finished];
    EXPECT_FALSE(report.success);
    EXPECT_FALSE(report.message.empty());
    // The registry may learn that the device left after the failure and then
    // says "disconnected"; what went wrong stays in LastError either way.
    const std::string stageNow = client->getString(vanished, kDevice, "Stage");
    EXPECT_TRUE(stageNow == "failed" || stageNow == "disconnected") << stageNow;
    const std::string lastError = client->getString(vanished, kDevice, "LastError");
    EXPECT_FALSE(lastError.empty());
    EXPECT_EQ(report.message, lastError);
    // It got part of start4.elf and no more.
    const long failedStage = indexOf([&](const SeenSignal& s) {
        return s.member == "PropertiesChanged" && s.path == vanished && s.changed.count("Stage") &&
               s.changed.at("Stage") == "failed";
    });
    EXPECT_GE(failedStage, 0);
    EXPECT_LT(failedStage, finished);
    EXPECT_LT(client->getUint64(vanished, "BytesSent"), 536536U);

    for (std::size_t i = 0; i + 1 < kEightBoards.size(); ++i) {
        const std::string path = devicePath(kEightBoards[i].port);
        EXPECT_EQ(client->getString(path, kDevice, "Stage"), "done") << kEightBoards[i].port;
        EXPECT_EQ(client->getString(path, kDevice, "LastError"), "") << kEightBoards[i].port;
    }
}

TEST_F(DaemonOnBusTest, ReloadWithABrokenProfileIsRejectedAndTheOldConfigurationKept) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "Reload is for root (or group rpiboot) only";
    }
    startDaemon("2711:1:msd,2712:1:mass-storage-gadget");
    ASSERT_TRUE(waitForBoots(2));
    const std::vector<std::string> before = client->getStrings(kManagerPath, kManager, "Profiles");
    ASSERT_NE(std::find(before.begin(), before.end(), "lab-msd"), before.end());

    writeFile(work.path() / "profiles/broken.json",
              R"({ "name": "broken", "firmware": { "root": "msd" }, "colour": "blue" })");
    const rpiboot::test::CallResult refused = client->call(kManagerPath, kManager, "Reload");

    EXPECT_FALSE(refused.ok());
    EXPECT_EQ(refused.errorName, "io.rpibootd1.Error.ReloadFailed");
    EXPECT_NE(refused.errorMessage.find("broken.json"), std::string::npos) << refused.errorMessage;
    EXPECT_NE(refused.errorMessage.find("colour"), std::string::npos) << refused.errorMessage;
    EXPECT_EQ(client->getStrings(kManagerPath, kManager, "Profiles"), before);
    EXPECT_EQ(listDevices().size(), 2U);
    EXPECT_TRUE(daemon->running());

    // Fixed, the same call goes through and the new profile shows.
    fs::remove(work.path() / "profiles/broken.json");
    writeFile(work.path() / "profiles/extra.json",
              R"({ "name": "extra", "firmware": { "root": "msd" } })");
    const CommandResult reload = busctl({"call", kService, kManagerPath, kManager, "Reload"});
    EXPECT_EQ(reload.exitCode, 0) << reload.output;
    const std::vector<std::string> after = client->getStrings(kManagerPath, kManager, "Profiles");
    EXPECT_NE(std::find(after.begin(), after.end(), "extra"), after.end());
    EXPECT_TRUE(client->waitForSignal([](const SeenSignal& s) {
        return s.member == "PropertiesChanged" && s.changed.count("Profiles");
    }));
}

TEST_F(DaemonOnBusTest, UnprivilegedReloadIsRefusedByTheBusPolicyButReadingIsAllowed) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root: the system policy and running clients as nobody";
    }
    startDaemon("2711:1:msd");
    ASSERT_TRUE(waitForBoots(1));

    const CommandResult refused = rpiboot::test::runCommandAsNobody(
        rpiboot::test::dbusSend(bus.address(), {kManagerPath, "io.rpibootd1.Manager.Reload"}));
    const CommandResult refusedByBusctl = rpiboot::test::runCommandAsNobody(
        rpiboot::test::busctl(bus.address(), {"call", kService, kManagerPath, kManager, "Reload"}));
    const CommandResult stage = rpiboot::test::runCommandAsNobody(rpiboot::test::busctl(
        bus.address(), {"get-property", kService, devicePath("1-1"), kDevice, "Stage"}));
    const CommandResult list = rpiboot::test::runCommandAsNobody(rpiboot::test::busctl(
        bus.address(), {"call", kService, kManagerPath, kManager, "ListDevices"}));
    const CommandResult listEx = rpiboot::test::runCommandAsNobody(rpiboot::test::busctl(
        bus.address(), {"call", kService, kManagerPath, kManager, "ListDevicesEx"}));
    const CommandResult introspect = rpiboot::test::runCommandAsNobody(
        rpiboot::test::busctl(bus.address(), {"introspect", kService, kManagerPath}));

    // dbus-daemon itself refused it: the service never saw the call.
    EXPECT_NE(refused.exitCode, 0);
    EXPECT_NE(refused.output.find("org.freedesktop.DBus.Error.AccessDenied"), std::string::npos)
        << refused.output;
    EXPECT_NE(refused.output.find("Rejected send message"), std::string::npos) << refused.output;
    EXPECT_NE(refused.output.find("member=\"Reload\""), std::string::npos) << refused.output;
    EXPECT_EQ(refusedByBusctl.output, "Call failed: Access denied\n");
    EXPECT_EQ(stage.output, "s \"done\"\n");
    EXPECT_EQ(list.exitCode, 0) << list.output;
    EXPECT_NE(list.output.find("\"1-1\" \"BCM2711\" \"done\" \"msd\""), std::string::npos)
        << list.output;
    EXPECT_EQ(listEx.exitCode, 0) << listEx.output;
    EXPECT_NE(listEx.output.find("\"1-1\" \"BCM2711\" \"done\" \"msd\" \"\" 0"), std::string::npos)
        << listEx.output;
    EXPECT_EQ(introspect.exitCode, 0) << introspect.output;
    // Root may.
    const CommandResult byRoot = busctl({"call", kService, kManagerPath, kManager, "Reload"});
    EXPECT_EQ(byRoot.exitCode, 0) << byRoot.output;
}

// A BCM2712 given a profile with a storage step: the daemon follows it into
// the gadget it becomes and writes the image into the virtual board's disk.
TEST_F(DaemonOnBusTest, BoardWithAStorageProfileShowsWhatItBecameAndTheWriteOnTheBus) {
    constexpr std::size_t kImage = 4u << 20;
    std::string image(kImage, '\0');
    for (std::size_t i = 0; i < image.size(); ++i) {
        image[i] = static_cast<char>((i * 2654435761U) >> 13);
    }
    writeFile(work.path() / "os.img", image);
    writeFile(work.path() / "rpibootd.json", R"({
  "firmware_dir": "firmware",
  "profiles_dir": "profiles",
  "default_profile": "gadget-image",
  "forget_after_ms": 600000
})");
    writeFile(work.path() / "profiles/gadget-image.json", R"({
  "name": "gadget-image",
  "firmware": { "root": "mass-storage-gadget64", "fallback": ["."] },
  "metadata": { "dir": ")" + (work.path() / "records").string() +
                                                              R"(" },
  "storage": { "image": ")" + (work.path() / "os.img").string() +
                                                              R"(", "disk": "mmcblk0" }
})");
    startDaemon("2712:1:mass-storage-gadget");
    ASSERT_TRUE(waitForBoots(1));
    const std::string path = devicePath("1-1");
    const long finished = indexOf(
        [&](const SeenSignal& s) { return s.member == "BootFinished" && s.object == path; });
    ASSERT_GE(finished, 0);
    EXPECT_TRUE(client->signals()[finished].success) << client->signals()[finished].message;

    // Every stage, in order, each announced before BootFinished.
    std::vector<std::string> stages;
    long lastStage = -1;
    const auto& all = client->signals();
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (all[i].member == "PropertiesChanged" && all[i].path == path &&
            all[i].changed.count("Stage")) {
            stages.push_back(all[i].changed.at("Stage"));
            lastStage = static_cast<long>(i);
        }
    }
    EXPECT_EQ(stages, (std::vector<std::string>{"waiting", "serving-files", "booted",
                                                "storage-ready", "writing", "verifying", "done"}));
    EXPECT_LT(lastStage, finished);

    const CommandResult read = busctl({"get-property", kService, path, kDevice, "Stage",
                                       "AfterBoot", "Disks", "BytesWritten", "BytesToWrite"});
    ASSERT_EQ(read.exitCode, 0) << read.output;
    const std::vector<std::string> lines = [&] {
        std::vector<std::string> out;
        std::istringstream in(read.output);
        for (std::string line; std::getline(in, line);) {
            out.push_back(line);
        }
        return out;
    }();
    ASSERT_EQ(lines.size(), 5U) << read.output;
    EXPECT_EQ(lines[0], "s \"done\"");
    EXPECT_EQ(lines[1].rfind("s \"gadget 0a5c:0104 serial 10000000", 0), 0U) << lines[1];
    EXPECT_NE(lines[2].find("a(sst) 1 \""), std::string::npos) << lines[2];
    EXPECT_NE(lines[2].find("\"mmcblk0\" 67108864"), std::string::npos) << lines[2];
    EXPECT_EQ(lines[3], "t " + std::to_string(kImage));
    EXPECT_EQ(lines[4], "t " + std::to_string(kImage));
    EXPECT_EQ(client->getUint64(path, "BytesWritten"), kImage);
    // One call gives the same for every board.
    const CommandResult listed =
        busctl({"call", kService, kManagerPath, kManager, "ListDevicesEx"});
    ASSERT_EQ(listed.exitCode, 0) << listed.output;
    EXPECT_NE(listed.output.find("\"1-1\" \"BCM2712\" \"done\" \"gadget-image\" \"gadget 0a5c:0104 "
                                 "serial 10000000"),
              std::string::npos)
        << listed.output;
    EXPECT_NE(listed.output.find("\"mmcblk0\" 67108864"), std::string::npos) << listed.output;
    // The boot record is there, and says the image was verified.
    ASSERT_TRUE(fs::is_directory(work.path() / "records")) << daemon->log();
    std::size_t records = 0;
    for (const auto& entry : fs::directory_iterator(work.path() / "records")) {
        std::ifstream in(entry.path());
        const std::string text((std::istreambuf_iterator<char>(in)), {});
        records += text.find("verified") != std::string::npos ? 1 : 0;
    }
    EXPECT_EQ(records, 1U);
}

TEST_F(DaemonOnBusTest, DaemonStopsCleanlyOnSigtermAndReleasesTheName) {
    startDaemon("2711:1:msd");
    ASSERT_TRUE(waitForBoots(1));

    EXPECT_EQ(daemon->stop(), 0) << daemon->log();
    const CommandResult gone = busctl({"status", kService});
    EXPECT_NE(gone.exitCode, 0) << gone.output;
}

}  // namespace
}  // namespace rpibootd
