#include "virtualpi/scenario.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "rpiboot/core/error.hpp"
#include "scenario_internal.hpp"
#include "sha256.hpp"
#include "virtualpi/c40.hpp"

namespace virtualpi {

using nlohmann::json;
using rpiboot::Errc;
using rpiboot::Error;

namespace detail {

std::string_view bootcodeNameOf(rpiboot::Chip chip) noexcept {
    switch (chip) {
        case rpiboot::Chip::Bcm2711:
            return "bootcode4.bin";
        case rpiboot::Chip::Bcm2712:
            return "bootcode5.bin";
        default:
            return "bootcode.bin";
    }
}

std::optional<rpiboot::Chip> parseChipText(std::string_view text) noexcept {
    std::string t;
    for (char c : text) {
        t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    if (t.rfind("bcm", 0) == 0) {
        t.erase(0, 3);
    } else if (t.rfind("0x", 0) == 0) {
        t.erase(0, 2);
    }
    if (t == "2835" || t == "2763") {
        return rpiboot::Chip::Bcm2835;
    }
    if (t == "2836" || t == "2837" || t == "2710" || t == "2764") {
        return rpiboot::Chip::Bcm2837;
    }
    if (t == "2711") {
        return rpiboot::Chip::Bcm2711;
    }
    if (t == "2712") {
        return rpiboot::Chip::Bcm2712;
    }
    return std::nullopt;
}

namespace {

void fail(const std::string& message) {
    throw Error(Errc::InvalidArgument, "scenario: " + message);
}

bool isSecondStagePoint(FaultPoint p) {
    return p == FaultPoint::Request || p == FaultPoint::Reply || p == FaultPoint::Data;
}

void validateFault(const Fault& f, bool rom, const std::string& where) {
    if (!f.active()) {
        return;
    }
    if (rom == isSecondStagePoint(f.at)) {
        fail(where + ": fault point \"" + faultPointName(f.at) + "\" does not apply here");
    }
    const bool bulkPoint =
        f.at == FaultPoint::Data || f.at == FaultPoint::BootMessage || f.at == FaultPoint::Bootcode;
    if (f.kind == FaultKind::StallBulk && !bulkPoint) {
        fail(where + ": stall-bulk needs a data point (data, boot-message, bootcode)");
    }
    if (f.kind == FaultKind::StallControl && f.at == FaultPoint::Data) {
        fail(where + ": stall-control needs a request, reply or ROM point, not data");
    }
    if (f.afterBytes != 0 && !bulkPoint) {
        fail(where + ": afterBytes only applies to data, boot-message and bootcode faults");
    }
}

}  // namespace

void validateScenario(const Scenario& s) {
    if (s.serial.size() > 126) {
        fail("serial \"" + s.serial + "\" is longer than a string descriptor can hold");
    }
    if (s.rom.returnCodes.empty()) {
        fail("rom.returnCodes is empty");
    }
    if (s.rom.bootcodeSha256) {
        normaliseSha256(*s.rom.bootcodeSha256, "rom.sha256");
    }
    if (s.rom.signature) {
        const auto& sig = *s.rom.signature;
        if (sig.size() != 40 ||
            sig.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
            fail("rom.signature must be 40 hex digits (20 bytes)");
        }
    }
    validateFault(s.rom.fault, true, "rom");
    for (std::size_t i = 0; i < s.steps.size(); ++i) {
        const Step& step = s.steps[i];
        const std::string where = "step " + std::to_string(i + 1) + " (" + stepKindName(step.kind) +
                                  " \"" + step.name + "\")";
        if (step.name.size() > kRequestNameSize) {
            fail(where + ": the name is longer than the 256-byte name field");
        }
        if (step.sha256) {
            normaliseSha256(*step.sha256, where + " sha256");
        }
        if (step.messageLength && *step.messageLength > 0xffff) {
            fail(where + ": messageLength exceeds a control transfer");
        }
        if (step.repeat == 0) {
            fail(where + ": repeat must be at least 1");
        }
        if (step.kind == StepKind::Metadata && step.c40 && step.value &&
            step.value->find('{') == std::string::npos) {
            try {
                (void)c40Encode(*step.value);
            } catch (const Error& e) {
                fail(where + ": " + e.what());
            }
        }
        if (step.fault.active() &&
            (step.kind == StepKind::Pause || step.kind == StepKind::Disconnect)) {
            fail(where + ": this step cannot carry a fault");
        }
        validateFault(step.fault, false, where);
    }
    if (s.final.kind == FinalKind::MassStorageGadget &&
        (s.final.disks.empty() || s.final.disks.size() > 15)) {
        fail("final: the mass-storage gadget needs 1 to 15 disks");
    }
    if (s.final.kind == FinalKind::UsbDisk && s.final.disks.size() != 1) {
        fail("final: a usb-disk has exactly one disk");
    }
    if (s.startStage == StartStage::Final && s.final.kind == FinalKind::None) {
        fail("startStage \"final\" needs a final identity");
    }
    if (s.final.kind == FinalKind::Rom) {
        if (s.startStage == StartStage::Final) {
            fail(
                "startStage \"final\" with final kind \"rom\" is a board in its ROM: use "
                "startStage \"rom\"");
        }
        if (s.final.returns == 0 || s.final.returns > kMaxRomReturns) {
            fail("final.returns must be 1 to " + std::to_string(kMaxRomReturns));
        }
    }
    if (s.secondStage.interfaceCount > 2 || s.secondStage.interfaceCount == 0) {
        fail("secondStage.interfaces must be 1 or 2");
    }
    if (s.secondStage.serialNumberIndex > 255 || s.secondStage.productId > 0xffff) {
        fail("secondStage: serialIndex or productId out of range");
    }
}

}  // namespace detail

// ---------------------------------------------------------------- names

const char* stepKindName(StepKind kind) noexcept {
    switch (kind) {
        case StepKind::File:
            return "file";
        case StepKind::GetFileSize:
            return "get-file-size";
        case StepKind::ReadFile:
            return "read-file";
        case StepKind::Metadata:
            return "metadata";
        case StepKind::Raw:
            return "raw";
        case StepKind::Pause:
            return "pause";
        case StepKind::EmptyName:
            return "empty-name";
        case StepKind::Done:
            return "done";
        case StepKind::Disconnect:
            return "disconnect";
    }
    return "?";
}

const char* faultKindName(FaultKind kind) noexcept {
    switch (kind) {
        case FaultKind::None:
            return "none";
        case FaultKind::Disconnect:
            return "disconnect";
        case FaultKind::StallControl:
            return "stall-control";
        case FaultKind::StallBulk:
            return "stall-bulk";
        case FaultKind::Silence:
            return "silence";
    }
    return "?";
}

const char* faultPointName(FaultPoint point) noexcept {
    switch (point) {
        case FaultPoint::Request:
            return "request";
        case FaultPoint::Reply:
            return "reply";
        case FaultPoint::Data:
            return "data";
        case FaultPoint::BootMessage:
            return "boot-message";
        case FaultPoint::Bootcode:
            return "bootcode";
        case FaultPoint::Status:
            return "status";
    }
    return "?";
}

// ---------------------------------------------------------------- expectations

void Scenario::expectSha256(std::string_view fileName, std::string_view sha256Hex) {
    const std::string hash =
        detail::normaliseSha256(sha256Hex, "expected hash of " + std::string(fileName));
    if (rom.bootcodeName == fileName) {
        rom.bootcodeSha256 = hash;
    }
    for (Step& step : steps) {
        if ((step.kind == StepKind::File || step.kind == StepKind::ReadFile) &&
            step.name == fileName) {
            step.sha256 = hash;
        }
    }
}

void Scenario::expectHashes(const std::map<std::string, std::string>& hashes) {
    for (const auto& [fileName, hash] : hashes) {
        expectSha256(fileName, hash);
    }
}

std::map<std::string, std::string> readSha256Sums(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) {
        throw Error(Errc::NotFound, "cannot open the hash list " + path.string());
    }
    std::map<std::string, std::string> out;
    std::string line;
    while (std::getline(in, line)) {
        const auto space = line.find(' ');
        if (space == std::string::npos || space != 64) {
            continue;
        }
        std::string name = line.substr(space);
        name.erase(0, name.find_first_not_of(" *"));
        const auto slash = name.find_last_of('/');
        if (slash != std::string::npos) {
            name.erase(0, slash + 1);
        }
        if (!name.empty()) {
            out[name] = detail::normaliseSha256(line.substr(0, 64), "hash of " + name);
        }
    }
    return out;
}

// ---------------------------------------------------------------- JSON in

namespace {

[[noreturn]] void bad(const std::string& where, const std::string& what) {
    throw Error(Errc::InvalidArgument, "scenario: " + where + ": " + what);
}

void onlyKeys(const json& object, const std::string& where, std::set<std::string> allowed) {
    if (!object.is_object()) {
        bad(where, "expected a JSON object");
    }
    for (const auto& [key, value] : object.items()) {
        if (allowed.count(key) == 0) {
            bad(where, "unknown field \"" + key + "\"");
        }
    }
}

std::uint64_t toU64(const json& v, const std::string& where) {
    if (v.is_number_unsigned()) {
        return v.get<std::uint64_t>();
    }
    if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
        return static_cast<std::uint64_t>(v.get<std::int64_t>());
    }
    if (v.is_string()) {
        const std::string text = v.get<std::string>();
        try {
            std::size_t used = 0;
            const auto n = std::stoull(text, &used, 0);
            if (used == text.size()) {
                return n;
            }
        } catch (const std::exception&) {
        }
    }
    bad(where, "expected a non-negative number (or a \"0x..\" string)");
}

std::uint64_t toU64Max(const json& v, const std::string& where, std::uint64_t max) {
    const auto n = toU64(v, where);
    if (n > max) {
        bad(where, "value " + std::to_string(n) + " is larger than " + std::to_string(max));
    }
    return n;
}

std::string toString(const json& v, const std::string& where) {
    if (!v.is_string()) {
        bad(where, "expected a string");
    }
    return v.get<std::string>();
}

bool toBool(const json& v, const std::string& where) {
    if (!v.is_boolean()) {
        bad(where, "expected true or false");
    }
    return v.get<bool>();
}

std::chrono::milliseconds toMs(const json& v, const std::string& where) {
    return std::chrono::milliseconds(toU64Max(v, where, 24ull * 3600 * 1000));
}

std::string fromHex(const std::string& hex, const std::string& where) {
    if (hex.size() % 2 != 0) {
        bad(where, "hex text must have an even number of digits");
    }
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        try {
            std::size_t used = 0;
            const auto byte = std::stoul(hex.substr(i, 2), &used, 16);
            if (used != 2) {
                throw std::invalid_argument("hex");
            }
            out.push_back(static_cast<char>(byte));
        } catch (const std::exception&) {
            bad(where, "\"" + hex + "\" is not hex");
        }
    }
    return out;
}

