// DbusService on a private dbus-daemon, driven through StatusSink by the test
// (standing in for the board registry) and checked from outside with busctl
// and with an sd-bus client.
#include "dbus_service.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <regex>
#include <rpiboot/core/error.hpp>
#include <sstream>

#include "board_status.hpp"
#include "rpiboot_test/bus_client.hpp"
#include "rpiboot_test/private_bus.hpp"

namespace rpibootd {
namespace {

using namespace rpiboot::test;

constexpr const char* kDevice = "io.rpibootd1.Device";
constexpr const char* kManager = "io.rpibootd1.Manager";

class FakeControl : public ManagerControl {
  public:
    std::vector<BoardStatus> known;
    std::vector<std::string> profiles = {"msd", "mass-storage-gadget"};
    std::vector<std::string> profilesAfterReload = {"msd", "mass-storage-gadget", "recovery"};
    ReloadResult nextReload{true, ""};
    int reloadCalls = 0;

    std::vector<BoardStatus> boards() const override { return known; }
    std::vector<std::string> profileNames() const override { return profiles; }
    ReloadResult reload() override {
        ++reloadCalls;
        if (nextReload.ok) {
            profiles = profilesAfterReload;
        }
        return nextReload;
    }
    ControlResult control(const std::string& port, BoardAction) override {
        return {ControlOutcome::Busy, "the board on port " + port + " is booting right now"};
    }
    ControlResult holdPort(const std::string& glob) override {
        held.push_back(glob);
        return {};
    }
    ControlResult releasePort(const std::string& glob) override {
        return {ControlOutcome::NotHeld, "port " + glob + " is not held"};
    }
    std::vector<std::string> heldPorts() const override { return held; }
    std::vector<std::string> held;
};

BoardStatus board(const std::string& port, const std::string& chip, const std::string& profile) {
    BoardStatus b;
    b.port = port;
    b.chip = chip;
    b.profile = profile;
    return b;
}

class DbusServiceTest : public ::testing::Test {
  protected:
    void start() {
        options.bus = bus.address();
        options.version = "0.1.0-test";
        service = std::make_unique<DbusService>(loop, options, control, log);
        client = std::make_unique<BusClient>(loop.get(), bus.address());
    }

    // Runs a blocking client (busctl) on another thread while this thread
    // keeps the service's event loop turning.
    CommandResult whileServing(std::function<CommandResult()> work) {
        auto result = std::async(std::launch::async, std::move(work));
        rpiboot::test::pumpUntil(loop.get(), [&] {
            return result.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
        });
        return result.get();
    }

    CommandResult busctl(std::vector<std::string> args) {
        const auto argv = rpiboot::test::busctl(bus.address(), std::move(args));
        return whileServing([argv] { return rpiboot::test::runCommand(argv); });
    }

    // Reload through dbus-send, which prints an error's name and message as sent.
    CommandResult reloadAs(std::vector<std::string> user) {
        std::vector<std::string> argv = {"setpriv"};
        argv.insert(argv.end(), user.begin(), user.end());
        const auto send =
            rpiboot::test::dbusSend(bus.address(), {kManagerPath, "io.rpibootd1.Manager.Reload"});
        argv.insert(argv.end(), send.begin(), send.end());
        return whileServing([argv] { return rpiboot::test::runCommand(argv); });
    }

    CommandResult busctlAsNobody(std::vector<std::string> args) {
        const auto argv = rpiboot::test::busctl(bus.address(), std::move(args));
        return whileServing([argv] { return rpiboot::test::runCommandAsNobody(argv); });
    }

    // Lets the service send what it has queued and the client read it.
    void settle() {
        // A round trip to the service orders everything it sent before.
        client->call(kManagerPath, "org.freedesktop.DBus.Peer", "Ping");
    }

    std::vector<SeenSignal> signalsOf(const std::string& path) const {
        std::vector<SeenSignal> out;
        for (const auto& s : client->signals()) {
            if (s.path == path || s.object == path) {
                out.push_back(s);
            }
        }
        return out;
    }

