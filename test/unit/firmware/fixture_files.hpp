// Test helpers: the fixture directory, whole-file reads, and what a lookup found.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpiboot/core/file_source.hpp"

namespace rpiboot::test {

inline std::vector<std::uint8_t> readWhole(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + path.string());
    }
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in),
                                     std::istreambuf_iterator<char>());
}

inline std::filesystem::path fixturesDir() {
    return RPIBOOT_FIXTURES_DIR;
}

inline std::string notFound(const Lookup& lookup) {
    return "<not found: " + lookup.refusal + ">";
}

// The served file's bytes as text, or why nothing was served.
inline std::string text(const Lookup& lookup) {
    return lookup.found() ? std::string(lookup.file->bytes.begin(), lookup.file->bytes.end())
                          : notFound(lookup);
}

// Where the served file came from, or why nothing was served.
inline std::string originOf(const Lookup& lookup) {
    return lookup.found() ? lookup.file->origin : notFound(lookup);
}

}  // namespace rpiboot::test
