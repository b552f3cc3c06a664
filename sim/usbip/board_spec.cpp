#include "board_spec.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "rpiboot/core/device.hpp"
#include "rpiboot/core/error.hpp"
#include "virtualpi/builtin_scenarios.hpp"

namespace usbip {
namespace {

using rpiboot::Errc;
using rpiboot::Error;

[[noreturn]] void bad(std::string_view spec, const std::string& why) {
    throw Error(Errc::InvalidArgument, "board '" + std::string(spec) + "': " + why);
}

// Which backed disk an unplug=NAME@N names, if any.
std::optional<std::size_t> diskIndex(const BoardSpec& spec, const std::string& name) {
    if (name == "disk") {
        return 0;
    }
    const auto& names = spec.scenario.final.disks;
    for (std::size_t i = 0; i < names.size() && i < spec.disks.size(); ++i) {
        if (names[i] == name) {
            return i;
        }
    }
    return std::nullopt;
}

std::optional<std::uint64_t> number(std::string_view text) {
    if (text.empty() || text.size() > 19 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    return std::stoull(std::string(text));
}

bool isHex(std::string_view text) {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

std::string lower(std::string text) {
    for (char& c : text) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return text;
}

bool endsWith(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::uint64_t sizeOrBad(const BoardSpec& spec, const std::string& text) {
    try {
        return parseDiskSize(text);
    } catch (const Error& e) {
        bad(spec.text, e.what());
    }
}

void applyOption(BoardSpec& spec, std::string_view option) {
    const auto eq = option.find('=');
    if (eq == std::string_view::npos) {
        bad(spec.text, "option '" + std::string(option) + "' is not KEY=VALUE");
    }
    const std::string key(option.substr(0, eq));
    const std::string value(option.substr(eq + 1));
    if (key == "serial") {
        if (value.empty() || value.size() > 8 || !isHex(value)) {
            bad(spec.text, "serial '" + value + "' is not 1 to 8 hex digits");
        }
        spec.serial = lower(value);
    } else if (key == "unplug") {
        const auto at = value.rfind('@');
        const auto bytes = at == std::string::npos ? std::nullopt : number(value.substr(at + 1));
        if (!bytes || at == 0) {
            bad(spec.text, "unplug wants FILE@BYTES, not '" + value + "'");
        }
        spec.unplug = Unplug{value.substr(0, at), *bytes};
    } else if (key == "expect") {
        if (value != "failed" && value != "succeeded") {
            bad(spec.text, "expect wants 'failed' or 'succeeded', not '" + value + "'");
        }
        spec.expectFailure = value == "failed";
    } else if (key == "sums") {
        spec.sumFiles.emplace_back(value);
    } else if (key == "sha256") {
        const auto colon = value.rfind(':');
        const std::string hash = colon == std::string::npos ? "" : lower(value.substr(colon + 1));
        if (colon == 0 || hash.size() != 64 || !isHex(hash)) {
            bad(spec.text, "sha256 wants NAME:HEX with 64 hex digits, not '" + value + "'");
        }
        spec.hashes[value.substr(0, colon)] = hash;
    } else if (key == "quirk") {
        if (value != "config") {
            bad(spec.text,
                "quirk wants 'config' (the ROM's 55/32 configuration length), not '" + value + "'");
        }
        spec.configQuirk = true;
    } else if (key == "disk") {
        spec.disks = {DiskSpec{"", sizeOrBad(spec, value)}};
    } else if (key == "disks") {
        spec.disks.clear();
        std::string::size_type begin = 0;
        for (;;) {
            const auto plus = value.find('+', begin);
            const std::string item = value.substr(begin, plus - begin);
            const auto colon = item.rfind(':');
            if (colon == std::string::npos || colon == 0) {
                bad(spec.text, "disks wants NAME:SIZE+NAME:SIZE..., not '" + value + "'");
            }
            spec.disks.push_back({item.substr(0, colon), sizeOrBad(spec, item.substr(colon + 1))});
            if (plus == std::string::npos) {
                break;
            }
            begin = plus + 1;
        }
    } else if (key == "start") {
        if (value != "final") {
            bad(spec.text, "start wants 'final' (the identity after booting), not '" + value + "'");
        }
        spec.startFinal = true;
    } else if (key == "returns") {
        const auto n = number(value);
        if (!n || *n == 0 || *n > virtualpi::kMaxRomReturns) {
            bad(spec.text, "returns wants 1 to " + std::to_string(virtualpi::kMaxRomReturns) +
                               " (times the board comes back as its ROM), not '" + value + "'");
        }
        spec.returns = static_cast<unsigned>(*n);
    } else if (key == "port") {
        const auto port = number(value);
        if (!port || *port > 0xffff) {
            bad(spec.text, "port '" + value + "' is not a vhci-hcd port number");
        }
        spec.port = static_cast<unsigned>(*port);
    } else {
        bad(spec.text,
            "unknown option '" + key +
                "' (serial, unplug, expect, sums, sha256, quirk, port, disk, disks, start or "
                "returns)");
    }
}

// A plain USB disk on its own port: no ROM, no boot.
virtualpi::Scenario decoyDisk() {
    virtualpi::Scenario s;
    s.name = "decoy-disk";
    s.startStage = virtualpi::StartStage::Final;
    s.final.kind = virtualpi::FinalKind::UsbDisk;
    s.final.vendorId = kDecoyVendorId;
    s.final.productId = kDecoyProductId;
    s.final.manufacturer = "Virtual";
    s.final.product = "Decoy USB Disk";
    s.final.disks = {"decoy"};
    return s;
}

virtualpi::Scenario scenarioOf(BoardSpec& spec, const std::string& source) {
    if (lower(source).rfind("decoy-disk:", 0) == 0) {
        spec.disks = {DiskSpec{"", sizeOrBad(spec, source.substr(11))}};
        return decoyDisk();
    }
    if (endsWith(lower(source), ".json")) {
        return virtualpi::loadScenario(source);
    }
    const auto colon = source.find(':');
    if (colon == std::string::npos) {
        bad(spec.text, "'" + source + "' is neither CHIP:PROFILE nor a .json scenario file");
    }
    const auto chip = rpiboot::parseChip(source.substr(0, colon));
    if (!chip) {
        bad(spec.text, "unknown chip '" + source.substr(0, colon) + "' (2835, 2837, 2711, 2712)");
    }
    const auto profile = virtualpi::parseProfile(source.substr(colon + 1));
    if (!profile) {
        bad(spec.text, "unknown profile '" + source.substr(colon + 1) +
                           "' (msd, mass-storage-gadget, recovery)");
    }
    try {
        return virtualpi::builtinScenario(*chip, *profile);
    } catch (const Error& e) {
        bad(spec.text, e.what());
    }
}

}  // namespace

BoardSpec parseBoardSpec(std::string_view text) {
    BoardSpec spec;
    spec.text = std::string(text);
    std::vector<std::string> parts;
    std::string current;
    for (char c : text) {
        if (c == ',') {
            parts.push_back(current);
            current.clear();
        } else {
            current.push_back(c);
        }
    }
    parts.push_back(current);
    std::string source = parts.front();
    if (const auto star = source.rfind('*'); star != std::string::npos) {
        const auto count = number(source.substr(star + 1));
        if (!count || *count == 0 || *count > 1000) {
            bad(spec.text, "count '" + source.substr(star + 1) + "' is not 1 to 1000");
        }
        spec.count = static_cast<unsigned>(*count);
        source.resize(star);
    }
    if (source.empty()) {
        bad(spec.text, "no chip:profile or scenario file");
    }
    for (std::size_t i = 1; i < parts.size(); ++i) {
        applyOption(spec, parts[i]);
    }
    const std::vector<DiskSpec> optionDisks = spec.disks;
    if (spec.port && spec.count != 1) {
        bad(spec.text, "port= names one port, but the spec asks for " + std::to_string(spec.count) +
                           " boards");
    }
    spec.scenario = scenarioOf(spec, source);
    if (spec.scenario.name == "decoy-disk" && !optionDisks.empty()) {
        bad(spec.text, "a decoy disk takes its size from decoy-disk:SIZE, not disk= or disks=");
    }
    const auto& f = spec.scenario.final;
    const bool storage = f.kind == virtualpi::FinalKind::MassStorageGadget ||
                         f.kind == virtualpi::FinalKind::UsbDisk;
    if (!spec.disks.empty() && !storage) {
        bad(spec.text, "scenario '" + spec.scenario.name +
                           "' has no final identity with disks (disk= needs a mass-storage "
                           "gadget or a usb-disk)");
    }
    const bool named = !spec.disks.empty() && !spec.disks.front().name.empty();
    if (named) {
        if (f.kind != virtualpi::FinalKind::MassStorageGadget || spec.disks.size() > 15) {
            bad(spec.text, "disks= names 1 to 15 disks of a mass-storage gadget");
        }
        spec.scenario.final.disks.clear();
        for (const auto& d : spec.disks) {
            spec.scenario.final.disks.push_back(d.name);
        }
    } else if (spec.disks.size() > f.disks.size()) {
        bad(spec.text, "more disks than the final identity has");
    }
    if (spec.startFinal) {
        if (f.kind == virtualpi::FinalKind::None) {
            bad(spec.text, "start=final needs a scenario with a final identity");
        }
        spec.scenario.startStage = virtualpi::StartStage::Final;
    }
    if (spec.returns) {
        if (f.kind != virtualpi::FinalKind::None && f.kind != virtualpi::FinalKind::Rom) {
            bad(spec.text, "returns= makes the board come back as its ROM, but scenario '" +
                               spec.scenario.name + "' becomes another device after its boot");
        }
        if (spec.startFinal) {
            bad(spec.text, "returns= and start=final exclude each other");
        }
        spec.scenario.final.kind = virtualpi::FinalKind::Rom;
        spec.scenario.final.returns = *spec.returns;
    }
    if (spec.unplug && diskIndex(spec, spec.unplug->file) && spec.disks.empty()) {
        bad(spec.text, "unplug=" + spec.unplug->file + "@N needs disk= or disks=");
    }
    return spec;
}

std::uint64_t parseDiskSize(std::string_view text) {
    std::uint64_t unit = 1;
    std::string_view digits = text;
    if (!text.empty()) {
        switch (std::tolower(static_cast<unsigned char>(text.back()))) {
            case 'k':
                unit = 1ULL << 10;
                break;
            case 'm':
                unit = 1ULL << 20;
                break;
            case 'g':
                unit = 1ULL << 30;
                break;
            default:
                break;
        }
        if (unit != 1) {
            digits.remove_suffix(1);
        }
    }
    const auto n = number(digits);
    if (!n || *n == 0 || *n > (1ULL << 44) / unit || (*n * unit) % 512 != 0) {
        throw Error(Errc::InvalidArgument,
                    "disk size '" + std::string(text) +
                        "' is not a positive multiple of 512 bytes (e.g. 64M, 1G, 1048576)");
    }
    return *n * unit;
}

std::vector<virtualpi::DiskAttachment> boardDisks(const BoardSpec& spec,
                                                  const virtualpi::Scenario& scenario,
                                                  const std::filesystem::path& dir,
                                                  unsigned index) {
    std::vector<virtualpi::DiskAttachment> out;
    const std::string base = "board-" + std::to_string(index) + "-";
    for (std::size_t i = 0; i < spec.disks.size(); ++i) {
        virtualpi::DiskAttachment a;
        a.file = dir / (spec.disks.size() == 1 ? base + "disk.img"
                                               : base + scenario.final.disks.at(i) + ".img");
        a.sizeBytes = spec.disks[i].sizeBytes;
        out.push_back(std::move(a));
    }
    if (spec.unplug) {
        if (const auto disk = diskIndex(spec, spec.unplug->file); disk && *disk < out.size()) {
            out[*disk].unplugAfterWritten = spec.unplug->afterBytes;
        }
    }
    return out;
}

virtualpi::Scenario boardScenario(const BoardSpec& spec, const std::string& serial,
                                  const std::map<std::string, std::string>& globalHashes) {
    virtualpi::Scenario s = spec.scenario;
    s.serial = serial;
    s.rom.configQuirk = s.rom.configQuirk || spec.configQuirk;
    s.expectHashes(globalHashes);
    for (const auto& file : spec.sumFiles) {
        s.expectHashes(virtualpi::readSha256Sums(file));
    }
    s.expectHashes(spec.hashes);
    if (!spec.unplug || diskIndex(spec, spec.unplug->file)) {
        return s;  // no unplug, or one the disk's attachment carries
    }
    const virtualpi::Fault fault{virtualpi::FaultKind::Disconnect, virtualpi::FaultPoint::Data,
                                 spec.unplug->afterBytes};
    if (spec.unplug->file == s.rom.bootcodeName) {
        s.rom.fault = fault;
        s.rom.fault.at = virtualpi::FaultPoint::Bootcode;
        return s;
    }
    for (virtualpi::Step& step : s.steps) {
        const bool readsData =
            step.kind == virtualpi::StepKind::File || step.kind == virtualpi::StepKind::ReadFile;
        if (readsData && step.name == spec.unplug->file) {
            step.fault = fault;
            return s;
        }
    }
    bad(spec.text,
        "unplug names '" + spec.unplug->file + "', which scenario '" + s.name + "' never reads");
}

std::string serialPlus(std::string_view hex8, unsigned n) {
    if (hex8.empty() || hex8.size() > 8 || !isHex(hex8)) {
        throw Error(Errc::InvalidArgument,
                    "serial '" + std::string(hex8) + "' is not 1 to 8 hex digits");
    }
    const auto base = static_cast<std::uint32_t>(std::stoul(std::string(hex8), nullptr, 16));
    char text[9];
    std::snprintf(text, sizeof text, "%08x", static_cast<unsigned>(base + n));
    return text;
}

}  // namespace usbip