    PrivateBus bus;
    EventLoop loop;
    FakeControl control;
    Logger log{LogTargets{}};
    DbusOptions options;
    std::unique_ptr<DbusService> service;
    std::unique_ptr<BusClient> client;
};

TEST(DevicePath, EscapesThePortPathLikeSdBusPathEncode) {
    EXPECT_EQ(devicePath("1-1.3"), "/io/rpibootd1/device/_31_2d1_2e3");
    EXPECT_EQ(devicePath("2-1"), "/io/rpibootd1/device/_32_2d1");
    EXPECT_EQ(devicePath("3-1.4.2"), "/io/rpibootd1/device/_33_2d1_2e4_2e2");
}

TEST_F(DbusServiceTest, BusctlTreeShowsTheManagerAndOneObjectPerBoard) {
    start();
    service->boardAdded(board("1-1.3", "BCM2711", "msd"));
    service->boardAdded(board("1-1.4", "BCM2712", "mass-storage-gadget"));

    const CommandResult tree = busctl({"tree", "--list", kBusName});

    ASSERT_EQ(tree.exitCode, 0) << tree.output;
    EXPECT_NE(tree.output.find("/io/rpibootd1\n"), std::string::npos) << tree.output;
    EXPECT_NE(tree.output.find("/io/rpibootd1/device/_31_2d1_2e3\n"), std::string::npos)
        << tree.output;
    EXPECT_NE(tree.output.find("/io/rpibootd1/device/_31_2d1_2e4\n"), std::string::npos)
        << tree.output;
}

// Every member of dbus/io.rpibootd1.xml, as (interface, member, kind, signature).
struct DocumentedMember {
    std::string interface, member, kind, signature;
};

std::vector<DocumentedMember> documentedMembers() {
    std::ifstream in(RPIBOOT_DBUS_INTROSPECTION_FILE);
    std::stringstream text;
    text << in.rdbuf();
    const std::string xml = text.str();
    std::vector<DocumentedMember> out;
    const std::regex interfaceRe(R"re(<interface name="([^"]+)">([\s\S]*?)</interface>)re");
    const std::regex propertyRe(R"re(<property name="([^"]+)" type="([^"]+)")re");
    const std::regex methodRe(R"re(<(method|signal) name="([^"]+)"(/?)>)re");
    for (std::sregex_iterator i(xml.begin(), xml.end(), interfaceRe), end; i != end; ++i) {
        const std::string iface = (*i)[1];
        const std::string body = (*i)[2];
        for (std::sregex_iterator p(body.begin(), body.end(), propertyRe); p != end; ++p) {
            out.push_back({iface, (*p)[1], "property", (*p)[2]});
        }
        for (std::sregex_iterator m(body.begin(), body.end(), methodRe); m != end; ++m) {
            out.push_back({iface, (*m)[2], (*m)[1], ""});
        }
    }
    return out;
}

TEST_F(DbusServiceTest, BusctlIntrospectShowsEveryDocumentedMember) {
    start();
    service->boardAdded(board("1-1.3", "BCM2711", "msd"));
    const auto documented = documentedMembers();
    // The Device properties documented are exactly those of kBoardProperties.
    std::vector<std::string> documentedDevice, declaredDevice;
    for (const auto& m : documented) {
        if (m.interface == kDevice && m.kind == "property") {
            documentedDevice.push_back(m.member + " " + m.signature);
        }
    }
    for (const auto& p : kBoardProperties) {
        declaredDevice.push_back(std::string(p.name) + " " + dbusSignature(p));
    }
    EXPECT_EQ(documentedDevice, declaredDevice) << "dbus/io.rpibootd1.xml vs kBoardProperties";
    // Manager: 4 properties, 5 methods, 3 signals; Device: its properties and 4 methods.
    ASSERT_EQ(documented.size(), 4U + 5U + 3U + std::size(kBoardProperties) + 4U)
        << "dbus/io.rpibootd1.xml changed?";

    const CommandResult manager = busctl({"introspect", kBusName, kManagerPath});
    const CommandResult device = busctl({"introspect", kBusName, devicePath("1-1.3")});

    ASSERT_EQ(manager.exitCode, 0) << manager.output;
    ASSERT_EQ(device.exitCode, 0) << device.output;
    for (const auto& m : documented) {
        const std::string& out = m.interface == kManager ? manager.output : device.output;
        std::string pattern = "\\." + m.member + "\\s+" + m.kind + "\\s+";
        if (!m.signature.empty()) {
            pattern += std::regex_replace(m.signature, std::regex(R"([(){}])"), R"(\$&)") + "\\s";
        }
        EXPECT_TRUE(std::regex_search(out, std::regex(pattern)))
            << m.interface << "." << m.member << " (" << m.kind << " " << m.signature
            << ") missing from:\n"
            << out;
    }
    EXPECT_TRUE(
        std::regex_search(manager.output, std::regex(R"(\.ListDevices\s+method\s+-\s+a\(ossss\))")))
        << manager.output;
    EXPECT_TRUE(std::regex_search(
        manager.output, std::regex(R"(\.ListDevicesEx\s+method\s+-\s+a\(osssssa\(sst\)\))")))
        << manager.output;
    EXPECT_TRUE(std::regex_search(manager.output, std::regex(R"(\.BootFinished\s+signal\s+obs)")))
        << manager.output;
    EXPECT_NE(manager.output.find("org.freedesktop.DBus.ObjectManager"), std::string::npos);
}

TEST_F(DbusServiceTest, BusctlGetPropertyReadsManagerAndDeviceValues) {
    control.profiles = {"msd", "recovery"};
    start();
    BoardStatus b = board("1-1.3", "BCM2711", "msd");
    b.stage = kStageServingFiles;
    b.bytesSent = 1234;
    b.metadata = {{"MAC_ADDR", "d8:3a:dd:01:02:03"}};
    service->boardAdded(b);

    const auto version = busctl({"get-property", kBusName, kManagerPath, kManager, "Version"});
    const auto devices = busctl({"get-property", kBusName, kManagerPath, kManager, "Devices"});
    const auto profiles = busctl({"get-property", kBusName, kManagerPath, kManager, "Profiles"});
    const auto stage = busctl({"get-property", kBusName, devicePath("1-1.3"), kDevice, "Stage"});
    const auto sent = busctl({"get-property", kBusName, devicePath("1-1.3"), kDevice, "BytesSent"});
    const auto meta = busctl({"get-property", kBusName, devicePath("1-1.3"), kDevice, "Metadata"});

    EXPECT_EQ(version.output, "s \"0.1.0-test\"\n");
    EXPECT_EQ(devices.output, "ao 1 \"/io/rpibootd1/device/_31_2d1_2e3\"\n");
    EXPECT_EQ(profiles.output, "as 2 \"msd\" \"recovery\"\n");
    EXPECT_EQ(stage.output, "s \"serving-files\"\n");
    EXPECT_EQ(sent.output, "t 1234\n");
    EXPECT_EQ(meta.output, "a{ss} 1 \"MAC_ADDR\" \"d8:3a:dd:01:02:03\"\n");
}

TEST_F(DbusServiceTest, DevicePropertiesFollowTheLatestBoardStatus) {
    start();
    BoardStatus b = board("1-1.3", "BCM2711", "mass-storage-gadget");
    service->boardAdded(b);
    b.serial = "a1b2c3d4";
    b.stage = kStageDone;
    b.currentFile = "boot.img";
    b.bytesSent = 9'000'000'000ULL;
    b.bytesTotal = 9'000'000'001ULL;
    b.filesServed = 7;
    b.bootCount = 2;
    b.lastError = "previous attempt: device left the bus";
    b.startedUsec = 1'700'000'000'000'000ULL;
    b.finishedUsec = 1'700'000'005'000'000ULL;
    b.metadata = {{"SERIAL_NUM", "a1b2c3d4"}, {"FACTORY_UUID", "8IO"}};
    service->boardChanged(b, kFieldSerial | kFieldStage | kFieldCurrentFile | kFieldBytesSent |
                                 kFieldBytesTotal | kFieldFilesServed | kFieldBootCount |
                                 kFieldLastError | kFieldStartedUsec | kFieldFinishedUsec |
                                 kFieldMetadata);

    const std::string path = devicePath("1-1.3");
    EXPECT_EQ(client->getString(path, kDevice, "Port"), "1-1.3");
    EXPECT_EQ(client->getString(path, kDevice, "Chip"), "BCM2711");
    EXPECT_EQ(client->getString(path, kDevice, "Serial"), "a1b2c3d4");
    EXPECT_EQ(client->getString(path, kDevice, "Profile"), "mass-storage-gadget");
    EXPECT_EQ(client->getString(path, kDevice, "Stage"), "done");
    EXPECT_EQ(client->getString(path, kDevice, "CurrentFile"), "boot.img");
    EXPECT_EQ(client->getUint64(path, "BytesSent"), 9'000'000'000ULL);
    EXPECT_EQ(client->getUint64(path, "BytesTotal"), 9'000'000'001ULL);
    EXPECT_EQ(client->getUint32(path, "FilesServed"), 7U);
    EXPECT_EQ(client->getUint32(path, "BootCount"), 2U);
    EXPECT_EQ(client->getString(path, kDevice, "LastError"),
              "previous attempt: device left the bus");
    EXPECT_EQ(client->getUint64(path, "StartedUsec"), 1'700'000'000'000'000ULL);
    EXPECT_EQ(client->getUint64(path, "FinishedUsec"), 1'700'000'005'000'000ULL);
    EXPECT_EQ(
        client->getDict(path, "Metadata"),
        (std::map<std::string, std::string>{{"FACTORY_UUID", "8IO"}, {"SERIAL_NUM", "a1b2c3d4"}}));
}

TEST_F(DbusServiceTest, ListDevicesReturnsPathPortChipStageAndProfileOfEveryBoard) {
    start();
    BoardStatus a = board("1-1.3", "BCM2711", "msd");
    a.stage = kStageDone;
    BoardStatus b = board("2-1", "BCM2835", "msd");
    b.stage = kStageSendingBootcode;
    service->boardAdded(a);
    service->boardAdded(b);

    const rpiboot::test::CallResult r = client->call(kManagerPath, kManager, "ListDevices");

    ASSERT_TRUE(r.ok()) << r.errorName << ": " << r.errorMessage;
    sd_bus_message* m = r.reply.get();
    ASSERT_GE(sd_bus_message_enter_container(m, 'a', "(ossss)"), 0);
    std::vector<std::string> rows;
    const char *path, *port, *chip, *stage, *profile;
    while (sd_bus_message_read(m, "(ossss)", &path, &port, &chip, &stage, &profile) > 0) {
        rows.push_back(std::string(path) + " " + port + " " + chip + " " + stage + " " + profile);
    }
    EXPECT_EQ(rows, (std::vector<std::string>{
                        "/io/rpibootd1/device/_31_2d1_2e3 1-1.3 BCM2711 done msd",
                        "/io/rpibootd1/device/_32_2d1 2-1 BCM2835 sending-bootcode msd"}));
}

TEST_F(DbusServiceTest, ListDevicesExAddsWhatEachBoardBecameAndItsDisks) {
    start();
    BoardStatus a = board("1-1.3", "BCM2712", "msd");
    a.stage = kStageWriting;
    a.afterBoot = "gadget 0a5c:0104 serial 100000009e3779b1";
    a.disks = {DiskEntry{"/dev/sdb", "mmcblk0", 67108864}, DiskEntry{"/dev/sdc", "nvme0n1", 512}};
    BoardStatus b = board("2-1", "BCM2835", "msd");
    b.stage = kStageSendingBootcode;
    service->boardAdded(a);
    service->boardAdded(b);

    const rpiboot::test::CallResult r = client->call(kManagerPath, kManager, "ListDevicesEx");

    ASSERT_TRUE(r.ok()) << r.errorName << ": " << r.errorMessage;
    sd_bus_message* m = r.reply.get();
    ASSERT_GE(sd_bus_message_enter_container(m, 'a', "(osssssa(sst))"), 0);
    std::vector<std::string> rows;
    while (sd_bus_message_enter_container(m, 'r', "osssssa(sst)") > 0) {
        const char *path, *port, *chip, *stage, *profile, *afterBoot;
        ASSERT_GE(
            sd_bus_message_read(m, "osssss", &path, &port, &chip, &stage, &profile, &afterBoot), 0);
        std::string row = std::string(path) + " " + port + " " + chip + " " + stage + " " +
                          profile + " [" + afterBoot + "]";
        ASSERT_GE(sd_bus_message_enter_container(m, 'a', "(sst)"), 0);
        const char *node, *name;
        std::uint64_t size = 0;
        while (sd_bus_message_read(m, "(sst)", &node, &name, &size) > 0) {
            row += std::string(" ") + node + "=" + name + ":" + std::to_string(size);
        }
        ASSERT_GE(sd_bus_message_exit_container(m), 0);
        ASSERT_GE(sd_bus_message_exit_container(m), 0);
        rows.push_back(row);
    }
    EXPECT_EQ(rows, (std::vector<std::string>{
                        "/io/rpibootd1/device/_31_2d1_2e3 1-1.3 BCM2712 writing msd "
                        "[gadget 0a5c:0104 serial 100000009e3779b1] /dev/sdb=mmcblk0:67108864 "
                        "/dev/sdc=nvme0n1:512",
                        "/io/rpibootd1/device/_32_2d1 2-1 BCM2835 sending-bootcode msd []"}));
}

TEST_F(DbusServiceTest, BoardsKnownBeforeTheServiceStartsArePublished) {
    control.known = {board("1-2", "BCM2712", "recovery")};
    start();

    EXPECT_EQ(client->getStrings(kManagerPath, kManager, "Devices"),
              std::vector<std::string>{"/io/rpibootd1/device/_31_2d2"});
    EXPECT_EQ(client->getString(devicePath("1-2"), kDevice, "Profile"), "recovery");
}

TEST_F(DbusServiceTest, SignalsFollowTheBoardLifecycleInOrder) {
    start();
    client->recordSignals();
    const std::string path = devicePath("1-1.3");

    BoardStatus b = board("1-1.3", "BCM2711", "msd");
    service->boardAdded(b);
    b.stage = kStageSendingBootcode;
    service->boardChanged(b, kFieldStage);
    b.stage = kStageServingFiles;
    b.currentFile = "start4.elf";
    service->boardChanged(b, kFieldStage | kFieldCurrentFile);
    b.stage = kStageDone;
    service->boardChanged(b, kFieldStage);
    service->bootFinished("1-1.3", true, "booted into mass storage");
    service->boardRemoved("1-1.3");
    settle();

    std::vector<std::string> seen;
    for (const auto& s : signalsOf(path)) {
        std::string entry = s.member;
        if (s.member == "PropertiesChanged") {
            entry += ":" + (s.changed.count("Stage") ? s.changed.at("Stage") : std::string("-"));
        }
        seen.push_back(entry);
    }
    EXPECT_EQ(seen, (std::vector<std::string>{
                        "InterfacesAdded", "DeviceAdded", "PropertiesChanged:sending-bootcode",
                        "PropertiesChanged:serving-files", "PropertiesChanged:done", "BootFinished",
                        "DeviceRemoved", "InterfacesRemoved"}));
    const auto finished = signalsOf(path)[5];
    EXPECT_TRUE(finished.success);
    EXPECT_EQ(finished.message, "booted into mass storage");
}

// Progress arrives already rate-limited by the stage workers (see
// StageWorker tests): the adapter announces a change at once, naming exactly
// the properties that changed, in the order they came (transfer-only changes
// that follow one another closely are held back; see the next test).
TEST_F(DbusServiceTest, EachChangeIsAnnouncedAtOnceWithOnlyWhatChanged) {
    start();
    client->recordSignals();
    BoardStatus b = board("1-1.3", "BCM2711", "msd");
    b.stage = kStageServingFiles;
    service->boardAdded(b);
    b.bytesSent = 100;
    service->boardChanged(b, kFieldBytesSent);
    b.bytesSent = 5000;
    b.stage = kStageDone;
    service->boardChanged(b, kFieldBytesSent | kFieldStage);
    ASSERT_TRUE(client->waitForSignal([](const SeenSignal& s) {
        return s.changed.count("Stage") && s.changed.at("Stage") == "done";
    }));

    std::vector<std::map<std::string, std::string>> changes;
    for (const auto& s : signalsOf(devicePath("1-1.3"))) {
        if (s.member == "PropertiesChanged") {
            changes.push_back(s.changed);
        }
    }
    ASSERT_EQ(changes.size(), 2U);
    EXPECT_EQ(changes[0], (std::map<std::string, std::string>{{"BytesSent", "100"}}));
    EXPECT_EQ(changes[1],
              (std::map<std::string, std::string>{{"BytesSent", "5000"}, {"Stage", "done"}}));
}

// A board that asks for many small files in a row changes CurrentFile and
// FilesServed every millisecond or so. The first change goes out at once, the
// rest are held back for 100 ms and then announced together with the latest
// values; a stage change goes out at once and carries what was held back.
TEST_F(DbusServiceTest, TransferChangesInABurstAreAnnouncedTogetherWithTheLatestValues) {
    start();
    client->recordSignals();
    BoardStatus b = board("1-1.3", "BCM2711", "msd");
    b.stage = kStageServingFiles;
    service->boardAdded(b);
    for (std::uint32_t file = 1; file <= 150; ++file) {
        b.currentFile = "file" + std::to_string(file);
        b.filesServed = file;
        service->boardChanged(b, kFieldCurrentFile | kFieldFilesServed);
    }
    ASSERT_TRUE(client->waitForSignal([](const SeenSignal& s) {
        return s.changed.count("FilesServed") && s.changed.at("FilesServed") == "150";
    })) << "the latest value never reached the client";

    for (std::uint32_t file = 151; file <= 160; ++file) {
        b.currentFile = "file" + std::to_string(file);
        b.filesServed = file;
        service->boardChanged(b, kFieldCurrentFile | kFieldFilesServed);
    }
    b.stage = kStageDone;
    service->boardChanged(b, kFieldStage);
    ASSERT_TRUE(client->waitForSignal([](const SeenSignal& s) {
        return s.changed.count("Stage") && s.changed.at("Stage") == "done";
    }));

    std::vector<std::map<std::string, std::string>> changes;
    for (const auto& s : signalsOf(devicePath("1-1.3"))) {
        if (s.member == "PropertiesChanged") {
            changes.push_back(s.changed);
        }
    }
    // file1 at once; file2..file149 never (held back, then overtaken);
    // file150 when the window closed; the rest held back again or at once
    // (depending on whether the window had closed), never after `done`.
    ASSERT_GE(changes.size(), 3U);
    EXPECT_LE(changes.size(), 4U);
    EXPECT_EQ(changes.front().at("FilesServed"), "1");
    EXPECT_EQ(changes[1].at("FilesServed"), "150");
    EXPECT_EQ(changes[1].at("CurrentFile"), "file150");
    EXPECT_EQ(changes.back(),
              (std::map<std::string, std::string>{
                  {"CurrentFile", "file160"}, {"FilesServed", "160"}, {"Stage", "done"}}));
    const auto files =
        busctl({"get-property", kBusName, devicePath("1-1.3"), kDevice, "FilesServed"});
    EXPECT_EQ(files.output, "u 160\n");
}

TEST_F(DbusServiceTest, TheLatestProgressReachesTheClient) {
    start();
    client->recordSignals();
    BoardStatus b = board("1-1.3", "BCM2711", "msd");
    service->boardAdded(b);
    b.bytesSent = 100;
    service->boardChanged(b, kFieldBytesSent);
    b.bytesSent = 200;
    service->boardChanged(b, kFieldBytesSent);

    EXPECT_TRUE(client->waitForSignal([](const SeenSignal& s) {
        return s.changed.count("BytesSent") && s.changed.at("BytesSent") == "200";
    })) << "the last progress value never reached the client";
}

TEST_F(DbusServiceTest, RemovedBoardLeavesTheTreeAndTheDevicesList) {
    start();
    service->boardAdded(board("1-1.3", "BCM2711", "msd"));
    service->boardAdded(board("1-1.4", "BCM2711", "msd"));
    service->boardRemoved("1-1.3");

    EXPECT_EQ(client->getStrings(kManagerPath, kManager, "Devices"),
              std::vector<std::string>{"/io/rpibootd1/device/_31_2d1_2e4"});
    const rpiboot::test::CallResult gone =
        client->getProperty(devicePath("1-1.3"), kDevice, "Stage");
    EXPECT_FALSE(gone.ok());
    EXPECT_EQ(gone.errorName, "org.freedesktop.DBus.Error.UnknownObject");
}

TEST_F(DbusServiceTest, ObjectManagerListsEveryBoardWithItsProperties) {
    start();
    BoardStatus b = board("1-1.3", "BCM2711", "msd");
    b.stage = kStageDone;
    service->boardAdded(b);

    const CommandResult objects =
        busctl({"call", kBusName, kManagerPath, "org.freedesktop.DBus.ObjectManager",
                "GetManagedObjects"});

    ASSERT_EQ(objects.exitCode, 0) << objects.output;
    EXPECT_NE(objects.output.find("a{oa{sa{sv}}} 1 \"/io/rpibootd1/device/_31_2d1_2e3\""),
              std::string::npos)
        << objects.output;
    const std::string device = "\"io.rpibootd1.Device\" " +
                               std::to_string(std::size(kBoardProperties)) +
                               " \"Port\" s \"1-1.3\"";
    EXPECT_NE(objects.output.find(device), std::string::npos) << objects.output;
    EXPECT_NE(objects.output.find("\"Stage\" s \"done\""), std::string::npos) << objects.output;
}

TEST_F(DbusServiceTest, ReloadByRootReloadsAndAnnouncesTheNewProfiles) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "Reload is for root (or group rpiboot) only";
    }
    start();
    client->recordSignals();

    const CommandResult reload = busctl({"call", kBusName, kManagerPath, kManager, "Reload"});

    EXPECT_EQ(reload.exitCode, 0) << reload.output;
    EXPECT_EQ(control.reloadCalls, 1);
    EXPECT_TRUE(client->waitForSignal([](const SeenSignal& s) {
        return s.member == "PropertiesChanged" && s.changed.count("Profiles");
    }));
    EXPECT_EQ(client->getStrings(kManagerPath, kManager, "Profiles"), control.profilesAfterReload);
}

TEST_F(DbusServiceTest, FailedReloadReturnsReloadFailedWithTheReason) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "Reload is for root (or group rpiboot) only";
    }
    control.nextReload = {false,
                          "/etc/rpibootd/profiles/broken.conf: key 'firmware': no such "
                          "directory /nonexistent"};
    start();

    const rpiboot::test::CallResult r = client->call(kManagerPath, kManager, "Reload");

    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.errorName, "io.rpibootd1.Error.ReloadFailed");
    EXPECT_EQ(r.errorMessage, control.nextReload.message);
    EXPECT_EQ(client->getStrings(kManagerPath, kManager, "Profiles"),
              (std::vector<std::string>{"msd", "mass-storage-gadget"}));
}

TEST_F(DbusServiceTest, ReloadFromAnUnprivilegedUserIsRefusedByTheService) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root to run a client as nobody";
    }
    start();

    // busctl words every AccessDenied as "Access denied"; dbus-send shows who refused.
    const CommandResult refused = reloadAs({"--reuid=nobody", "--regid=nogroup", "--clear-groups"});
    const CommandResult refusedByBusctl =
        busctlAsNobody({"call", kBusName, kManagerPath, kManager, "Reload"});
    const CommandResult reading =
        busctlAsNobody({"get-property", kBusName, kManagerPath, kManager, "Version"});

    EXPECT_NE(refused.exitCode, 0) << refused.output;
    EXPECT_NE(refused.output.find("org.freedesktop.DBus.Error.AccessDenied: Reload refused: user "
                                  "65534 is neither root nor in group 'rpiboot'"),
              std::string::npos)
        << refused.output;
    EXPECT_NE(refusedByBusctl.exitCode, 0);
    EXPECT_EQ(refusedByBusctl.output, "Call failed: Access denied\n");
    EXPECT_EQ(control.reloadCalls, 0);
    EXPECT_EQ(reading.exitCode, 0) << reading.output;
    EXPECT_EQ(reading.output, "s \"0.1.0-test\"\n");
}

TEST_F(DbusServiceTest, ReloadFromAMemberOfThePrivilegedGroupIsAllowed) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root to run a client as another user";
    }
    // Any existing group stands in for "rpiboot", which this machine may lack.
    options.privilegedGroup = "users";
    start();

