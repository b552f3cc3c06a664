#include "stage_worker.hpp"

#include <chrono>
#include <exception>
#include <filesystem>

#include "event_loop.hpp"
#include "rpiboot/core/metadata.hpp"

namespace rpibootd {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Progress goes out at most this often, plus the end of every file. This is
// the one place progress is rate-limited: limiting it at its source keeps a
// fast transfer from flooding the loop, and what reaches the loop is what
// D-Bus clients see. The start of a file is posted only when nothing was
// posted for that long: a board that asks for many small files one after
// the other (a request answered every millisecond) costs the loop one wake-up
// per file, not two, while the worker answers the next request.
constexpr auto kProgressInterval = std::chrono::milliseconds(100);

// Stops a session at its next transfer once shutdown is requested. The
// transfer in progress still ends by itself (each has a timeout).
class StoppableTransport final : public rpiboot::Transport {
  public:
    StoppableTransport(rpiboot::Transport& inner, std::stop_token stop)
        : inner_(inner), stop_(std::move(stop)) {}

    void controlOutLength(std::uint32_t length, rpiboot::Milliseconds timeout) override {
        check();
        inner_.controlOutLength(length, timeout);
    }
    std::size_t controlIn(std::span<std::uint8_t> buffer, rpiboot::Milliseconds timeout) override {
        check();
        return inner_.controlIn(buffer, timeout);
    }
    void bulkOut(std::span<const std::uint8_t> chunk, rpiboot::Milliseconds timeout) override {
        check();
        inner_.bulkOut(chunk, timeout);
    }
    std::size_t bulkOutSlots() const noexcept override { return inner_.bulkOutSlots(); }
    void submitBulkOut(std::span<const std::uint8_t> chunk) override {
        check();
        inner_.submitBulkOut(chunk);
    }
    void reapBulkOut(rpiboot::Milliseconds timeout) override {
        check();  // the Link cancels what is still queued
        inner_.reapBulkOut(timeout);
    }
    void cancelBulkOut() noexcept override { inner_.cancelBulkOut(); }

  private:
    void check() const {
        if (stop_.stop_requested()) {
            // Not DeviceGone: the file server would take that for a normal end.
            throw rpiboot::Error(rpiboot::Errc::Timeout,
                                 "rpibootd is stopping; the session was abandoned");
        }
    }

    rpiboot::Transport& inner_;
    std::stop_token stop_;
};

using PostFn = std::function<void(std::function<void(StageEvents&)>)>;

class WorkerObserver final : public rpiboot::BootObserver {
  public:
    WorkerObserver(const StageRequest& request, const PostFn& post, Logger& log)
        : request_(request), post_(post), log_(log) {}

    void onTransferStarted(std::string_view name, std::uint64_t size) override {
        current_ = displayName(name);
        const auto now = SteadyClock::now();
        if (now - lastPost_ < kProgressInterval) {
            return;  // the file's progress or its end says it started
        }
        lastPost_ = now;
        postProgress(StageProgress{current_, 0, size, StageProgress::Kind::Started});
    }

    void onTransferProgress(std::uint64_t sent, std::uint64_t total) override {
        const auto now = SteadyClock::now();
        if (sent < total && now - lastPost_ < kProgressInterval) {
            return;
        }
        lastPost_ = now;
        postProgress(StageProgress{current_, sent, total, StageProgress::Kind::Progress});
    }

    void onTransferFinished(std::string_view name, std::uint64_t size) override {
        const std::string shown = displayName(name);
        lastPost_ = SteadyClock::now();
        postProgress(StageProgress{shown, size, size, StageProgress::Kind::Finished});
        // Where it came from: a path, "bootfiles.bin:2711/bootmain", "embedded:start4.elf".
        log_.info("sent " + shown + " (" + std::to_string(size) + " bytes" +
                      (origin_.empty() ? std::string() : " from " + origin_) + ")",
                  request_.fields);
        origin_.clear();
    }

    void onFileLookup(std::string_view name, bool found, std::uint64_t size,
                      std::string_view originOrRefusal) override {
        if (found) {
            origin_ = std::string(originOrRefusal);
        }
        if (!log_.enabled(LogLevel::Debug)) {
            return;
        }
        std::string line = "asked for " + std::string(name) + ": ";
        if (found) {
            line += std::to_string(size) + " bytes from " + std::string(originOrRefusal);
        } else {
            line +=
                originOrRefusal.empty() ? "not found" : "refused, " + std::string(originOrRefusal);
        }
        log_.debug(line, request_.fields);
    }

    void onMetadata(std::string_view key, std::string_view value) override {
        metadata_[std::string(key)] = std::string(value);
        log_.info("metadata " + std::string(key) + "=" + std::string(value), request_.fields);
        post_([session = request_.session, k = std::string(key), v = std::string(value)](
                  StageEvents& events) { events.stageMetadata(session, k, v); });
    }

    void onLog(LogLevel level, std::string_view message) override {
        log_.log(level, message, request_.fields);
    }

