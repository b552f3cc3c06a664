// The rpiboot session loop against virtual boards: the same code path as the
// real tool, with the virtual bus standing in for libusb hotplug.
#include "runner.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <sstream>

#include "rpiboot/core/error.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "virtualpi/builtin_scenarios.hpp"
#include "virtualpi/scenario.hpp"
#include "virtualpi/scenario_builder.hpp"
#include "virtualpi/virtual_bus.hpp"

namespace rpiboot::cli {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;
const fs::path kFixtures{RPIBOOT_FIXTURES_DIR};

class VirtualWaiter final : public DeviceWaiter {
  public:
    explicit VirtualWaiter(virtualpi::VirtualBus& bus) : bus_(bus) {
        std::vector<virtualpi::SimDeviceInfo> existing;
        id_ = bus_.addListener(
            [this](const virtualpi::DeviceEvent& e) {
                if (e.kind == virtualpi::DeviceEventKind::Added) {
                    push(e.device);
                }
            },
            &existing);
        for (auto& d : existing) {
            push(d);
        }
    }
    ~VirtualWaiter() override { bus_.removeListener(id_); }

    std::optional<CandidateDevice> next() override {
        std::unique_lock lock(mutex_);
        if (!cv_.wait_for(lock, std::chrono::seconds(3), [&] { return !queue_.empty(); })) {
            return std::nullopt;  // nothing more arrives: the test's "Ctrl-C"
        }
        virtualpi::SimDeviceInfo d = queue_.front();
        queue_.pop_front();
        CandidateDevice c;
        c.info.portPath = d.portPath;
        c.info.descriptor = d.summary;
        const auto lastDot = d.portPath.find_last_of(".-");
        c.info.portNumber = static_cast<std::uint8_t>(std::stoi(d.portPath.substr(lastDot + 1)));
        auto* bus = &bus_;
        c.open = [bus, d]() -> std::unique_ptr<OpenedDevice> {
            struct Opened final : OpenedDevice {
                std::unique_ptr<Transport> t;
                std::string serial;
                Transport& transport() override { return *t; }
                std::string serialString() override { return serial; }
                void claim(const BulkInterface&) override {}
            };
            auto o = std::make_unique<Opened>();
            o->t = bus->open(d.deviceId);
            o->serial = d.serial;
            return o;
        };
        return c;
    }

  private:
    void push(const virtualpi::SimDeviceInfo& d) {
        if (!isBootDevice(d.summary.vendorId, d.summary.productId)) {
            return;
        }
        std::lock_guard lock(mutex_);
        queue_.push_back(d);
        cv_.notify_all();
    }

