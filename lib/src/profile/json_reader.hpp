// Strict reading of small JSON configuration objects.
//
// Walks a parsed document with the file label and JSON pointer in hand, so
// every complaint says where it is: "<file>: <pointer>: <reason>". Keys
// outside the object's known set are reported first, as unknown (typo
// protection), before anything is said about missing keys. Never accepts a
// value of the wrong type silently.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace rpiboot::profile_detail {

// Parses `text` as one JSON document; syntax errors name the file and position.
nlohmann::json parseDocument(std::string_view text, std::string_view label);

[[noreturn]] void fail(std::string_view label, std::string_view pointer, std::string_view reason);

std::string appendPointer(std::string_view pointer, std::string_view key);

// `path` made absolute against `base` when relative, normalised, without a
// trailing separator ("/fw/." -> "/fw").
std::filesystem::path resolveAgainst(const std::filesystem::path& base,
                                     const std::filesystem::path& path);

class ObjectReader {
  public:
    // Fails unless `value` is an object whose keys are all in `known`.
    ObjectReader(const nlohmann::json& value, std::string label, std::string pointer,
                 std::initializer_list<std::string_view> known);

    bool has(std::string_view key) const;
    std::string pointerOf(std::string_view key) const { return appendPointer(pointer_, key); }
    const std::string& label() const { return label_; }

    std::optional<std::string> string(std::string_view key, bool allowEmpty = false);
    std::optional<bool> boolean(std::string_view key);
    std::optional<std::chrono::milliseconds> milliseconds(std::string_view key,
                                                          std::int64_t minimum,
                                                          std::int64_t maximum);
    std::optional<std::vector<std::string>> stringArray(std::string_view key);
    std::optional<std::int64_t> integer(std::string_view key, std::int64_t minimum,
                                        std::int64_t maximum);
    // The raw member; nullptr when absent.
    const nlohmann::json* member(std::string_view key) const;

  private:
    const nlohmann::json& value_;
    std::string label_;
    std::string pointer_;
};

}  // namespace rpiboot::profile_detail
