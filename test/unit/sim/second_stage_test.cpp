// The virtual second stage's request script (docs/protocol.md §5) against a tiny
// host over the fake transport.
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include "tiny_host.hpp"
#include "virtualpi/builtin_scenarios.hpp"
#include "virtualpi/scenario_builder.hpp"
#include "virtualpi/virtual_bus.hpp"

namespace virtualpi {
namespace {

using namespace rpiboot::test;
using rpiboot::Chip;

std::string sha256Of(const Bytes& b) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(b.data(), b.size(), d);
    std::string out;
    char hex[3];
    for (unsigned char c : d) {
        std::snprintf(hex, sizeof hex, "%02x", c);
        out += hex;
    }
    return out;
}

// A bus with one board that starts in the second stage, and a host for it.
struct SecondStage {
    explicit SecondStage(Scenario s) {
        s.startStage = StartStage::SecondStage;
        port = bus.plug({std::move(s), "2-1.4", ""});
        auto info =
            bus.waitForDevice([&](const SimDeviceInfo& d) { return d.portPath == port; }, 10s);
        if (!info) {
            throw std::runtime_error("second stage did not appear");
        }
        device = *info;
        transport = bus.open(device.deviceId);
        host = std::make_unique<TinyHost>(*transport);
    }
    BoardRecord finished() {
        bus.board(port)->waitForOutcome(10s);
        return bus.board(port)->record();
    }

    VirtualBus bus;
    std::string port;
    SimDeviceInfo device;
    std::unique_ptr<rpiboot::Transport> transport;
    std::unique_ptr<TinyHost> host;
};

TEST(VirtualPiSecondStage, RunsTheMsdScriptAndVerifiesHashes) {
    const Bytes start = readFixture("msd/start.elf");
    Scenario s = builtinScenario(Chip::Bcm2711, Profile::Msd);
    s.expectSha256("start4.elf", sha256Of(start));
    SecondStage b(s);
    const SessionResult session = b.host->serve({{"start4.elf", start}});
    EXPECT_EQ(session.end, "empty-name");
    std::vector<std::string> asked;
    for (const auto& r : session.requests) {
        EXPECT_EQ(r.length, 260u);
        asked.push_back(std::to_string(r.command) + ":" + r.name);
    }
    EXPECT_EQ(asked, (std::vector<std::string>{"0:config.txt", "0:pieeprom.sig", "0:start4.elf",
                                               "1:start4.elf", "0:fixup4.dat", "0:"}));
    const BoardRecord r = b.finished();
    EXPECT_EQ(r.outcome, Outcome::Succeeded) << r.reason;
    const FileRecord* f = r.file("start4.elf");
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->receivedBytes, 536536u);
    EXPECT_EQ(f->reportedSize, 536536u);
    EXPECT_TRUE(f->complete);
    EXPECT_EQ(f->hashMatches, true);
    EXPECT_TRUE(r.file("config.txt")->missing);
}

TEST(VirtualPiSecondStage, MissingRequiredFileFailsTheBoardButFinishesTheSession) {
    SecondStage b(ScenarioBuilder(Chip::Bcm2711).file("bootmain").endWithEmptyName().build());
    EXPECT_EQ(b.host->serve({}).end, "empty-name");
    const BoardRecord r = b.finished();
    EXPECT_EQ(r.outcome, Outcome::Failed);
    EXPECT_NE(r.reason.find("required file bootmain is missing"), std::string::npos) << r.reason;
}

TEST(VirtualPiSecondStage, WrongBytesFailTheHashCheck) {
    SecondStage b(ScenarioBuilder(Chip::Bcm2712)
                      .file("bootmain", std::string(64, '0'))
                      .endWithEmptyName()
                      .build());
    b.host->serve({{"bootmain", pattern(1000)}});
    const BoardRecord r = b.finished();
    EXPECT_EQ(r.outcome, Outcome::Failed);
    EXPECT_EQ(r.file("bootmain")->hashMatches, false);
    EXPECT_EQ(r.file("bootmain")->sha256, sha256Of(pattern(1000)));
}