    const CommandResult member = reloadAs({"--reuid=nobody", "--regid=nogroup", "--groups=users"});
    const CommandResult outsider =
        reloadAs({"--reuid=nobody", "--regid=nogroup", "--clear-groups"});

    EXPECT_EQ(member.exitCode, 0) << member.output;
    EXPECT_NE(outsider.exitCode, 0) << outsider.output;
    EXPECT_NE(outsider.output.find("neither root nor in group 'users'"), std::string::npos)
        << outsider.output;
    EXPECT_EQ(control.reloadCalls, 1);
}

TEST_F(DbusServiceTest, SecondServiceOnTheSameBusIsRefusedTheName) {
    start();
    FakeControl other;

    EXPECT_THROW(DbusService(loop, DbusOptions{bus.address(), "x"}, other, log), rpiboot::Error);
}

TEST(DbusServiceConnect, UnreachableBusIsReportedAsAnError) {
    EventLoop loop;
    FakeControl control;
    Logger log{LogTargets{}};

    EXPECT_THROW(DbusService(loop, DbusOptions{"unix:path=/nonexistent/bus", "x"}, control, log),
                 rpiboot::Error);
}

TEST_F(DbusServiceTest, ControlCallsFromAnUnprivilegedUserAreRefusedByTheService) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root to run a client as nobody";
    }
    control.known = {board("1-1.3", "BCM2711", "msd")};
    start();
    const std::string path = devicePath("1-1.3");
    const std::vector<std::vector<std::string>> calls = {
        {"call", kBusName, kManagerPath, kManager, "HoldPort", "s", "1-1.*"},
        {"call", kBusName, kManagerPath, kManager, "ReleasePort", "s", "1-1.*"},
        {"call", kBusName, path, "io.rpibootd1.Device", "Retry"},
        {"call", kBusName, path, "io.rpibootd1.Device", "Forget"},
        {"call", kBusName, path, "io.rpibootd1.Device", "Hold"},
        {"call", kBusName, path, "io.rpibootd1.Device", "Release"},
    };
    for (const auto& call : calls) {
        const CommandResult refused = busctlAsNobody(call);
        EXPECT_NE(refused.exitCode, 0) << call[4] << ": " << refused.output;
        EXPECT_EQ(refused.output, "Call failed: Access denied\n") << call[4];
    }
    EXPECT_TRUE(control.held.empty());
    const CommandResult reading =
        busctlAsNobody({"get-property", kBusName, kManagerPath, kManager, "HeldPorts"});
    EXPECT_EQ(reading.output, "as 0\n");
}

