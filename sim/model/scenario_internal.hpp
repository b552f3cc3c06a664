// Shared internals of the scenario code. Not part of the public API.
#pragma once

#include <string>
#include <string_view>

#include "virtualpi/scenario.hpp"

namespace virtualpi::detail {

// Throws rpiboot::Error(InvalidArgument) saying what is wrong with `scenario`.
void validateScenario(const Scenario& scenario);
std::string_view bootcodeNameOf(rpiboot::Chip chip) noexcept;
std::optional<rpiboot::Chip> parseChipText(std::string_view text) noexcept;

}  // namespace virtualpi::detail
