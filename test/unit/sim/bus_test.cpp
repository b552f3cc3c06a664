// VirtualBus: enumeration events, device ids, the fake transport's errors,
// many boards at once, bandwidth budgets.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tiny_host.hpp"
#include "virtualpi/builtin_scenarios.hpp"
#include "virtualpi/scenario_builder.hpp"
#include "virtualpi/virtual_bus.hpp"

namespace virtualpi {
namespace {

using namespace rpiboot::test;
using rpiboot::Chip;

// Boots whatever appears on the bus, each device on its own thread, serving
// `files`: a stand-in for a daemon.
class AutoHost {
  public:
    AutoHost(VirtualBus& bus, std::map<std::string, Bytes> files)
        : bus_(bus), files_(std::move(files)) {
        id_ = bus_.addListener([this](const DeviceEvent& e) { onEvent(e); });
    }
    ~AutoHost() {
        bus_.removeListener(id_);
        for (auto& t : threads_) {
            t.join();
        }
    }
    std::atomic<int> errors{0};

  private:
    void onEvent(const DeviceEvent& e) {
        if (e.kind != DeviceEventKind::Added || e.device.stage == Stage::Final) {
            return;
        }
        threads_.emplace_back([this, id = e.device.deviceId, stage = e.device.stage] {
            try {
                auto t = bus_.open(id);
                TinyHost host(*t);
                if (stage == Stage::Rom) {
                    host.boot(files_.at("bootcode"));
                } else {
                    host.serve(files_);
                }
            } catch (const rpiboot::Error& err) {
                if (err.code() != rpiboot::Errc::DeviceGone) {
                    ++errors;
                }
            }
        });
    }