template <typename E, std::size_t N>
E toEnum(const json& v, const std::string& where, const std::pair<const char*, E> (&names)[N]) {
    const std::string text = toString(v, where);
    for (const auto& [name, value] : names) {
        if (text == name) {
            return value;
        }
    }
    std::string list;
    for (const auto& [name, value] : names) {
        list += list.empty() ? "" : ", ";
        list += name;
    }
    bad(where, "\"" + text + "\" is not one of " + list);
}

const std::pair<const char*, FaultKind> kFaultKinds[] = {{"none", FaultKind::None},
                                                         {"disconnect", FaultKind::Disconnect},
                                                         {"stall-control", FaultKind::StallControl},
                                                         {"stall-bulk", FaultKind::StallBulk},
                                                         {"silence", FaultKind::Silence}};
const std::pair<const char*, FaultPoint> kFaultPoints[] = {
    {"request", FaultPoint::Request},   {"reply", FaultPoint::Reply},
    {"data", FaultPoint::Data},         {"boot-message", FaultPoint::BootMessage},
    {"bootcode", FaultPoint::Bootcode}, {"status", FaultPoint::Status}};
const std::pair<const char*, StepKind> kStepKinds[] = {{"file", StepKind::File},
                                                       {"get-file-size", StepKind::GetFileSize},
                                                       {"read-file", StepKind::ReadFile},
                                                       {"metadata", StepKind::Metadata},
                                                       {"raw", StepKind::Raw},
                                                       {"pause", StepKind::Pause},
                                                       {"empty-name", StepKind::EmptyName},
                                                       {"done", StepKind::Done},
                                                       {"disconnect", StepKind::Disconnect}};