    const std::map<std::string, std::string>& metadata() const { return metadata_; }

  private:
    std::string displayName(std::string_view name) const {
        if (request_.stage == rpiboot::BootStage::Rom && name == "bootcode") {
            return std::string(rpiboot::bootcodeFileName(request_.board.chip));
        }
        return std::string(name);
    }

    void postProgress(StageProgress progress) {
        post_([session = request_.session, p = std::move(progress)](StageEvents& events) {
            events.stageProgress(session, p);
        });
    }

    const StageRequest& request_;
    const PostFn& post_;
    Logger& log_;
    std::string current_;
    std::string origin_;  // of the file found last, for the "sent" line
    SteadyClock::time_point lastPost_{};
    std::map<std::string, std::string> metadata_;
};

void writeMetadata(const StageRequest& request, const std::map<std::string, std::string>& entries,
                   StageResult& result, Logger& log) {
    const auto& dir = request.profile->profile.metadataDir;
    if (dir.empty() || entries.empty()) {
        return;
    }
    const std::string& stem =
        request.board.serial.empty() ? request.board.portPath : request.board.serial;
    try {
        std::filesystem::create_directories(dir);
        result.metadataFile = rpiboot::writeMetadataFile(dir, stem, entries).string();
        log.info("wrote metadata to " + result.metadataFile, request.fields);
    } catch (const std::exception& e) {
        log.warning(std::string("cannot write metadata: ") + e.what(), request.fields);
    }
}

}  // namespace

StageResult runStageSession(const StageRequest& request, std::stop_token stop, const PostFn& post,
                            Logger& log) {
    StageResult result;
    result.stage = request.stage;
    WorkerObserver observer(request, post, log);
    try {
        if (!request.profile->firmware) {
            throw rpiboot::Error(rpiboot::Errc::NotFound, request.profile->firmwareError);
        }
        OpenedDevice opened = request.device.source->open(request.device);
        result.stage = opened.identity.stage;
        StoppableTransport transport(*opened.transport, std::move(stop));
        const rpiboot::StageOutcome outcome =
            rpiboot::runBootStage(transport, opened.identity, *request.profile->firmware,
                                  request.board, request.profile->profile.bootOptions(), &observer);
        result.ok = true;
        if (outcome.files) {
            result.sessionEnd = outcome.files->end;
            result.filesServed = outcome.files->filesServed;
            result.bytesSent = outcome.files->bytesSent;
        } else {
            result.bytesSent = outcome.bootcodeSize;
        }
    } catch (const rpiboot::Error& e) {
        result.errc = e.code();
        result.error = e.what();
    } catch (const std::exception& e) {
        result.error = std::string("unexpected failure: ") + e.what();
    }
    if (result.stage == rpiboot::BootStage::SecondStage) {
        // Also after a failure: what the board told us before is worth keeping.
        writeMetadata(request, observer.metadata(), result, log);
    }
    return result;
}

ThreadStageLauncher::ThreadStageLauncher(EventLoop& loop, Logger& log) : loop_(loop), log_(log) {}

ThreadStageLauncher::~ThreadStageLauncher() {
    stopAll();
}

void ThreadStageLauncher::launch(StageRequest request, StageEvents& target) {
    const std::uint64_t session = request.session;
    std::jthread worker([this, &target, request = std::move(request)](std::stop_token stop) {
        // Progress and metadata may wait for the loop a little (postDeferred:
        // a board asking for many small files in a row wakes the loop a few
        // times per 100 ms, not once per file, while its requests are being
        // answered); the outcome wakes it at once and brings them along, in order.
        const PostFn post = [this, &target](std::function<void(StageEvents&)> event) {
            loop_.postDeferred([&target, event = std::move(event)] { event(target); });
        };
        StageResult result = runStageSession(request, std::move(stop), post, log_);
        loop_.post([&target, session = request.session, result = std::move(result)] {
            target.stageFinished(session, result);
        });
    });
    std::lock_guard lock(mutex_);
    workers_.emplace(session, std::move(worker));
}

void ThreadStageLauncher::reap(std::uint64_t session) {
    std::jthread finished;
    {
        std::lock_guard lock(mutex_);
        auto it = workers_.find(session);
        if (it == workers_.end()) {
            return;
        }
        finished = std::move(it->second);
        workers_.erase(it);
    }
    // Its last act was posting the outcome we are handling: joins at once.
    if (finished.joinable()) {
        finished.join();
    }
}

void ThreadStageLauncher::stopAll() {
    std::map<std::uint64_t, std::jthread> all;
    {
        std::lock_guard lock(mutex_);
        all.swap(workers_);
    }
    for (auto& [session, worker] : all) {
        worker.request_stop();
    }
    for (auto& [session, worker] : all) {
        if (worker.joinable()) {
            worker.join();
        }
    }
}

std::size_t ThreadStageLauncher::running() const {
    std::lock_guard lock(mutex_);
    return workers_.size();
}

}  // namespace rpibootd
