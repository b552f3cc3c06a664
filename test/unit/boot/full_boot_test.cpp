// Full boots of virtual boards of every chip through the library, every byte
// the board received checked against the fixtures' SHA256SUMS.
#include <mutex>
#include <thread>

#include "rpiboot_test/boot_harness.hpp"

namespace rpiboot::test {
namespace {

using virtualpi::Outcome;
using virtualpi::Profile;

// The msd boot set as shipped: msd/ holds the BCM2835 family's files and
// links bootcode4.bin / start4.elf for BCM2711 (the fixture copy stores those
// links as plain text files, so the set is laid out afresh with real links).
struct MsdTree {
    ScratchDir dir;
    MsdTree() {
        const fs::path base = dir.path();
        fs::create_directories(base / "msd");
        fs::create_directories(base / "2711");
        fs::copy_file(kFixtures / "msd/bootcode.bin", base / "msd/bootcode.bin");
        fs::copy_file(kFixtures / "msd/start.elf", base / "msd/start.elf");
        fs::copy_file(kFixtures / "2711/bootcode4.bin", base / "2711/bootcode4.bin");
        fs::create_symlink("../2711/bootcode4.bin", base / "msd/bootcode4.bin");
        fs::create_symlink("start.elf", base / "msd/start4.elf");
    }
};

std::unique_ptr<FirmwareSet> msdSet(const MsdTree& tree, const std::shared_ptr<FileCache>& cache) {
    FirmwareSetConfig config;
    config.root = tree.dir.path() / "msd";
    config.trustedRoots = {tree.dir.path()};  // msd/bootcode4.bin links to ../2711/
    return std::make_unique<FirmwareSet>(config, cache);
}

std::string describe(const virtualpi::BoardRecord& record) {
    std::string text =
        std::string("outcome ") + virtualpi::outcomeName(record.outcome) + ": " + record.reason;
    for (const auto& line : record.log) {
        text += "\n  " + line;
    }
    return text;
}

void expectFile(const virtualpi::BoardRecord& record, const std::string& name,
                const std::string& sha256) {
    const virtualpi::FileRecord* file = record.file(name);
    ASSERT_NE(file, nullptr) << name << " was never requested";
    EXPECT_TRUE(file->complete) << name;
    EXPECT_EQ(file->sha256, sha256) << name << " arrived with different bytes";
}

struct MsdCase {
    Chip chip;
    const char* bootcodeFixture;
    const char* firmwareName;
};

class MsdBoot : public ::testing::TestWithParam<MsdCase> {};

TEST_P(MsdBoot, BoardReceivesTheFixtureBytesAndSucceeds) {
    const MsdCase c = GetParam();
    const auto sums = fixtureSums();
    auto cache = std::make_shared<FileCache>();
    MsdTree tree;
    auto firmware = msdSet(tree, cache);
    virtualpi::VirtualBus bus;
    virtualpi::Scenario scenario = virtualpi::builtinScenario(c.chip, Profile::Msd);
    scenario.expectSha256(bootcodeFileName(c.chip), sums.at(c.bootcodeFixture));
    scenario.expectSha256(c.firmwareName, sums.at("msd/start.elf"));
    const std::string port = bus.plug({scenario, "1-1.2", {}});

    HostResult host = serveBoard(bus, port, *firmware);
    auto board = bus.board(port);
    ASSERT_EQ(board->waitForOutcome(std::chrono::seconds(10)), Outcome::Succeeded)
        << describe(board->record()) << "\nhost: " << host.error;
    EXPECT_EQ(host.romStages, 1);
    EXPECT_EQ(host.secondStages, 1);
    const auto record = board->record();
    ASSERT_EQ(record.romAttempts.size(), 1U);
    EXPECT_EQ(record.romAttempts[0].bootcodeSha256, sums.at(c.bootcodeFixture));
    EXPECT_EQ(record.romAttempts[0].signatureHex, std::string(40, '0'));
    expectFile(record, c.firmwareName, sums.at("msd/start.elf"));
    ASSERT_TRUE(host.files);
    EXPECT_EQ(host.files->filesServed, 1U);
}

INSTANTIATE_TEST_SUITE_P(Chips, MsdBoot,
                         ::testing::Values(MsdCase{Chip::Bcm2835, "msd/bootcode.bin", "start.elf"},
                                           MsdCase{Chip::Bcm2837, "msd/bootcode.bin", "start.elf"},
                                           MsdCase{Chip::Bcm2711, "2711/bootcode4.bin",
                                                   "start4.elf"}),
                         [](const auto& p) { return std::string(chipName(p.param.chip)); });

TEST(TwoInterfaceBoot, Bcm2837SecondStageIsServedOnInterfaceOne) {
    const auto sums = fixtureSums();
    MsdTree tree;
    auto firmware = msdSet(tree, std::make_shared<FileCache>());
    virtualpi::VirtualBus bus;
    virtualpi::Scenario scenario = virtualpi::builtinScenario(Chip::Bcm2837, Profile::Msd);
    scenario.expectSha256("start.elf", sums.at("msd/start.elf"));
    std::mutex mutex;
    std::vector<virtualpi::SimDeviceInfo> seen;
    bus.addListener([&](const virtualpi::DeviceEvent& event) {
        if (event.kind == virtualpi::DeviceEventKind::Added) {
            std::lock_guard lock(mutex);
            seen.push_back(event.device);
        }
    });
    const std::string port = bus.plug({scenario, "2-3", {}});
    HostResult host = serveBoard(bus, port, *firmware);
    bus.flushEvents();
    {
        std::lock_guard lock(mutex);
        ASSERT_GE(seen.size(), 2U);
        EXPECT_EQ(seen[0].summary.interfaceCount, 1);
        EXPECT_EQ(seen[0].summary.serialNumberIndex, 0);
        EXPECT_EQ(seen[1].summary.interfaceCount, 2);
        EXPECT_EQ(seen[1].summary.serialNumberIndex, 1);
    }
    auto board = bus.board(port);
    ASSERT_EQ(board->waitForOutcome(std::chrono::seconds(10)), Outcome::Succeeded)
        << describe(board->record()) << "\nhost: " << host.error;
    expectFile(board->record(), "start.elf", sums.at("msd/start.elf"));
}

class GadgetBoot : public ::testing::TestWithParam<Chip> {};

TEST_P(GadgetBoot, ArchiveMembersConfigAndBootImageArriveIntact) {
    const Chip chip = GetParam();
    const auto sums = fixtureSums();
    const auto members = archiveMemberSums(std::string(chipFolder(chip)));
    ScratchDir root;
    fs::copy_file(kFixtures / "bootfiles.bin", root.path() / "bootfiles.bin");
    fs::copy_file(kFixtures / "mass-storage-gadget64/config.txt", root.path() / "config.txt");
    fs::copy_file(kFixtures / "mass-storage-gadget64/boot-secure-msd.img",
                  root.path() / "boot.img");
    FirmwareSetConfig config;
    config.root = root.path();
    FirmwareSet firmware(config, std::make_shared<FileCache>());

    virtualpi::BuiltinOptions options;
    options.rp1Firmware = true;
    virtualpi::Scenario scenario =
        virtualpi::builtinScenario(chip, Profile::MassStorageGadget, options);
    scenario.expectHashes(members);
    scenario.expectSha256("config.txt", sums.at("mass-storage-gadget64/config.txt"));
    scenario.expectSha256("boot.img", sums.at("mass-storage-gadget64/boot-secure-msd.img"));
    virtualpi::VirtualBus bus;
    const std::string port = bus.plug({scenario, "3-1.4.2", {}});
    HostResult host = serveBoard(bus, port, firmware);
    auto board = bus.board(port);
    ASSERT_EQ(board->waitForOutcome(std::chrono::seconds(10)), Outcome::Succeeded)
        << describe(board->record()) << "\nhost: " << host.error;
    const auto record = board->record();
    EXPECT_EQ(record.romAttempts.at(0).bootcodeSha256,
              members.at(std::string(bootcodeFileName(chip))));
    for (const auto& step : scenario.steps) {
        if (step.kind != virtualpi::StepKind::File || step.optional) {
            continue;
        }
        const std::string expected =
            step.name == "config.txt" ? sums.at("mass-storage-gadget64/config.txt")
            : step.name == "boot.img" ? sums.at("mass-storage-gadget64/boot-secure-msd.img")
                                      : members.at(step.name);
        expectFile(record, step.name, expected);
    }
    if (chip == Chip::Bcm2712) {
        expectFile(record, "rp1c0fw1.bin", members.at("rp1c0fw1.bin"));
    }
}

INSTANTIATE_TEST_SUITE_P(Chips, GadgetBoot, ::testing::Values(Chip::Bcm2711, Chip::Bcm2712),
                         [](const auto& p) { return std::string(chipName(p.param)); });

TEST(ConcurrentBoots, SixteenMixedBoardsShareOneFirmwareSet) {
    const auto sums = fixtureSums();
    MsdTree tree;
    auto firmware = msdSet(tree, std::make_shared<FileCache>());
    virtualpi::VirtualBus bus;
    const Chip chips[] = {Chip::Bcm2835, Chip::Bcm2837, Chip::Bcm2711, Chip::Bcm2711};
    std::vector<std::string> ports;
    for (int i = 0; i < 16; ++i) {
        const Chip chip = chips[i % 4];
        virtualpi::Scenario scenario = virtualpi::builtinScenario(chip, Profile::Msd);
        scenario.expectSha256(chip == Chip::Bcm2711 ? "start4.elf" : "start.elf",
                              sums.at("msd/start.elf"));
        ports.push_back(bus.plug({scenario, "1-1." + std::to_string(i + 1), {}}));
    }
    std::vector<HostResult> results(ports.size());
    std::vector<std::thread> hosts;
    for (std::size_t i = 0; i < ports.size(); ++i) {
        hosts.emplace_back([&, i] { results[i] = serveBoard(bus, ports[i], *firmware); });
    }
    for (auto& t : hosts) {
        t.join();
    }
    for (std::size_t i = 0; i < ports.size(); ++i) {
        auto board = bus.board(ports[i]);
        EXPECT_EQ(board->waitForOutcome(std::chrono::seconds(10)), Outcome::Succeeded)
            << ports[i] << ": " << describe(board->record()) << "\nhost: " << results[i].error;
    }
}

TEST(FailedBoots, MissingRequiredFileFailsTheBoardAndTheHostSaysWhy) {
    ScratchDir root;
    fs::create_directories(root.path() / "2711");
    fs::copy_file(kFixtures / "2711/bootcode4.bin", root.path() / "2711/bootcode4.bin");
    FirmwareSetConfig config;
    config.root = root.path();
    FirmwareSet firmware(config, std::make_shared<FileCache>());
    virtualpi::VirtualBus bus;
    const std::string port =
        bus.plug({virtualpi::builtinScenario(Chip::Bcm2711, Profile::Msd), "1-4", {}});
    serveBoard(bus, port, firmware);
    auto board = bus.board(port);
    EXPECT_EQ(board->waitForOutcome(std::chrono::seconds(10)), Outcome::Failed);
    EXPECT_NE(board->record().reason.find("start4.elf"), std::string::npos)
        << board->record().reason;
}

TEST(FailedBoots, MissingBootcodeIsANotFoundErrorNamingTheFile) {
    ScratchDir root;
    FirmwareSetConfig config;
    config.root = root.path();
    FirmwareSet firmware(config, std::make_shared<FileCache>());
    virtualpi::VirtualBus bus;
    const std::string port = bus.plug(
        {virtualpi::builtinScenario(Chip::Bcm2712, Profile::MassStorageGadget), "1-5", {}});
    HostResult host = serveBoard(bus, port, firmware);
    EXPECT_NE(host.error.find("bootcode5.bin"), std::string::npos) << host.error;
}

}  // namespace
}  // namespace rpiboot::test