const std::pair<const char*, FinalKind> kFinalKinds[] = {
    {"none", FinalKind::None},
    {"mass-storage-gadget", FinalKind::MassStorageGadget},
    {"custom", FinalKind::Custom},
    {"usb-disk", FinalKind::UsbDisk},
    {"rom", FinalKind::Rom}};
const std::pair<const char*, RawReply> kReplies[] = {{"auto", RawReply::Auto},
                                                     {"none", RawReply::None}};
const std::pair<const char*, StartStage> kStartStages[] = {
    {"rom", StartStage::Rom},
    {"second-stage", StartStage::SecondStage},
    {"final", StartStage::Final}};

Fault faultFromJson(const json& j, const std::string& where, FaultPoint defaultPoint) {
    onlyKeys(j, where, {"kind", "at", "afterBytes"});
    Fault f;
    f.at = defaultPoint;
    if (!j.contains("kind")) {
        bad(where, "a fault needs a \"kind\"");
    }
    f.kind = toEnum(j.at("kind"), where + ".kind", kFaultKinds);
    if (j.contains("at")) {
        f.at = toEnum(j.at("at"), where + ".at", kFaultPoints);
    }
    if (j.contains("afterBytes")) {
        f.afterBytes = toU64(j.at("afterBytes"), where + ".afterBytes");
    }
    return f;
}