TEST_F(DbusServiceTest, HoldPortByRootReachesTheDaemonAndHeldPortsIsAnnounced) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "HoldPort is for root (or group rpiboot) only";
    }
    start();
    client->recordSignals();
    const CommandResult hold =
        busctl({"call", kBusName, kManagerPath, kManager, "HoldPort", "s", "1-1.*"});
    ASSERT_EQ(hold.exitCode, 0) << hold.output;
    EXPECT_EQ(control.held, std::vector<std::string>{"1-1.*"});
    service->heldPortsChanged();
    EXPECT_TRUE(client->waitForSignal([](const SeenSignal& s) {
        return s.member == "PropertiesChanged" && s.interface == "io.rpibootd1.Manager";
    }));
    EXPECT_EQ(client->getStrings(kManagerPath, kManager, "HeldPorts"),
              std::vector<std::string>{"1-1.*"});

    const CommandResult release =
        busctl({"call", kBusName, kManagerPath, kManager, "ReleasePort", "s", "2-*"});
    EXPECT_NE(release.exitCode, 0);
    EXPECT_NE(release.output.find("port 2-* is not held"), std::string::npos) << release.output;
}

TEST_F(DbusServiceTest, RetryOfABoardThatIsBootingFailsWithBusy) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "Retry is for root (or group rpiboot) only";
    }
    control.known = {board("1-1.3", "BCM2711", "msd")};
    start();
    const rpiboot::test::CallResult r =
        client->call(devicePath("1-1.3"), "io.rpibootd1.Device", "Retry");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.errorName, "io.rpibootd1.Error.Busy");
    EXPECT_EQ(r.errorMessage, "the board on port 1-1.3 is booting right now");
}

}  // namespace
}  // namespace rpibootd