TEST(VirtualPiSecondStage, RecoveryMetadataIsAckedWithC40FactoryUuid) {
    const Bytes eeprom = pattern(2 * 1024 * 1024, 9);
    BuiltinOptions o;
    o.serial = "becc6523";
    SecondStage b(builtinScenario(Chip::Bcm2712, Profile::Recovery, o));
    const SessionResult session = b.host->serve({{"config.txt", bytesOf("[all]\n")},
                                                 {"pieeprom.sig", bytesOf(sha256Of(eeprom) + "\n")},
                                                 {"pieeprom.bin", eeprom}});
    EXPECT_EQ(session.end, "empty-name");
    EXPECT_EQ(session.metadata.at("FACTORY_UUID"), "19a519a6_19ab520e_1ac0212b");
    EXPECT_EQ(session.metadata.at("EEPROM_HASH"), sha256Of(eeprom));
    EXPECT_EQ(session.metadata.at("USER_SERIAL_NUM"), "becc6523");
    EXPECT_EQ(session.metadata.size(), 14u);
    for (const auto& r : session.requests) {
        if (!r.name.empty() && r.name[0] == '*') {
            EXPECT_EQ(r.command, 1u) << r.name;  // sent as ReadFile
        }
    }
    const BoardRecord r = b.finished();
    EXPECT_EQ(r.outcome, Outcome::Succeeded) << r.reason;
    ASSERT_EQ(r.metadata.size(), 14u);
    for (const auto& m : r.metadata) {
        EXPECT_TRUE(m.acked) << m.key;
    }
    EXPECT_EQ(r.metadata.back().value, "001000911006186073");
}

TEST(VirtualPiSecondStage, MetadataWithoutValueIsStillAcked) {
    SecondStage b(ScenarioBuilder(Chip::Bcm2711)
                      .metadataWithoutValue("BOARD_ATTR")
                      .endWithEmptyName()
                      .build());
    const SessionResult session = b.host->serve({});
    EXPECT_EQ(session.requests.at(0).name, "*BOARD_ATTR");
    EXPECT_TRUE(b.finished().metadata.at(0).acked);
}

TEST(VirtualPiSecondStage, DisconnectMidFileMakesHostCallsThrowDeviceGone) {
    SecondStage b(ScenarioBuilder(Chip::Bcm2711)
                      .file("boot.img")
                      .withFault({FaultKind::Disconnect, FaultPoint::Data, 20000})
                      .endWithEmptyName()
                      .build());
    try {
        b.host->serve({{"boot.img", pattern(100000)}});
        FAIL() << "the file went through a disconnect";
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::DeviceGone) << e.what();
    }
    for (int i = 0; i < 2; ++i) {
        try {
            b.host->read(260);
            FAIL();
        } catch (const rpiboot::Error& e) {
            EXPECT_EQ(e.code(), rpiboot::Errc::DeviceGone);
        }
    }
    EXPECT_THROW(b.host->sendLength(0), rpiboot::Error);
    const BoardRecord r = b.finished();
    EXPECT_EQ(r.outcome, Outcome::Failed);
    EXPECT_EQ(r.file("boot.img")->receivedBytes, 20000u);
    EXPECT_FALSE(r.file("boot.img")->complete);
    EXPECT_EQ(r.stage, Stage::Off);
    EXPECT_THROW(b.bus.open(b.device.deviceId), rpiboot::Error);
}

TEST(VirtualPiSecondStage, StallFaultsSurfaceAsStall) {
    SecondStage control(ScenarioBuilder(Chip::Bcm2711)
                            .file("a")
                            .withFault({FaultKind::StallControl, FaultPoint::Reply, 0})
                            .build());
    try {
        control.host->serve({{"a", pattern(10)}});
        FAIL();
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::Stall) << e.what();
    }
    SecondStage bulk(ScenarioBuilder(Chip::Bcm2711)
                         .file("a")
                         .withFault({FaultKind::StallBulk, FaultPoint::Data, 100})
                         .build());
    try {
        bulk.host->serve({{"a", pattern(1000)}});
        FAIL();
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::Stall) << e.what();
    }
}

