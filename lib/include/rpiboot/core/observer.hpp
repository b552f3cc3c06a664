// How the engine reports what it is doing, without knowing who listens.
//
// The CLI prints these; the daemon turns them into board state, D-Bus
// properties and journal entries. Callbacks run on the thread that drives the
// Transport and must be quick; they must not call back into the engine.
#pragma once

#include <cstdint>
#include <string_view>

namespace rpiboot {

enum class LogLevel { Error, Warning, Info, Debug };

class BootObserver {
  public:
    virtual ~BootObserver() = default;

    // A file (or the bootcode) starts going out: `size` bytes in total.
    virtual void onTransferStarted(std::string_view /*name*/, std::uint64_t /*size*/) {}
    // Cumulative bytes of the current transfer, after every bulk chunk.
    virtual void onTransferProgress(std::uint64_t /*sent*/, std::uint64_t /*total*/) {}
    virtual void onTransferFinished(std::string_view /*name*/, std::uint64_t /*size*/) {}
    // GetFileSize answered: found (with its origin) or not (refusal says why, if refused).
    virtual void onFileLookup(std::string_view /*name*/, bool /*found*/, std::uint64_t /*size*/,
                              std::string_view /*originOrRefusal*/) {}
    virtual void onMetadata(std::string_view /*key*/, std::string_view /*value*/) {}
    virtual void onLog(LogLevel /*level*/, std::string_view /*message*/) {}
};

}  // namespace rpiboot
