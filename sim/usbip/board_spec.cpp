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
    } else if (key == "port") {
        const auto port = number(value);
        if (!port || *port > 0xffff) {
            bad(spec.text, "port '" + value + "' is not a vhci-hcd port number");
        }
        spec.port = static_cast<unsigned>(*port);
    } else {
        bad(spec.text,
            "unknown option '" + key + "' (serial, unplug, expect, sums, sha256, quirk or port)");
    }
}

virtualpi::Scenario scenarioOf(const BoardSpec& spec, const std::string& source) {
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
    if (spec.port && spec.count != 1) {
        bad(spec.text, "port= names one port, but the spec asks for " + std::to_string(spec.count) +
                           " boards");
    }
    spec.scenario = scenarioOf(spec, source);
    return spec;
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
    if (!spec.unplug) {
        return s;
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
