// Board workers: one thread per stage session, running the synchronous engine.
//
// A worker opens one enumeration of a board, runs runBootStage on it (upload
// the bootcode, or serve files) and reports back only by posting events to
// the main loop: progress (at most every 100 ms, plus file boundaries; the
// daemon's only progress rate limit), metadata, and the outcome. It never touches board records,
// D-Bus or other workers, so one stuck or vanished board never delays another. Workers stop at the
// next transfer when asked (shutdown); every transfer has a timeout.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "active_config.hpp"
#include "device_source.hpp"
#include "journal.hpp"
#include "rpiboot/boot/boot.hpp"
#include "rpiboot/core/error.hpp"

namespace rpibootd {

class EventLoop;

struct StageRequest {
    std::uint64_t session = 0;
    DeviceInfo device;
    rpiboot::BootStage stage = rpiboot::BootStage::Rom;  // as announced
    rpiboot::BoardContext board;
    std::shared_ptr<const ProfileRuntime> profile;
    LogFields fields;
};

struct StageProgress {
    std::string currentFile;
    std::uint64_t sent = 0;
    std::uint64_t total = 0;
    enum class Kind { Started, Progress, Finished } kind = Kind::Progress;
};

struct StageResult {
    rpiboot::BootStage stage = rpiboot::BootStage::Rom;
    bool ok = false;
    rpiboot::Errc errc = rpiboot::Errc::Io;
    std::string error;                              // when !ok
    std::optional<rpiboot::SessionEnd> sessionEnd;  // second stage, when ok
    std::uint32_t filesServed = 0;
    std::uint64_t bytesSent = 0;
    std::string metadataFile;  // written, or "" (none, or failed: see warning in the log)
};

// The main-loop side a worker reports to.
class StageEvents {
  public:
    virtual ~StageEvents() = default;
    virtual void stageProgress(std::uint64_t session, const StageProgress& progress) = 0;
    virtual void stageMetadata(std::uint64_t session, const std::string& key,
                               const std::string& value) = 0;
    virtual void stageFinished(std::uint64_t session, const StageResult& result) = 0;
};

class StageLauncher {
  public:
    virtual ~StageLauncher() = default;
    // Starts a session; its progress and outcome arrive later through `events`.
    virtual void launch(StageRequest request, StageEvents& events) = 0;
    // The session's outcome was handled: release what is left of it.
    virtual void reap(std::uint64_t session) = 0;
    // Asks every session to stop and waits for them (shutdown).
    virtual void stopAll() = 0;
    virtual std::size_t running() const = 0;
};

// Real sessions: one std::jthread each, events posted through the loop.
class ThreadStageLauncher final : public StageLauncher {
  public:
    ThreadStageLauncher(EventLoop& loop, Logger& log);
    ~ThreadStageLauncher() override;

    void launch(StageRequest request, StageEvents& events) override;
    void reap(std::uint64_t session) override;
    void stopAll() override;
    std::size_t running() const override;

  private:
    EventLoop& loop_;
    Logger& log_;
    mutable std::mutex mutex_;
    std::map<std::uint64_t, std::jthread> workers_;
};

// The body of one session, on the calling thread (exposed for tests).
// `post` hands an event to the main loop.
StageResult runStageSession(const StageRequest& request, std::stop_token stop,
                            const std::function<void(std::function<void(StageEvents&)>)>& post,
                            Logger& log);

}  // namespace rpibootd