    VirtualBus& bus_;
    std::map<std::string, Bytes> files_;
    ListenerId id_ = 0;
    std::vector<std::thread> threads_;  // only touched on the event thread, then joined
};

TEST(VirtualPiBus, ReenumerationEventsCarryEachStagesDescriptors) {
    // Declared before the bus: its destructor still delivers the last events.
    std::mutex m;
    std::vector<DeviceEvent> events;
    VirtualBus bus;
    bus.addListener([&](const DeviceEvent& e) {
        std::lock_guard lock(m);
        events.push_back(e);
    });
    Scenario s = builtinScenario(Chip::Bcm2711, Profile::MassStorageGadget);
    s.serial = "af04b2da";
    std::string port;
    {
        std::map<std::string, Bytes> files{{"bootcode", pattern(4096)}};
        for (const Step& step : s.steps) {
            files[step.name] = pattern(3000);
        }
        AutoHost host(bus, files);
        port = bus.plug({s, "1-1.3", ""});
        ASSERT_EQ(bus.board(port)->waitForOutcome(10s), Outcome::Succeeded)
            << bus.board(port)->record().reason;
        bus.flushEvents();
        EXPECT_EQ(host.errors, 0);
    }
    std::lock_guard lock(m);
    ASSERT_EQ(events.size(), 5u);
    const auto expect = [&](std::size_t i, DeviceEventKind kind, std::uint16_t pid,
                            std::uint8_t serialIndex, const std::string& serial) {
        EXPECT_EQ(events[i].kind, kind) << i;
        EXPECT_EQ(events[i].device.portPath, "1-1.3") << i;
        EXPECT_EQ(events[i].device.summary.vendorId, 0x0a5c) << i;
        EXPECT_EQ(events[i].device.summary.productId, pid) << i;
        EXPECT_EQ(events[i].device.summary.serialNumberIndex, serialIndex) << i;
        EXPECT_EQ(events[i].device.serial, serial) << i;
    };
    expect(0, DeviceEventKind::Added, 0x2711, 3, "af04b2da");
    expect(1, DeviceEventKind::Removed, 0x2711, 3, "af04b2da");
    expect(2, DeviceEventKind::Added, 0x2711, 4, "af04b2da");
    expect(3, DeviceEventKind::Removed, 0x2711, 4, "af04b2da");
    expect(4, DeviceEventKind::Added, 0x0104, 3, "10000000af04b2da");
    EXPECT_EQ(events[0].device.deviceId, events[1].device.deviceId);
    EXPECT_NE(events[0].device.deviceId, events[2].device.deviceId);
    EXPECT_NE(events[2].device.deviceId, events[4].device.deviceId);
    EXPECT_EQ(bus.devices().size(), 1u);  // the gadget stays
}

TEST(VirtualPiBus, SixtyFourBoardsBootAtOnce) {
    VirtualBus bus(BusOptions{kHighSpeedBytesPerSecond});
    const Scenario s = ScenarioBuilder(Chip::Bcm2712)
                           .file("mcb.bin")
                           .optionalFile("absent")
                           .file("bootmain")
                           .endWithEmptyName()
                           .build();
    std::vector<std::string> ports;
    {
        AutoHost host(bus, {{"bootcode", pattern(20000)},
                            {"mcb.bin", pattern(7092)},
                            {"bootmain", pattern(50000)}});
        for (int i = 0; i < 64; ++i) {
            ports.push_back(bus.plug({s, "", ""}));
        }
        for (const auto& port : ports) {
            EXPECT_EQ(bus.board(port)->waitForOutcome(30s), Outcome::Succeeded)
                << port << ": " << bus.board(port)->record().reason;
        }
        bus.flushEvents();
        EXPECT_EQ(host.errors, 0);
    }
    std::set<std::string> serials;
    for (const auto& port : ports) {
        serials.insert(bus.board(port)->serial());
    }
    EXPECT_EQ(serials.size(), 64u);
    EXPECT_TRUE(bus.devices().empty());
}

TEST(VirtualPiBus, RateCappedBoardStillCompletes) {
    VirtualBus bus(BusOptions{kHighSpeedBytesPerSecond});
    const Scenario s = ScenarioBuilder(Chip::Bcm2711)
                           .file("boot.img")
                           .endWithEmptyName()
                           .bulkBytesPerSecond(40'000'000)
                           .startInSecondStage()
                           .build();
    AutoHost host(bus, {{"boot.img", pattern(1 << 20)}});
    const std::string port = bus.plug({s, "3-2", ""});
    EXPECT_EQ(bus.board(port)->waitForOutcome(30s), Outcome::Succeeded);
    EXPECT_EQ(bus.board(port)->record().file("boot.img")->receivedBytes, 1u << 20);
}

TEST(VirtualPiBus, OpenSaysGoneForOldEnumerationsAndNotFoundForUnknownIds) {
    VirtualBus bus;
    const std::string port = bus.plug({ScenarioBuilder(Chip::Bcm2711).build(), "", ""});
    const auto rom = bus.waitForDevice([](const SimDeviceInfo&) { return true; }, 10s);
    ASSERT_TRUE(rom);
    auto t = bus.open(rom->deviceId);
    bus.unplug(port);
    try {
        TinyHost(*t).read(4);
        FAIL();
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::DeviceGone);
    }
    try {
        bus.open(rom->deviceId);
        FAIL();
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::DeviceGone);
    }
    try {
        bus.open(999);
        FAIL();
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::NotFound);
    }
    EXPECT_THROW(bus.unplug(port), rpiboot::Error);
    EXPECT_THROW(bus.plug({ScenarioBuilder(Chip::Bcm2711).build(), "1-x", ""}), rpiboot::Error);
}

TEST(VirtualPiBus, UnplugDuringATransferEndsItWithDeviceGone) {
    VirtualBus bus;
    const std::string port =
        bus.plug({ScenarioBuilder(Chip::Bcm2711).file("a").startInSecondStage().build(), "", ""});
    const auto dev = bus.waitForDevice([](const SimDeviceInfo&) { return true; }, 10s);
    ASSERT_TRUE(dev);
    auto t = bus.open(dev->deviceId);
    std::thread unplugger([&] {
        bus.board(port)->waitForStage(Stage::SecondStage, 10s);
        bus.unplug(port);
    });
    try {
        // The host keeps reading: eventually the board is gone.
        for (;;) {
            TinyHost(*t).read(260);
        }
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::DeviceGone);
    }
    unplugger.join();
}