Step stepFromJson(const json& j, const std::string& where) {
    Step s;
    if (j.is_string()) {
        s.name = j.get<std::string>();
        return s;
    }
    onlyKeys(j, where,
             {"kind", "name", "key", "value", "c40", "optional", "sha256", "size", "maxSize",
              "command", "pad", "nameHex", "messageLength", "reply", "delayMs", "repeat", "fault"});
    if (j.contains("kind")) {
        s.kind = toEnum(j.at("kind"), where + ".kind", kStepKinds);
    }
    if (j.contains("name")) {
        s.name = toString(j.at("name"), where + ".name");
    }
    if (j.contains("key")) {
        s.name = toString(j.at("key"), where + ".key");
    }
    if (j.contains("nameHex")) {
        s.name = fromHex(toString(j.at("nameHex"), where + ".nameHex"), where + ".nameHex");
    }
    if (j.contains("value")) {
        s.value = toString(j.at("value"), where + ".value");
    }
    if (j.contains("c40")) {
        s.c40 = toBool(j.at("c40"), where + ".c40");
    }
    if (j.contains("optional")) {
        s.optional = toBool(j.at("optional"), where + ".optional");
    }
    if (j.contains("sha256")) {
        s.sha256 =
            detail::normaliseSha256(toString(j.at("sha256"), where + ".sha256"), where + ".sha256");
    }
    if (j.contains("size")) {
        s.size = toU64(j.at("size"), where + ".size");
    }
    if (j.contains("maxSize")) {
        s.maxSize = toU64(j.at("maxSize"), where + ".maxSize");
    }
    if (s.kind == StepKind::Done) {
        s.command = kCommandDone;
        if (!j.contains("name")) {
            s.name = "done";
        }
    }
    if (j.contains("command")) {
        s.command =
            static_cast<std::uint32_t>(toU64Max(j.at("command"), where + ".command", 0xffffffffu));
    }
    if (j.contains("pad")) {
        s.pad = static_cast<std::uint8_t>(toU64Max(j.at("pad"), where + ".pad", 255));
    }
    if (j.contains("messageLength")) {
        s.messageLength = toU64Max(j.at("messageLength"), where + ".messageLength", 0xffff);
    }
    if (j.contains("reply")) {
        s.reply = toEnum(j.at("reply"), where + ".reply", kReplies);
    }
    if (j.contains("delayMs")) {
        s.delay = toMs(j.at("delayMs"), where + ".delayMs");
    }
    if (j.contains("repeat")) {
        s.repeat = static_cast<unsigned>(toU64Max(j.at("repeat"), where + ".repeat", 1'000'000));
    }
    if (j.contains("fault")) {
        s.fault = faultFromJson(j.at("fault"), where + ".fault", FaultPoint::Data);
    }
    return s;
}

}  // namespace

