// Second-stage file server (docs/protocol.md §5).
//
// Answers a board's GetFileSize / ReadFile / Done requests from a FileSource
// and collects its metadata messages, until the board says it is done or
// leaves the bus. One FileServer serves one board session; it holds no global
// state, so any number can run at once.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rpiboot/core/file_source.hpp"
#include "rpiboot/core/link.hpp"
#include "rpiboot/core/observer.hpp"

namespace rpiboot {

inline constexpr std::size_t kFileRequestSize = 260;
inline constexpr std::size_t kFileNameFieldSize = 256;

enum class FileCommand : std::int32_t { GetFileSize = 0, ReadFile = 1, Done = 2 };

struct FileRequest {
    std::int32_t command = 0;
    std::string name;        // up to the first NUL
    bool terminated = true;  // false when the 256-byte field held no NUL
};

// Decodes the 260-byte request message. Never reads past the buffer.
FileRequest parseFileRequest(std::span<const std::uint8_t, kFileRequestSize> message);

enum class SessionEnd {
    EmptyName,    // the board sent an empty name (acked)
    DoneCommand,  // command 2 (no reply)
    DeviceGone,   // the board left the bus: it rebooted into what it was served
};

struct FileServerResult {
    SessionEnd end = SessionEnd::EmptyName;
    std::uint32_t filesServed = 0;
    std::uint64_t bytesSent = 0;
    std::uint32_t requests = 0;
    std::map<std::string, std::string> metadata;  // as received, FACTORY_UUID decoded
    std::vector<std::string> metadataErrors;      // messages that could not be decoded
};

struct FileServerOptions {
    // Upper bound on requests in one session: a board that loops forever is
    // cut off with Errc::Protocol rather than served indefinitely.
    std::uint32_t maxRequests = 100000;
    // Consecutive request reads that may time out (each waits
    // TransferTimeouts::controlIn) before the board counts as hung: recovery
    // firmware is silent for seconds while it writes the EEPROM.
    std::uint32_t idleTimeoutsAllowed = 2;
};

class FileServer {
  public:
    FileServer(Link& link, FileSource& source, BootObserver* observer = nullptr,
               FileServerOptions options = {});

    // Serves until the session ends. Throws rpiboot::Error for an unknown
    // command or a failed transfer; a board leaving the bus ends the session
    // normally with SessionEnd::DeviceGone.
    FileServerResult run();

  private:
    Link& link_;
    FileSource& source_;
    BootObserver* observer_;
    FileServerOptions options_;
};

}  // namespace rpiboot
