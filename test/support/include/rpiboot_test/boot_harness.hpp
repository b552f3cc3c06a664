// Drives the real engine (runBootStage over the fake transport) against
// virtual boards on a VirtualBus, the way a host would: wait for the board's
// next enumeration on its port, run that stage, repeat until its second
// stage is over. Also extracts the real fixture archive with the system's
// `tar` so archive members are checked against bytes our reader never saw.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "rpiboot/boot/boot.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/core/metadata.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/firmware/firmware_set.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "virtualpi/builtin_scenarios.hpp"
#include "virtualpi/scenario.hpp"
#include "virtualpi/sim_board.hpp"
#include "virtualpi/virtual_bus.hpp"

namespace rpiboot::test {

namespace fs = std::filesystem;

inline const fs::path kFixtures{RPIBOOT_FIXTURES_DIR};

inline std::string sha256Hex(const std::string& bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
    std::string hex;
    char buf[3];
    for (unsigned i = 0; i < length; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", digest[i]);
        hex += buf;
    }
    return hex;
}

inline std::string readFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// SHA256SUMS of the fixtures keyed by their path relative to the fixture dir.
inline std::map<std::string, std::string> fixtureSums() {
    std::map<std::string, std::string> sums;
    std::ifstream in(kFixtures / "SHA256SUMS");
    std::string hash, path;
    while (in >> hash >> path) {
        if (path.rfind("./", 0) == 0) {
            path.erase(0, 2);
        }
        sums[path] = hash;
    }
    return sums;
}

// Hashes of every member of the fixture bootfiles.bin, extracted by tar(1).
inline std::map<std::string, std::string> archiveMemberSums(const std::string& chipFolder) {
    ScratchDir dir;
    const std::string cmd =
        "tar -xf '" + (kFixtures / "bootfiles.bin").string() + "' -C '" + dir.path().string() + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    std::map<std::string, std::string> sums;
    for (const auto& entry : fs::directory_iterator(dir.path() / chipFolder)) {
        sums[entry.path().filename().string()] = sha256Hex(readFile(entry.path()));
    }
    return sums;
}

struct HostResult {
    int romStages = 0;
    int secondStages = 0;
    std::optional<FileServerResult> files;
    std::string error;
};

// Serves the board on `port` until its second stage ends or an error.
inline HostResult serveBoard(virtualpi::VirtualBus& bus, const std::string& port,
                             const FirmwareSet& firmware, BootOptions options = {},
                             std::chrono::milliseconds wait = std::chrono::seconds(20)) {
    HostResult result;
    std::uint64_t lastId = 0;
    while (true) {
        auto device = bus.waitForDevice(
            [&](const virtualpi::SimDeviceInfo& d) {
                return d.portPath == port && d.deviceId != lastId &&
                       isBootDevice(d.summary.vendorId, d.summary.productId);
            },
            wait);
        if (!device) {
            result.error = "board did not enumerate";
            return result;
        }
        lastId = device->deviceId;
        const auto identity = identifyDevice(device->summary);
        BoardContext board{identity->chip, port, device->serial};
        try {
            auto transport = bus.open(device->deviceId);
            StageOutcome outcome = runBootStage(*transport, *identity, firmware, board, options);
            if (identity->stage == BootStage::Rom) {
                ++result.romStages;
                continue;
            }
            ++result.secondStages;
            result.files = outcome.files;
            return result;
        } catch (const Error& e) {
            result.error = e.what();
            return result;
        }
    }
}

}  // namespace rpiboot::test
