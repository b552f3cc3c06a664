#include "storage_launcher.hpp"

#include <exception>

#include "event_loop.hpp"

namespace rpibootd {

ThreadStorageLauncher::ThreadStorageLauncher(EventLoop& loop, StorageJobFunction run)
    : loop_(loop), run_(std::move(run)) {}

ThreadStorageLauncher::~ThreadStorageLauncher() {
    stopAll();
}

void ThreadStorageLauncher::launch(std::uint64_t job, StorageJobInput input,
                                   StorageEvents& target) {
    std::jthread worker([this, job, &target, input = std::move(input)](std::stop_token stop) {
        StorageJobCallbacks callbacks;
        callbacks.stage = [this, job, &target](std::string_view stage) {
            loop_.post(
                [job, &target, stage = std::string(stage)] { target.storageStage(job, stage); });
        };
        callbacks.progress = [this, job, &target](std::uint64_t written, std::uint64_t toWrite) {
            loop_.post([job, &target, written, toWrite] {
                target.storageProgress(job, written, toWrite);
            });
        };
        StorageJobResult result;
        try {
            result = run_(input, callbacks, std::move(stop));
        } catch (const std::exception& e) {
            result.ok = false;
            result.error = e.what();
        }
        loop_.post(
            [job, &target, result = std::move(result)] { target.storageFinished(job, result); });
    });
    std::lock_guard lock(mutex_);
    workers_.emplace(job, std::move(worker));
}

void ThreadStorageLauncher::cancel(std::uint64_t job) {
    std::lock_guard lock(mutex_);
    if (const auto it = workers_.find(job); it != workers_.end()) {
        it->second.request_stop();
    }
}

void ThreadStorageLauncher::reap(std::uint64_t job) {
    std::jthread finished;
    {
        std::lock_guard lock(mutex_);
        const auto it = workers_.find(job);
        if (it == workers_.end()) {
            return;
        }
        finished = std::move(it->second);
        workers_.erase(it);
    }
    // Its last act was posting the result being handled: joins at once.
    if (finished.joinable()) {
        finished.join();
    }
}

void ThreadStorageLauncher::stopAll() {
    std::map<std::uint64_t, std::jthread> all;
    {
        std::lock_guard lock(mutex_);
        all.swap(workers_);
    }
    for (auto& [job, worker] : all) {
        worker.request_stop();
    }
    for (auto& [job, worker] : all) {
        if (worker.joinable()) {
            worker.join();
        }
    }
}

std::size_t ThreadStorageLauncher::running() const {
    std::lock_guard lock(mutex_);
    return workers_.size();
}

}  // namespace rpibootd