TEST(VirtualPiBus, ListenerGetsExistingDevicesOnceThenOnlyNewEvents) {
    std::atomic<int> added{0};
    VirtualBus bus;
    bus.plug({ScenarioBuilder(Chip::Bcm2711).build(), "1-1", ""});
    ASSERT_TRUE(bus.waitForDevice([](const SimDeviceInfo&) { return true; }, 10s));
    bus.flushEvents();
    std::vector<SimDeviceInfo> existing;
    const ListenerId id = bus.addListener(
        [&](const DeviceEvent& e) {
            if (e.kind == DeviceEventKind::Added) {
                ++added;
            }
        },
        &existing);
    EXPECT_EQ(existing.size(), 1u);
    bus.plug({ScenarioBuilder(Chip::Bcm2711).build(), "1-2", ""});
    ASSERT_TRUE(bus.waitForDevice([](const SimDeviceInfo& d) { return d.portPath == "1-2"; }, 10s));
    bus.flushEvents();
    EXPECT_EQ(added, 1);
    bus.removeListener(id);
}

TEST(VirtualPiBus, StandardRequestsAreAnsweredFromTheDescriptors) {
    VirtualBus bus;
    bus.plug({ScenarioBuilder(Chip::Bcm2712).serial("becc6523").romConfigQuirk().build(), "", ""});
    const auto info = bus.waitForDevice([](const SimDeviceInfo&) { return true; }, 10s);
    ASSERT_TRUE(info);
    const auto usb = bus.usbDevice(info->deviceId);
    std::vector<std::uint8_t> buffer(255);
    SetupPacket get{0x80, 6, 0x0100, 0, 18};
    auto r = usb->control(get, buffer, deadlineAfter(1s));
    ASSERT_EQ(r.status, UsbStatus::Ok);
    EXPECT_EQ(r.length, 18u);
    EXPECT_EQ(buffer[16], 3);
    get = {0x80, 6, 0x0200, 0, 9};
    r = usb->control(get, buffer, deadlineAfter(1s));
    EXPECT_EQ(r.length, 9u);
    EXPECT_EQ(buffer[2], 55);  // the quirk's advertised length
    get.length = 255;
    EXPECT_EQ(usb->control(get, buffer, deadlineAfter(1s)).length, 32u);
    get = {0x80, 6, 0x0303, 0x0409, 255};
    r = usb->control(get, buffer, deadlineAfter(1s));
    EXPECT_EQ(r.length, 18u);  // "becc6523" in UTF-16
    EXPECT_EQ(buffer[2], 'b');
    get = {0x80, 6, 0x0307, 0x0409, 255};
    EXPECT_EQ(usb->control(get, buffer, deadlineAfter(1s)).status, UsbStatus::Stall);
    const SetupPacket setConfig{0x00, 9, 1, 0, 0};
    EXPECT_EQ(usb->control(setConfig, {}, deadlineAfter(1s)).status, UsbStatus::Ok);
    const SetupPacket otherVendor{0x40, 7, 0, 0, 0};
    EXPECT_EQ(usb->control(otherVendor, {}, deadlineAfter(1s)).status, UsbStatus::Stall);
    const auto bytes = get.bytes();
    EXPECT_EQ(SetupPacket::fromBytes(bytes).value, 0x0307);
}

TEST(VirtualPiBus, HostThatNeverCollectsMakesTheBoardGiveUp) {
    VirtualBus bus;
    Timing t;
    t.hostTimeout = 50ms;
    const std::string port = bus.plug(
        {ScenarioBuilder(Chip::Bcm2711).file("a").startInSecondStage().timing(t).build(), "", ""});
    const auto board = bus.board(port);
    EXPECT_EQ(board->waitForOutcome(10s), Outcome::Failed);
    EXPECT_NE(board->record().reason.find("did not read"), std::string::npos);
    EXPECT_EQ(board->stage(), Stage::Off);
}

TEST(VirtualPiBus, ParsesPortPaths) {
    const auto p = parsePortPath("1-1.3.2");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->bus, 1u);
    EXPECT_EQ(p->ports, (std::vector<unsigned>{1, 3, 2}));
    EXPECT_FALSE(parsePortPath("1-"));
    EXPECT_FALSE(parsePortPath("-1"));
    EXPECT_FALSE(parsePortPath("1-1..2"));
    EXPECT_FALSE(parsePortPath("0-1"));
}

}  // namespace
}  // namespace virtualpi