Scenario scenarioFromJson(const json& j) {
    onlyKeys(j, "top level",
             {"name", "chip", "serial", "startStage", "rom", "secondStage", "steps", "final",
              "timing", "bulkBytesPerSecond", "maxFileSize", "secureBoot", "comment"});
    Scenario s;
    if (j.contains("secureBoot")) {
        const json& b = j.at("secureBoot");
        onlyKeys(b, "secureBoot", {"otpKeyHash", "eepromPubkey", "jtagLocked", "devkeyRevoked"});
        if (b.contains("otpKeyHash")) {
            s.secureBoot.otpKeyHash = detail::normaliseSha256(
                toString(b.at("otpKeyHash"), "secureBoot.otpKeyHash"), "secureBoot.otpKeyHash");
        }
        if (b.contains("eepromPubkey")) {
            s.secureBoot.eepromPubkey = toString(b.at("eepromPubkey"), "secureBoot.eepromPubkey");
            if (s.secureBoot.eepromPubkey.size() != 528 ||
                s.secureBoot.eepromPubkey.find_first_not_of("0123456789abcdefABCDEF") !=
                    std::string::npos) {
                bad("secureBoot.eepromPubkey", "expected 528 hex digits (a 264-byte pubkey.bin)");
            }
        }
        if (b.contains("jtagLocked")) {
            s.secureBoot.jtagLocked = toBool(b.at("jtagLocked"), "secureBoot.jtagLocked");
        }
        if (b.contains("devkeyRevoked")) {
            s.secureBoot.devkeyRevoked = toBool(b.at("devkeyRevoked"), "secureBoot.devkeyRevoked");
        }
    }
    if (!j.contains("chip")) {
        bad("top level", "\"chip\" is required (2835, 2837, 2711 or 2712)");
    }
    const std::string chipText = toString(j.at("chip"), "chip");
    const auto chip = detail::parseChipText(chipText);
    if (!chip) {
        bad("chip", "\"" + chipText + "\" is not 2835, 2837, 2711 or 2712");
    }
    s.chip = *chip;
    s.rom.bootcodeName = std::string(detail::bootcodeNameOf(s.chip));
    if (j.contains("name")) {
        s.name = toString(j.at("name"), "name");
    }
    if (j.contains("serial")) {
        s.serial = toString(j.at("serial"), "serial");
    }
    if (j.contains("startStage")) {
        s.startStage = toEnum(j.at("startStage"), "startStage", kStartStages);
    }
    if (j.contains("rom")) {
        const json& r = j.at("rom");
        onlyKeys(r, "rom",
                 {"bootcode", "sha256", "signature", "returnCode", "returnCodes", "rejectCode",
                  "configQuirk", "fault"});
        if (r.contains("bootcode")) {
            s.rom.bootcodeName = toString(r.at("bootcode"), "rom.bootcode");
        }
        if (r.contains("sha256")) {
            s.rom.bootcodeSha256 =
                detail::normaliseSha256(toString(r.at("sha256"), "rom.sha256"), "rom.sha256");
        }
        if (r.contains("signature")) {
            s.rom.signature = toString(r.at("signature"), "rom.signature");
        }
        if (r.contains("returnCode")) {
            s.rom.returnCodes = {static_cast<std::uint32_t>(
                toU64Max(r.at("returnCode"), "rom.returnCode", 0xffffffffu))};
        }
        if (r.contains("returnCodes")) {
            if (!r.at("returnCodes").is_array()) {
                bad("rom.returnCodes", "expected an array of numbers");
            }
            s.rom.returnCodes.clear();
            for (const auto& code : r.at("returnCodes")) {
                s.rom.returnCodes.push_back(
                    static_cast<std::uint32_t>(toU64Max(code, "rom.returnCodes", 0xffffffffu)));
            }
        }
        if (r.contains("rejectCode")) {
            s.rom.rejectCode = static_cast<std::uint32_t>(
                toU64Max(r.at("rejectCode"), "rom.rejectCode", 0xffffffffu));
        }
        if (r.contains("configQuirk")) {
            s.rom.configQuirk = toBool(r.at("configQuirk"), "rom.configQuirk");
        }
        if (r.contains("fault")) {
            s.rom.fault = faultFromJson(r.at("fault"), "rom.fault", FaultPoint::Bootcode);
        }
    }
    if (j.contains("secondStage")) {
        const json& c = j.at("secondStage");
        onlyKeys(c, "secondStage", {"serialIndex", "interfaces", "productId"});
        if (c.contains("serialIndex")) {
            s.secondStage.serialNumberIndex =
                static_cast<int>(toU64Max(c.at("serialIndex"), "secondStage.serialIndex", 255));
        }
        if (c.contains("interfaces")) {
            s.secondStage.interfaceCount =
                static_cast<int>(toU64Max(c.at("interfaces"), "secondStage.interfaces", 2));
        }
        if (c.contains("productId")) {
            s.secondStage.productId =
                static_cast<int>(toU64Max(c.at("productId"), "secondStage.productId", 0xffff));
        }
    }
    if (j.contains("steps")) {
        if (!j.at("steps").is_array()) {
            bad("steps", "expected an array");
        }
        std::size_t n = 0;
        for (const auto& step : j.at("steps")) {
            s.steps.push_back(stepFromJson(step, "steps[" + std::to_string(n++) + "]"));
        }
    }
    if (j.contains("final")) {
        const json& f = j.at("final");
        onlyKeys(f, "final",
                 {"kind", "vendorId", "productId", "manufacturer", "product", "serial", "disks",
                  "returns"});
        if (f.contains("kind")) {
            s.final.kind = toEnum(f.at("kind"), "final.kind", kFinalKinds);
        }
        if (f.contains("vendorId")) {
            s.final.vendorId =
                static_cast<std::uint16_t>(toU64Max(f.at("vendorId"), "final.vendorId", 0xffff));
        }
        if (f.contains("productId")) {
            s.final.productId =
                static_cast<std::uint16_t>(toU64Max(f.at("productId"), "final.productId", 0xffff));
        }
        if (f.contains("manufacturer")) {
            s.final.manufacturer = toString(f.at("manufacturer"), "final.manufacturer");
        }
        if (f.contains("product")) {
            s.final.product = toString(f.at("product"), "final.product");
        }
        if (f.contains("serial")) {
            s.final.serial = toString(f.at("serial"), "final.serial");
        }
        if (f.contains("returns")) {
            s.final.returns =
                static_cast<unsigned>(toU64Max(f.at("returns"), "final.returns", kMaxRomReturns));
        }
        if (f.contains("disks")) {
            if (!f.at("disks").is_array()) {
                bad("final.disks", "expected an array of names");
            }
            s.final.disks.clear();
            for (const auto& d : f.at("disks")) {
                s.final.disks.push_back(toString(d, "final.disks"));
            }
        }
    }
    if (j.contains("timing")) {
        const json& t = j.at("timing");
        onlyKeys(t, "timing",
                 {"romResetDelayMs", "romStatusDelayMs", "secondStageStartDelayMs",
                  "fileProcessingDelayMs", "finalDelayMs", "hostTimeoutMs"});
        const std::pair<const char*, std::chrono::milliseconds*> fields[] = {
            {"romResetDelayMs", &s.timing.romResetDelay},
            {"romStatusDelayMs", &s.timing.romStatusDelay},
            {"secondStageStartDelayMs", &s.timing.secondStageStartDelay},
            {"fileProcessingDelayMs", &s.timing.fileProcessingDelay},
            {"finalDelayMs", &s.timing.finalDelay},
            {"hostTimeoutMs", &s.timing.hostTimeout}};
        for (const auto& [key, field] : fields) {
            if (t.contains(key)) {
                *field = toMs(t.at(key), std::string("timing.") + key);
            }
        }
    }
    if (j.contains("bulkBytesPerSecond")) {
        s.bulkBytesPerSecond = toU64(j.at("bulkBytesPerSecond"), "bulkBytesPerSecond");
    }
    if (j.contains("maxFileSize")) {
        s.maxFileSize = toU64(j.at("maxFileSize"), "maxFileSize");
    }
    detail::validateScenario(s);
    return s;
}

