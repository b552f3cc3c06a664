// One JSON record per boot in the metadata directory: what the board reported
// and what was written to it. Written atomically (a temporary file in the same
// directory, fsync, rename, fsync of the directory), so a reader never sees
// half a record.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "rpiboot/storage/writer.hpp"

namespace rpiboot::storage {

struct BootRecord {
    std::string board;            // the board's serial, or its port when it has none
    std::string port;             // USB port path, "1-1.3"
    std::string profile;          // the profile that booted it
    std::int64_t startedAt = 0;   // Unix seconds
    std::int64_t finishedAt = 0;  // Unix seconds
    std::string outcome;          // the final stage: "done", "failed", ...
    std::string error;            // why, when failed
    std::map<std::string, std::string> metadata;  // what the board reported (serial, MAC, EEPROM_*)
    std::optional<WriteResult> write;             // the image written, when the profile has one
};

nlohmann::json toJson(const WriteResult& result);
nlohmann::json toJson(const BootRecord& record);

// Writes `record` as <dir>/<startedAt>-<board>.json (board name made safe for
// a file name); returns the path. Throws rpiboot::Error (Io) naming the call.
std::filesystem::path writeBootRecord(const std::filesystem::path& dir, const BootRecord& record);

// The atomic write itself: `contents` to `path` through a temporary file.
void writeFileAtomically(const std::filesystem::path& path, const std::string& contents);

}  // namespace rpiboot::storage
