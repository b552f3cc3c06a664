// Fluent C++ construction of a Scenario, for tests and benchmarks that do not
// want JSON. Builds data only; never starts a board.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "virtualpi/scenario.hpp"

namespace virtualpi {

class ScenarioBuilder {
  public:
    // Starts a scenario for `chip` with the chip's bootcode name and no steps.
    explicit ScenarioBuilder(rpiboot::Chip chip);

    ScenarioBuilder& name(std::string text);
    ScenarioBuilder& serial(std::string hex8);
    ScenarioBuilder& startInSecondStage();
    ScenarioBuilder& bootcode(std::string fileName, std::optional<std::string> sha256 = {});
    ScenarioBuilder& bootSignature(std::string hex40);
    ScenarioBuilder& romReturnCodes(std::vector<std::uint32_t> codes);
    ScenarioBuilder& romConfigQuirk(bool on = true);
    ScenarioBuilder& romFault(Fault fault);

    ScenarioBuilder& file(std::string fileName, std::optional<std::string> sha256 = {});
    ScenarioBuilder& optionalFile(std::string fileName, std::optional<std::string> sha256 = {});
    ScenarioBuilder& getFileSize(std::string fileName);
    ScenarioBuilder& readFile(std::string fileName);
    ScenarioBuilder& metadata(std::string key, std::string value);
    ScenarioBuilder& metadataC40(std::string key, std::string decodedValue);
    ScenarioBuilder& metadataWithoutValue(std::string key);
    ScenarioBuilder& raw(std::uint32_t command, std::string nameBytes, std::uint8_t pad = 0,
                         RawReply reply = RawReply::Auto);
    ScenarioBuilder& pause(std::chrono::milliseconds duration);
    ScenarioBuilder& endWithEmptyName();
    ScenarioBuilder& endWithDone(std::string nameText = "done");
    ScenarioBuilder& endWithDisconnect();
    ScenarioBuilder& step(Step step);

    // Modify the step added last.
    ScenarioBuilder& withFault(Fault fault);
    ScenarioBuilder& withMaxSize(std::uint64_t size);
    ScenarioBuilder& repeated(unsigned times);

    ScenarioBuilder& massStorageGadgetAfterBoot(std::vector<std::string> disks = {"mmcblk0"});
    // Final kind Rom: back in the ROM after a successful run, at most `returns` times.
    ScenarioBuilder& returnToRomAfterBoot(unsigned returns = 1);
    ScenarioBuilder& timing(Timing timing);
    ScenarioBuilder& bulkBytesPerSecond(std::uint64_t rate);
    ScenarioBuilder& maxFileSize(std::uint64_t size);

    const Scenario& peek() const noexcept { return scenario_; }
    Scenario build() const { return scenario_; }

  private:
    Step& last();
    Scenario scenario_;
};

}  // namespace virtualpi