Scenario parseScenario(std::string_view text) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::parse_error& e) {
        throw Error(Errc::InvalidArgument, std::string("scenario: not valid JSON: ") + e.what());
    }
    return scenarioFromJson(j);
}

Scenario loadScenario(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw Error(Errc::NotFound, "cannot open the scenario file " + path.string());
    }
    std::ostringstream text;
    text << in.rdbuf();
    try {
        return parseScenario(text.str());
    } catch (const Error& e) {
        throw Error(e.code(), path.string() + ": " + e.what());
    }
}

// ---------------------------------------------------------------- JSON out

namespace {

bool printable(const std::string& text) {
    return std::all_of(text.begin(), text.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 0x20 && u < 0x7f;
    });
}

json faultToJson(const Fault& f) {
    json j{{"kind", faultKindName(f.kind)}, {"at", faultPointName(f.at)}};
    if (f.afterBytes != 0) {
        j["afterBytes"] = f.afterBytes;
    }
    return j;
}

json stepToJson(const Step& s) {
    json j{{"kind", stepKindName(s.kind)}};
    if (printable(s.name)) {
        j[s.kind == StepKind::Metadata ? "key" : "name"] = s.name;
    } else {
        j["nameHex"] =
            detail::toHex({reinterpret_cast<const std::uint8_t*>(s.name.data()), s.name.size()});
    }
    if (s.value) {
        j["value"] = *s.value;
    }
    if (s.c40) {
        j["c40"] = true;
    }
    if (s.optional) {
        j["optional"] = true;
    }
    if (s.sha256) {
        j["sha256"] = *s.sha256;
    }
    if (s.size) {
        j["size"] = *s.size;
    }
    if (s.maxSize) {
        j["maxSize"] = *s.maxSize;
    }
    if (s.kind == StepKind::Raw || s.kind == StepKind::EmptyName || s.kind == StepKind::Done) {
        j["command"] = s.command;
    }
    if (s.pad != 0) {
        j["pad"] = s.pad;
    }
    if (s.messageLength) {
        j["messageLength"] = *s.messageLength;
    }
    if (s.reply == RawReply::None) {
        j["reply"] = "none";
    }
    if (s.delay.count() != 0) {
        j["delayMs"] = s.delay.count();
    }
    if (s.repeat != 1) {
        j["repeat"] = s.repeat;
    }
    if (s.fault.active()) {
        j["fault"] = faultToJson(s.fault);
    }
    return j;
}