    virtualpi::VirtualBus& bus_;
    virtualpi::ListenerId id_ = 0;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<virtualpi::SimDeviceInfo> queue_;
};

// A 2711 boot set: bootcode4.bin and start4.elf in the chip folder.
void make2711Set(const fs::path& dir) {
    fs::create_directories(dir / "2711");
    fs::copy_file(kFixtures / "2711/bootcode4.bin", dir / "2711/bootcode4.bin");
    fs::copy_file(kFixtures / "msd/start.elf", dir / "2711/start4.elf");
}

struct CliRun {
    int status = -1;
    std::string out;
    std::string err;
};

CliRun runCli(const std::vector<std::string>& args, virtualpi::VirtualBus& bus,
              const std::string& defaultDir = "/nonexistent") {
    ParseResult parsed = parseOptions(args);
    EXPECT_EQ(parsed.error, "");
    VirtualWaiter waiter(bus);
    std::ostringstream out, err;
    Runner runner(parsed.options, defaultDir, waiter, out, err);
    CliRun run;
    if (std::string problem = runner.checkDirectory(); !problem.empty()) {
        run.err = problem;
        return run;
    }
    run.status = runner.run();
    run.out = out.str();
    run.err = err.str();
    return run;
}

TEST(RpibootCli, BootsOneBoardAndExitsZero) {
    ScratchDir dir;
    make2711Set(dir.path());
    virtualpi::VirtualBus bus;
    const auto port =
        bus.plug({virtualpi::builtinScenario(Chip::Bcm2711, virtualpi::Profile::Msd), "1-1", {}});
    CliRun run = runCli({"-d", dir.path().string()}, bus);
    EXPECT_EQ(run.status, 0) << run.out << run.err;
    EXPECT_NE(run.out.find("Sending bootcode4.bin"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("Successful read 4 bytes"), std::string::npos);
    EXPECT_NE(run.out.find("Second stage boot server done"), std::string::npos);
    EXPECT_NE(run.out.find("File read: start4.elf"), std::string::npos);
    EXPECT_EQ(bus.board(port)->waitForOutcome(std::chrono::seconds(5)),
              virtualpi::Outcome::Succeeded);
}

TEST(RpibootCli, PortPathFilterLeavesOtherBoardsAlone) {
    ScratchDir dir;
    make2711Set(dir.path());
    virtualpi::VirtualBus bus;
    const auto scenario = virtualpi::builtinScenario(Chip::Bcm2711, virtualpi::Profile::Msd);
    const auto other = bus.plug({scenario, "1-1", {}});
    const auto wanted = bus.plug({scenario, "1-2.3", {}});
    CliRun run = runCli({"-d", dir.path().string(), "-p", "1-2.3"}, bus);
    EXPECT_EQ(run.status, 0) << run.out << run.err;
    EXPECT_EQ(bus.board(wanted)->waitForOutcome(std::chrono::seconds(5)),
              virtualpi::Outcome::Succeeded);
    EXPECT_TRUE(bus.board(other)->record().romAttempts.empty());
}

TEST(RpibootCli, PortNumberFilterMatchesThePortOnTheHub) {
    ScratchDir dir;
    make2711Set(dir.path());
    virtualpi::VirtualBus bus;
    const auto scenario = virtualpi::builtinScenario(Chip::Bcm2711, virtualpi::Profile::Msd);
    const auto other = bus.plug({scenario, "1-1.2", {}});
    const auto wanted = bus.plug({scenario, "1-1.5", {}});
    CliRun run = runCli({"-d", dir.path().string(), "-5"}, bus);
    EXPECT_EQ(run.status, 0) << run.out << run.err;
    EXPECT_EQ(bus.board(wanted)->waitForOutcome(std::chrono::seconds(5)),
              virtualpi::Outcome::Succeeded);
    EXPECT_TRUE(bus.board(other)->record().romAttempts.empty());
}

TEST(RpibootCli, SerialFilterFollowsTheBoardIntoItsSecondStage) {
    ScratchDir dir;
    make2711Set(dir.path());
    virtualpi::VirtualBus bus;
    const auto scenario = virtualpi::builtinScenario(Chip::Bcm2711, virtualpi::Profile::Msd);
    const auto other = bus.plug({scenario, "1-1", "11111111"});
    const auto wanted = bus.plug({scenario, "1-2", "af04b2da"});
    CliRun run = runCli({"-d", dir.path().string(), "-i", "af04b2da"}, bus);
    EXPECT_EQ(run.status, 0) << run.out << run.err;
    EXPECT_EQ(bus.board(wanted)->waitForOutcome(std::chrono::seconds(5)),
              virtualpi::Outcome::Succeeded);
    EXPECT_TRUE(bus.board(other)->record().romAttempts.empty());
}

TEST(RpibootCli, PortOverlayServesPerPortFiles) {
    ScratchDir dir;
    make2711Set(dir.path());
    std::ofstream(dir.path() / "config.txt") << "base\n";
    fs::create_directories(dir.path() / "1-4");
    std::ofstream(dir.path() / "1-4" / "config.txt") << "port 1-4\n";
    virtualpi::VirtualBus bus;
    auto scenario =
        virtualpi::ScenarioBuilder(Chip::Bcm2711).file("config.txt").endWithEmptyName().build();
    const auto port = bus.plug({scenario, "1-4", {}});
    CliRun run = runCli({"-d", dir.path().string(), "-o"}, bus);
    EXPECT_EQ(run.status, 0) << run.out << run.err;
    const auto record = bus.board(port)->record();
    ASSERT_NE(record.file("config.txt"), nullptr);
    EXPECT_EQ(record.file("config.txt")->receivedBytes, std::string("port 1-4\n").size());
}

TEST(RpibootCli, MetadataGoesToSerialNamedJsonFile) {
    ScratchDir dir;
    make2711Set(dir.path());
    ScratchDir meta;
    virtualpi::VirtualBus bus;
    auto scenario = virtualpi::ScenarioBuilder(Chip::Bcm2712)
                        .metadata("MAC_ADDR", "2c:cf:67:70:76:f3")
                        .metadataC40("FACTORY_UUID", "001000911006186073")
                        .endWithEmptyName()
                        .build();
    fs::create_directories(dir.path() / "2712");
    std::ofstream(dir.path() / "2712" / "bootcode5.bin") << std::string(4096, 'c');
    bus.plug({scenario, "1-1", "becc6523"});
    CliRun run = runCli({"-d", dir.path().string(), "-j", meta.path().string()}, bus);
    EXPECT_EQ(run.status, 0) << run.out << run.err;
    std::ifstream in(meta.path() / "becc6523.json");
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(),
              "{\n\t\"FACTORY_UUID\": \"001000911006186073\",\n\t\"MAC_ADDR\": "
              "\"2c:cf:67:70:76:f3\"\n}\n");
}

TEST(RpibootCli, FailureExitsOneWithAReason) {
    ScratchDir dir;
    make2711Set(dir.path());
    virtualpi::VirtualBus bus;
    bus.plug({virtualpi::ScenarioBuilder(Chip::Bcm2711).romReturnCodes({3}).build(), "1-1", {}});
    CliRun run = runCli({"-d", dir.path().string()}, bus);
    EXPECT_EQ(run.status, 1);
    EXPECT_NE(run.err.find("Failed"), std::string::npos) << run.err;
}

TEST(RpibootCli, DirectoryWithoutBootcodeIsAUsageError) {
    ScratchDir dir;
    virtualpi::VirtualBus bus;
    CliRun run = runCli({"-d", dir.path().string()}, bus);
    EXPECT_NE(run.err.find("No 'bootcode' files found"), std::string::npos);
    // Unlike upstream, a set that only has 2711/bootcode4.bin is valid.
    make2711Set(dir.path());
    ParseResult parsed = parseOptions({"-d", dir.path().string()});
    VirtualWaiter waiter(bus);
    std::ostringstream out, err;
    EXPECT_EQ(Runner(parsed.options, "", waiter, out, err).checkDirectory(), "");
}

TEST(RpibootCli, LoopModeServesBoardsOneAfterAnother) {
    ScratchDir dir;
    make2711Set(dir.path());
    virtualpi::VirtualBus bus;
    const auto scenario = virtualpi::builtinScenario(Chip::Bcm2711, virtualpi::Profile::Msd);
    const auto a = bus.plug({scenario, "1-1", {}});
    const auto b = bus.plug({scenario, "1-2", {}});
    CliRun run =
        runCli({"-d", dir.path().string(), "-l"}, bus);  // ends when no board arrives for 3 s
    EXPECT_EQ(run.status, 0) << run.err;
    EXPECT_EQ(bus.board(a)->waitForOutcome(std::chrono::seconds(5)), virtualpi::Outcome::Succeeded);
    EXPECT_EQ(bus.board(b)->waitForOutcome(std::chrono::seconds(5)), virtualpi::Outcome::Succeeded);
}

TEST(RpibootCli, DefaultDirectoryIsUsedWithoutDashD) {
    ScratchDir base;
    make2711Set(base.path() / "msd");
    virtualpi::VirtualBus bus;
    const auto port =
        bus.plug({virtualpi::builtinScenario(Chip::Bcm2711, virtualpi::Profile::Msd), "1-1", {}});
    CliRun run = runCli({}, bus, base.path().string());
    EXPECT_EQ(run.status, 0) << run.out << run.err;
    EXPECT_NE(run.out.find("Directory not specified - trying default"), std::string::npos);
    EXPECT_EQ(bus.board(port)->waitForOutcome(std::chrono::seconds(5)),
              virtualpi::Outcome::Succeeded);
}

TEST(RpibootCli, EmbeddedFirmwareWhenNothingIsInstalled) {
    ScratchDir base;  // an empty firmware base: nothing installed
    virtualpi::VirtualBus bus;
    const auto pi4 =
        bus.plug({virtualpi::builtinScenario(Chip::Bcm2711, virtualpi::Profile::Msd), "1-1", {}});
    const auto pi3 =
        bus.plug({virtualpi::builtinScenario(Chip::Bcm2837, virtualpi::Profile::Msd), "1-2", {}});
    CliRun run = runCli({"-l"}, bus, base.path().string());
    EXPECT_EQ(run.status, 0) << run.out << run.err;
    EXPECT_NE(run.out.find("no firmware installed in " + base.path().string() +
                           " - using the embedded firmware (bootcode.bin, bootcode4.bin, "
                           "start.elf, start4.elf)"),
              std::string::npos)
        << run.out;
    EXPECT_NE(run.out.find("Loading: embedded:bootcode4.bin"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("Loading: embedded:start4.elf"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("Loading: embedded:bootcode.bin"), std::string::npos) << run.out;
    const auto sums = virtualpi::readSha256Sums(kFixtures / "SHA256SUMS");
    for (const auto& port : {pi4, pi3}) {
        const auto board = bus.board(port);
        EXPECT_EQ(board->waitForOutcome(std::chrono::seconds(5)), virtualpi::Outcome::Succeeded);
        const auto record = board->record();
        ASSERT_FALSE(record.romAttempts.empty());
        EXPECT_EQ(record.romAttempts[0].bootcodeSha256,
                  sums.at(port == pi4 ? "bootcode4.bin" : "bootcode.bin"));
    }
}

TEST(RpibootCli, EmbeddedFirmwareHasNoPi5LoaderAndSaysSo) {
    ScratchDir base;
    virtualpi::VirtualBus bus;
    bus.plug({virtualpi::builtinScenario(Chip::Bcm2712, virtualpi::Profile::MassStorageGadget),
              "1-1",
              {}});
    CliRun run = runCli({}, bus, base.path().string());
    EXPECT_EQ(run.status, 1) << run.out << run.err;
    EXPECT_NE((run.out + run.err)
                  .find("bootcode5.bin for BCM2712 not found in the embedded "
                        "firmware (bootcode.bin, bootcode4.bin, start.elf, "
                        "start4.elf)"),
              std::string::npos)
        << run.out << run.err;
}

// An installed base as rpibootd-fetch-firmware lays it out, without the -d.
struct InstalledBase {
    ScratchDir dir;
    fs::path base = dir.path();
    explicit InstalledBase(bool withGadget = true, bool withMsd = true) {
        fs::copy_file(kFixtures / "bootfiles.bin", base / "bootfiles.bin");
        if (withGadget) {
            fs::create_directories(base / "mass-storage-gadget64");
            fs::copy_file(kFixtures / "mass-storage-gadget64/config.txt",
                          base / "mass-storage-gadget64/config.txt");
            std::ofstream(base / "mass-storage-gadget64/boot.img") << "gadget boot image";
        }
        if (withMsd) {
            fs::create_directories(base / "msd");
            for (const char* name : {"bootcode.bin", "bootcode4.bin", "start.elf", "start4.elf"}) {
                fs::copy_file(kFixtures / "msd" / name, base / "msd" / name);
            }
        }
    }
};

std::size_t tarMemberSize(const std::string& member) {
    std::ifstream in(kFixtures / "bootfiles.bin", std::ios::binary);
    const std::string archive((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    for (std::size_t at = 0; at + 512 <= archive.size(); at += 512) {
        const std::string name(archive.c_str() + at);
        const std::size_t size = std::stoul(archive.substr(at + 124, 12), nullptr, 8);
        if (name == member) {
            return size;
        }
        at += (size + 511) / 512 * 512;
    }
    return 0;
}

TEST(RpibootCli, WithoutDashDEveryChipFindsItsLoaderInTheInstalledBase) {
    InstalledBase installed;
    virtualpi::VirtualBus bus;
    const auto pi5 =
        bus.plug({virtualpi::builtinScenario(Chip::Bcm2712, virtualpi::Profile::MassStorageGadget),
                  "1-1",
                  {}});
    const auto cm4 =
        bus.plug({virtualpi::builtinScenario(Chip::Bcm2711, virtualpi::Profile::MassStorageGadget),
                  "1-2",
                  {}});
    const auto cm3 =
        bus.plug({virtualpi::builtinScenario(Chip::Bcm2837, virtualpi::Profile::Msd), "1-3", {}});
    CliRun run = runCli({"-l"}, bus, installed.base.string());
    EXPECT_EQ(run.status, 0) << run.out << run.err;
    for (auto port : {pi5, cm4, cm3}) {
        EXPECT_EQ(bus.board(port)->waitForOutcome(std::chrono::seconds(5)),
                  virtualpi::Outcome::Succeeded)
            << run.out << run.err;
    }
    // BCM2711/2712 loaders are the base's bootfiles.bin members, not msd's copy.
    ASSERT_FALSE(bus.board(pi5)->record().romAttempts.empty());
    EXPECT_EQ(bus.board(pi5)->record().romAttempts.back().bootcodeLength,
              tarMemberSize("2712/bootcode5.bin"));
    ASSERT_FALSE(bus.board(cm4)->record().romAttempts.empty());
    EXPECT_EQ(bus.board(cm4)->record().romAttempts.back().bootcodeLength,
              tarMemberSize("2711/bootcode4.bin"));
    EXPECT_NE(run.out.find("trying default " + (installed.base / "mass-storage-gadget64").string()),
              std::string::npos)
        << run.out;
    EXPECT_NE(run.out.find("trying default " + (installed.base / "msd").string()),
              std::string::npos)
        << run.out;
}

TEST(RpibootCli, WithoutDashDABaseWithOnlyBootfilesStillServesTheLoaders) {
    InstalledBase installed(false, false);
    virtualpi::VirtualBus bus;
    auto scenario =
        virtualpi::ScenarioBuilder(Chip::Bcm2712).file("bootmain").endWithEmptyName().build();
    const auto port = bus.plug({scenario, "1-1", {}});
    CliRun run = runCli({}, bus, installed.base.string());
    EXPECT_EQ(run.status, 0) << run.out << run.err;
    EXPECT_EQ(bus.board(port)->waitForOutcome(std::chrono::seconds(5)),
              virtualpi::Outcome::Succeeded);
    ASSERT_FALSE(bus.board(port)->record().romAttempts.empty());
    EXPECT_EQ(bus.board(port)->record().romAttempts.back().bootcodeLength,
              tarMemberSize("2712/bootcode5.bin"));
}

}  // namespace
}  // namespace rpiboot::cli

namespace rpiboot::cli {
namespace {

// A stale candidate first (a ROM announced twice, or already re-enumerating),
// then what the bus really has. `open` is the stale candidate's opener.
class StaleFirstWaiter final : public DeviceWaiter {
  public:
    StaleFirstWaiter(DeviceWaiter& inner, std::function<std::unique_ptr<OpenedDevice>()> open)
        : inner_(inner), open_(std::move(open)) {}
    std::optional<CandidateDevice> next() override {
        if (!staleSent_) {
            staleSent_ = true;
            CandidateDevice stale;
            stale.info.portPath = "1-1";
            stale.info.descriptor = {kBroadcomVendorId, 0x2711, 3, 1};
            stale.open = open_;
            return stale;
        }
        return inner_.next();
    }

  private:
    DeviceWaiter& inner_;
    std::function<std::unique_ptr<OpenedDevice>()> open_;
    bool staleSent_ = false;
};

// Boots a BCM2711 msd board through rpiboot with a stale candidate announced
// before it; returns what rpiboot printed on stderr.
std::string bootAfterAStaleCandidate(std::function<std::unique_ptr<OpenedDevice>()> open) {
    ScratchDir dir;
    make2711Set(dir.path());
    virtualpi::VirtualBus bus;
    const auto port =
        bus.plug({virtualpi::builtinScenario(Chip::Bcm2711, virtualpi::Profile::Msd), "1-1", {}});
    ParseResult parsed = parseOptions({"-d", dir.path().string()});
    VirtualWaiter inner(bus);
    StaleFirstWaiter waiter(inner, std::move(open));
    std::ostringstream out, err;
    Runner runner(parsed.options, "", waiter, out, err);
    EXPECT_EQ(runner.run(), 0) << out.str() << err.str();
    EXPECT_EQ(bus.board(port)->waitForOutcome(std::chrono::seconds(5)),
              virtualpi::Outcome::Succeeded);
    return err.str();
}

// Opened, then gone when its interface is claimed: what a duplicate arrival of
// a ROM that just re-enumerated looks like on the real kernel.
TEST(RpibootCli, DeviceGoneWhenClaimedIsSkippedNotFatal) {
    const std::string err = bootAfterAStaleCandidate([]() -> std::unique_ptr<OpenedDevice> {
        struct Gone final : OpenedDevice {
            Transport& transport() override {
                throw Error(Errc::DeviceGone, "used after it was gone");
            }
            std::string serialString() override { return {}; }
            void claim(const BulkInterface&) override {
                throw Error(Errc::DeviceGone,
                            "cannot claim interface 0: No such device (it may have been "
                            "disconnected)");
            }
        };
        return std::make_unique<Gone>();
    });
    EXPECT_EQ(err, "");
}

// A device that is gone by the time it is opened is not a failure: its next
// enumeration arrives on its own.
TEST(RpibootCli, DeviceGoneBeforeOpenIsSkippedNotFatal) {
    bootAfterAStaleCandidate([]() -> std::unique_ptr<OpenedDevice> {
        throw Error(Errc::DeviceGone, "no such device (it may have been disconnected)");
    });
}

}  // namespace
}  // namespace rpiboot::cli