TEST(VirtualPiSecondStage, SilentDeviceMakesHostCallsTimeOut) {
    SecondStage b(ScenarioBuilder(Chip::Bcm2711)
                      .file("a")
                      .withFault({FaultKind::Silence, FaultPoint::Request, 0})
                      .build());
    try {
        b.host->read(260, 30ms);
        FAIL();
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::Timeout);
    }
    EXPECT_EQ(b.bus.board(b.port)->waitForOutcome(10s), Outcome::Failed);
}

TEST(VirtualPiSecondStage, GarbageCommandsAndNamesWithoutNulReachTheHost) {
    SecondStage b(ScenarioBuilder(Chip::Bcm2711)
                      .raw(kCommandGetFileSize, std::string(256, 'x'))
                      .raw(7, "junk", 0, RawReply::None)
                      .endWithDisconnect()
                      .build());
    const SessionResult session = b.host->serve({});
    ASSERT_EQ(session.requests.size(), 2u);
    EXPECT_EQ(session.requests[0].name, std::string(256, 'x'));  // no NUL in the field
    EXPECT_EQ(session.requests[1].command, 7u);
    EXPECT_EQ(session.end, "unknown-command");
    const BoardRecord r = b.finished();
    EXPECT_EQ(r.requests[0].reply, 0u);
    EXPECT_TRUE(r.requests[1].collected);
}

TEST(VirtualPiSecondStage, DoneIsNotAckedAndLaterRequestsGoUncollected) {
    Timing t;
    t.hostTimeout = 200ms;
    SecondStage b(ScenarioBuilder(Chip::Bcm2711).endWithDone().file("late").timing(t).build());
    EXPECT_EQ(b.host->serve({}).end, "done");
    const BoardRecord r = b.finished();
    ASSERT_EQ(r.requests.size(), 2u);
    EXPECT_EQ(r.requests[0].command, kCommandDone);
    EXPECT_EQ(r.requests[0].name, "done");
    EXPECT_FALSE(r.requests[0].reply.has_value());
    EXPECT_FALSE(r.requests[1].collected);
    EXPECT_EQ(r.outcome, Outcome::Failed);
    EXPECT_NE(r.reason.find("did not read"), std::string::npos) << r.reason;
}

TEST(VirtualPiSecondStage, RepeatedRequestsAreAskedAgain) {
    SecondStage b(ScenarioBuilder(Chip::Bcm2711).file("a").repeated(3).endWithEmptyName().build());
    EXPECT_EQ(b.host->serve({{"a", pattern(10)}}).requests.size(), 7u);
    EXPECT_EQ(b.finished().files.size(), 3u);
}

TEST(VirtualPiSecondStage, TwoInterfaceSecondStageTakesDataOnEndpoint3) {
    SecondStage b(ScenarioBuilder(Chip::Bcm2837).file("start.elf").endWithEmptyName().build());
    EXPECT_EQ(b.device.summary.interfaceCount, 2);
    EXPECT_EQ(b.device.serial, "Broadcom");
    // The mass-storage interface's EP 1 does not carry the protocol: NAK.
    const Bytes data = pattern(10);
    const auto usb = b.bus.usbDevice(b.device.deviceId);
    EXPECT_EQ(usb->bulkOut(0x01, data, deadlineAfter(20ms)).status, UsbStatus::Timeout);
    b.host->serve({{"start.elf", pattern(40000)}});
    EXPECT_EQ(b.finished().outcome, Outcome::Succeeded);
}

TEST(VirtualPiSecondStage, HugeSizeBeyondDeviceMemoryIsNotRead) {
    SecondStage b(ScenarioBuilder(Chip::Bcm2711)
                      .file("boot.img")
                      .withMaxSize(1000)
                      .endWithEmptyName()
                      .build());
    const SessionResult session = b.host->serve({{"boot.img", pattern(5000)}});
    EXPECT_EQ(session.requests.size(), 2u);  // GetFileSize, then the end
    const BoardRecord r = b.finished();
    EXPECT_EQ(r.outcome, Outcome::Failed);
    EXPECT_EQ(r.file("boot.img")->reportedSize, 5000u);
}

}  // namespace
}  // namespace virtualpi
