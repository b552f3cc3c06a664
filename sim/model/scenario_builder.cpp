#include "virtualpi/scenario_builder.hpp"

#include "rpiboot/core/error.hpp"
#include "scenario_internal.hpp"

namespace virtualpi {

ScenarioBuilder::ScenarioBuilder(rpiboot::Chip chip) {
    scenario_.chip = chip;
    scenario_.rom.bootcodeName = std::string(detail::bootcodeNameOf(chip));
    scenario_.name = std::string("custom-") + std::string(rpiboot::chipNumber(chip));
}

ScenarioBuilder& ScenarioBuilder::name(std::string text) {
    scenario_.name = std::move(text);
    return *this;
}

ScenarioBuilder& ScenarioBuilder::serial(std::string hex8) {
    scenario_.serial = std::move(hex8);
    return *this;
}

ScenarioBuilder& ScenarioBuilder::startInSecondStage() {
    scenario_.startStage = StartStage::SecondStage;
    return *this;
}

ScenarioBuilder& ScenarioBuilder::bootcode(std::string fileName,
                                           std::optional<std::string> sha256) {
    scenario_.rom.bootcodeName = std::move(fileName);
    scenario_.rom.bootcodeSha256 = std::move(sha256);
    return *this;
}

ScenarioBuilder& ScenarioBuilder::bootSignature(std::string hex40) {
    scenario_.rom.signature = std::move(hex40);
    return *this;
}

ScenarioBuilder& ScenarioBuilder::romReturnCodes(std::vector<std::uint32_t> codes) {
    scenario_.rom.returnCodes = std::move(codes);
    return *this;
}

ScenarioBuilder& ScenarioBuilder::romConfigQuirk(bool on) {
    scenario_.rom.configQuirk = on;
    return *this;
}

ScenarioBuilder& ScenarioBuilder::romFault(Fault fault) {
    scenario_.rom.fault = fault;
    return *this;
}

ScenarioBuilder& ScenarioBuilder::file(std::string fileName, std::optional<std::string> sha256) {
    Step s;
    s.kind = StepKind::File;
    s.name = std::move(fileName);
    s.sha256 = std::move(sha256);
    return step(std::move(s));
}

ScenarioBuilder& ScenarioBuilder::optionalFile(std::string fileName,
                                               std::optional<std::string> sha256) {
    file(std::move(fileName), std::move(sha256));
    last().optional = true;
    return *this;
}

ScenarioBuilder& ScenarioBuilder::getFileSize(std::string fileName) {
    Step s;
    s.kind = StepKind::GetFileSize;
    s.name = std::move(fileName);
    s.optional = true;
    return step(std::move(s));
}

ScenarioBuilder& ScenarioBuilder::readFile(std::string fileName) {
    Step s;
    s.kind = StepKind::ReadFile;
    s.name = std::move(fileName);
    return step(std::move(s));
}

ScenarioBuilder& ScenarioBuilder::metadata(std::string key, std::string value) {
    Step s;
    s.kind = StepKind::Metadata;
    s.name = std::move(key);
    s.value = std::move(value);
    return step(std::move(s));
}

ScenarioBuilder& ScenarioBuilder::metadataC40(std::string key, std::string decodedValue) {
    metadata(std::move(key), std::move(decodedValue));
    last().c40 = true;
    return *this;
}

ScenarioBuilder& ScenarioBuilder::metadataWithoutValue(std::string key) {
    Step s;
    s.kind = StepKind::Metadata;
    s.name = std::move(key);
    return step(std::move(s));
}

ScenarioBuilder& ScenarioBuilder::raw(std::uint32_t command, std::string nameBytes,
                                      std::uint8_t pad, RawReply reply) {
    Step s;
    s.kind = StepKind::Raw;
    s.command = command;
    s.name = std::move(nameBytes);
    s.pad = pad;
    s.reply = reply;
    return step(std::move(s));
}

ScenarioBuilder& ScenarioBuilder::pause(std::chrono::milliseconds duration) {
    Step s;
    s.kind = StepKind::Pause;
    s.delay = duration;
    return step(std::move(s));
}

ScenarioBuilder& ScenarioBuilder::endWithEmptyName() {
    Step s;
    s.kind = StepKind::EmptyName;
    return step(std::move(s));
}

ScenarioBuilder& ScenarioBuilder::endWithDone(std::string nameText) {
    Step s;
    s.kind = StepKind::Done;
    s.command = kCommandDone;
    s.name = std::move(nameText);
    return step(std::move(s));
}

ScenarioBuilder& ScenarioBuilder::endWithDisconnect() {
    Step s;
    s.kind = StepKind::Disconnect;
    return step(std::move(s));
}

ScenarioBuilder& ScenarioBuilder::step(Step s) {
    scenario_.steps.push_back(std::move(s));
    return *this;
}

Step& ScenarioBuilder::last() {
    if (scenario_.steps.empty()) {
        throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                             "scenario builder: no step to modify yet");
    }
    return scenario_.steps.back();
}

ScenarioBuilder& ScenarioBuilder::withFault(Fault fault) {
    last().fault = fault;
    return *this;
}

ScenarioBuilder& ScenarioBuilder::withMaxSize(std::uint64_t size) {
    last().maxSize = size;
    return *this;
}

ScenarioBuilder& ScenarioBuilder::repeated(unsigned times) {
    last().repeat = times;
    return *this;
}

ScenarioBuilder& ScenarioBuilder::massStorageGadgetAfterBoot(std::vector<std::string> disks) {
    scenario_.final = FinalIdentity{};
    scenario_.final.kind = FinalKind::MassStorageGadget;
    scenario_.final.disks = std::move(disks);
    return *this;
}

ScenarioBuilder& ScenarioBuilder::returnToRomAfterBoot(unsigned returns) {
    scenario_.final = FinalIdentity{};
    scenario_.final.kind = FinalKind::Rom;
    scenario_.final.returns = returns;
    return *this;
}

ScenarioBuilder& ScenarioBuilder::timing(Timing t) {
    scenario_.timing = t;
    return *this;
}

ScenarioBuilder& ScenarioBuilder::bulkBytesPerSecond(std::uint64_t rate) {
    scenario_.bulkBytesPerSecond = rate;
    return *this;
}

ScenarioBuilder& ScenarioBuilder::maxFileSize(std::uint64_t size) {
    scenario_.maxFileSize = size;
    return *this;
}

}  // namespace virtualpi