const char* finalKindName(FinalKind k) {
    switch (k) {
        case FinalKind::None:
            return "none";
        case FinalKind::MassStorageGadget:
            return "mass-storage-gadget";
        case FinalKind::Custom:
            return "custom";
        case FinalKind::UsbDisk:
            return "usb-disk";
        case FinalKind::Rom:
            return "rom";
    }
    return "none";
}

}  // namespace

json scenarioToJson(const Scenario& s) {
    json j;
    j["name"] = s.name;
    j["chip"] = std::string(rpiboot::chipNumber(s.chip));
    if (!s.serial.empty()) {
        j["serial"] = s.serial;
    }
    j["startStage"] = s.startStage == StartStage::Rom           ? "rom"
                      : s.startStage == StartStage::SecondStage ? "second-stage"
                                                                : "final";
    if (s.secureBoot.locked() || !s.secureBoot.eepromPubkey.empty() || s.secureBoot.jtagLocked ||
        s.secureBoot.devkeyRevoked) {
        j["secureBoot"] = {{"otpKeyHash", s.secureBoot.otpKeyHash},
                           {"eepromPubkey", s.secureBoot.eepromPubkey},
                           {"jtagLocked", s.secureBoot.jtagLocked},
                           {"devkeyRevoked", s.secureBoot.devkeyRevoked}};
        if (s.secureBoot.otpKeyHash.empty()) {
            j["secureBoot"].erase("otpKeyHash");
        }
    }
    json rom{{"bootcode", s.rom.bootcodeName},
             {"returnCodes", s.rom.returnCodes},
             {"rejectCode", s.rom.rejectCode}};
    if (s.rom.bootcodeSha256) {
        rom["sha256"] = *s.rom.bootcodeSha256;
    }
    if (s.rom.signature) {
        rom["signature"] = *s.rom.signature;
    }
    if (s.rom.configQuirk) {
        rom["configQuirk"] = true;
    }
    if (s.rom.fault.active()) {
        rom["fault"] = faultToJson(s.rom.fault);
    }
    j["rom"] = rom;
    json shape = json::object();
    if (s.secondStage.serialNumberIndex >= 0) {
        shape["serialIndex"] = s.secondStage.serialNumberIndex;
    }
    if (s.secondStage.interfaceCount >= 0) {
        shape["interfaces"] = s.secondStage.interfaceCount;
    }
    if (s.secondStage.productId >= 0) {
        shape["productId"] = s.secondStage.productId;
    }
    if (!shape.empty()) {
        j["secondStage"] = shape;
    }
    j["steps"] = json::array();
    for (const Step& step : s.steps) {
        j["steps"].push_back(stepToJson(step));
    }
    json fin{{"kind", finalKindName(s.final.kind)}};
    if (s.final.kind == FinalKind::Rom) {
        fin["returns"] = s.final.returns;
    } else if (s.final.kind != FinalKind::None) {
        fin["vendorId"] = s.final.vendorId;
        fin["productId"] = s.final.productId;
        fin["manufacturer"] = s.final.manufacturer;
        fin["product"] = s.final.product;
        fin["disks"] = s.final.disks;
        if (!s.final.serial.empty()) {
            fin["serial"] = s.final.serial;
        }
    }
    j["final"] = fin;
    j["timing"] = {{"romResetDelayMs", s.timing.romResetDelay.count()},
                   {"romStatusDelayMs", s.timing.romStatusDelay.count()},
                   {"secondStageStartDelayMs", s.timing.secondStageStartDelay.count()},
                   {"fileProcessingDelayMs", s.timing.fileProcessingDelay.count()},
                   {"finalDelayMs", s.timing.finalDelay.count()},
                   {"hostTimeoutMs", s.timing.hostTimeout.count()}};
    j["bulkBytesPerSecond"] = s.bulkBytesPerSecond;
    if (s.maxFileSize) {
        j["maxFileSize"] = *s.maxFileSize;
    }
    return j;
}

}  // namespace virtualpi
