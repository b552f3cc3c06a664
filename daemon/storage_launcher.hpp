// Storage workers: one thread per board's storage step, running runStorageJob.
//
// Like the stage workers, a storage worker reports back only by posting to
// the main loop (the stage it entered, progress already rate-limited by the
// job, the result), and never touches board records or D-Bus. The registry
// cancels a job when the board's device leaves; the job stops at its next
// buffer.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

#include "storage_job.hpp"

namespace rpibootd {

class EventLoop;

// The main-loop side a storage worker reports to.
class StorageEvents {
  public:
    virtual ~StorageEvents() = default;
    virtual void storageStage(std::uint64_t job, const std::string& stage) = 0;
    virtual void storageProgress(std::uint64_t job, std::uint64_t written,
                                 std::uint64_t toWrite) = 0;
    virtual void storageFinished(std::uint64_t job, const StorageJobResult& result) = 0;
};

class StorageLauncher {
  public:
    virtual ~StorageLauncher() = default;
    // Starts the job; its events arrive later through `events`.
    virtual void launch(std::uint64_t job, StorageJobInput input, StorageEvents& events) = 0;
    // Asks the job to stop (its result still arrives).
    virtual void cancel(std::uint64_t job) = 0;
    // The job's result was handled: release what is left of it.
    virtual void reap(std::uint64_t job) = 0;
    // Asks every job to stop and waits for them (shutdown).
    virtual void stopAll() = 0;
    virtual std::size_t running() const = 0;
};

using StorageJobFunction = std::function<StorageJobResult(
    const StorageJobInput&, const StorageJobCallbacks&, std::stop_token)>;

// Real jobs: one std::jthread each, events posted through the loop.
class ThreadStorageLauncher final : public StorageLauncher {
  public:
    // `run` is runStorageJob unless a test says otherwise.
    explicit ThreadStorageLauncher(EventLoop& loop, StorageJobFunction run = runStorageJob);
    ~ThreadStorageLauncher() override;

    void launch(std::uint64_t job, StorageJobInput input, StorageEvents& events) override;
    void cancel(std::uint64_t job) override;
    void reap(std::uint64_t job) override;
    void stopAll() override;
    std::size_t running() const override;

  private:
    EventLoop& loop_;
    StorageJobFunction run_;
    mutable std::mutex mutex_;
    std::map<std::uint64_t, std::jthread> workers_;
};

}  // namespace rpibootd
