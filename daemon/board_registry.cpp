#include "board_registry.hpp"

#include <fnmatch.h>

#include <algorithm>

#include "rpiboot/storage/writer.hpp"

namespace rpibootd {

namespace {

using rpiboot::BootStage;

bool chipHasRomSerial(rpiboot::Chip chip) {
    return chip == rpiboot::Chip::Bcm2711 || chip == rpiboot::Chip::Bcm2712;
}

std::string sessionEndText(rpiboot::SessionEnd end) {
    switch (end) {
        case rpiboot::SessionEnd::EmptyName:
            return "the board said it was done";
        case rpiboot::SessionEnd::DoneCommand:
            return "the board sent Done";
        case rpiboot::SessionEnd::DeviceGone:
            return "the board left the bus to boot what it was served";
    }
    return "session ended";
}

std::string secondsText(std::chrono::milliseconds ms) {
    const auto count = ms.count();
    return count % 1000 == 0 ? std::to_string(count / 1000) + " s" : std::to_string(count) + " ms";
}

bool validGlob(const std::string& glob) {
    if (glob.empty() || glob.size() > 256) {
        return false;
    }
    return std::none_of(glob.begin(), glob.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ' ';
    });
}

}  // namespace

BoardRegistry::BoardRegistry(Environment environment, std::shared_ptr<const ActiveConfig> config)
    : env_(std::move(environment)), config_(std::move(config)) {}

BoardRegistry::~BoardRegistry() = default;

void BoardRegistry::setConfiguration(std::shared_ptr<const ActiveConfig> config) {
    config_ = std::move(config);
}

RegistryCounts BoardRegistry::counts() const {
    RegistryCounts c;
    c.boards = entries_.size();
    for (const auto& [port, entry] : entries_) {
        const BoardPhase phase = entry->board.phase();
        c.inFlight += entry->board.inFlight() || entry->board.afterBootStep() ||
                              phase == BoardPhase::AwaitingSecondStage || entry->retrying
                          ? 1
                          : 0;
        c.done += phase == BoardPhase::Done ? 1 : 0;
        c.failed += phase == BoardPhase::Failed ? 1 : 0;
    }
    return c;
}

const Board* BoardRegistry::board(const std::string& port) const {
    const auto it = entries_.find(port);
    return it == entries_.end() ? nullptr : &it->second->board;
}

LogFields BoardRegistry::fieldsOf(const Entry& entry) const {
    const BoardStatus& s = entry.board.status();
    return LogFields{s.port, s.chip, s.serial, s.stage, s.profile, {}};
}

void BoardRegistry::countsChanged() {
    if (countsListener_) {
        countsListener_(counts());
    }
    if (bootListener_ != nullptr) {
        bootListener_->boardsChanged();
    }
}

void BoardRegistry::update(Entry& entry, const std::function<void(Board&)>& change) {
    const BoardStatus before = entry.board.status();
    change(entry.board);
    const BoardStatus& after = entry.board.status();
    if (!entry.published) {
        entry.published = true;
        if (sink_ != nullptr) {
            sink_->boardAdded(after);
        }
        countsChanged();
        return;
    }
    const std::uint32_t changed = changedFields(before, after);
    if (changed != 0 && sink_ != nullptr) {
        sink_->boardChanged(after, changed);
    }
    if ((changed & kFieldStage) != 0) {
        countsChanged();
    }
}

BoardRegistry::Entry& BoardRegistry::entryFor(const std::string& port) {
    auto& slot = entries_[port];
    if (!slot) {
        slot = std::make_unique<Entry>(port);
    }
    return *slot;
}

BoardRegistry::Entry* BoardRegistry::entryBySession(std::uint64_t session) {
    for (auto& [port, entry] : entries_) {
        if (entry->session == session) {
            return entry.get();
        }
    }
    return nullptr;
}

BoardRegistry::Entry* BoardRegistry::entryByJob(std::uint64_t job) {
    if (job == 0) {
        return nullptr;
    }
    for (auto& [port, entry] : entries_) {
        if (entry->storageJob == job) {
            return entry.get();
        }
    }
    return nullptr;
}

BoardRegistry::Entry* BoardRegistry::awaitingWithSerial(const std::string& serial,
                                                        const std::string& exceptPort) {
    for (auto& [port, entry] : entries_) {
        if (port != exceptPort && entry->board.phase() == BoardPhase::AwaitingSecondStage &&
            entry->board.status().serial == serial) {
            return entry.get();
        }
    }
    return nullptr;
}

BoardRegistry::Entry& BoardRegistry::moveEntry(Entry& from, const std::string& toPort) {
    const std::string fromPort = from.board.status().port;
    if (entries_.count(toPort) != 0) {
        forget(toPort);
    }
    auto node = entries_.extract(fromPort);
    std::unique_ptr<Entry> moved = std::move(node.mapped());
    if (sink_ != nullptr && moved->published) {
        sink_->boardRemoved(fromPort);
    }
    moved->board.relocate(toPort);
    moved->published = false;
    for (auto& [id, port] : portOfDevice_) {
        if (port == fromPort) {
            port = toPort;
        }
    }
    Entry& entry = *(entries_[toPort] = std::move(moved));
    update(entry, [](Board&) {});  // publishes it under its new port
    return entry;
}

void BoardRegistry::forget(const std::string& port) {
    const auto it = entries_.find(port);
    if (it == entries_.end()) {
        return;
    }
    const bool published = it->second->published;
    for (auto d = portOfDevice_.begin(); d != portOfDevice_.end();) {
        d = d->second == port ? portOfDevice_.erase(d) : std::next(d);
    }
    entries_.erase(it);
    if (published && sink_ != nullptr) {
        sink_->boardRemoved(port);
    }
    countsChanged();
}

void BoardRegistry::deviceAdded(const DeviceInfo& device) {
    if (shuttingDown_) {
        return;
    }
    Entry* entry = nullptr;
    if (auto it = entries_.find(device.port); it != entries_.end()) {
        entry = it->second.get();
    }
    // A second stage that appears on another port than its ROM stage (some
    // hubs re-enumerate that way) is still the same board: its serial says so.
    const bool expectedHere =
        entry != nullptr && entry->board.phase() == BoardPhase::AwaitingSecondStage;
    if (device.identity.stage == BootStage::SecondStage && !expectedHere &&
        !device.serial.empty()) {
        if (Entry* other = awaitingWithSerial(device.serial, device.port)) {
            env_.log.info("board " + device.serial + " came back on port " + device.port +
                              " (was " + other->board.status().port + ")",
                          fieldsOf(*other));
            entry = &moveEntry(*other, device.port);
        }
    }
    const bool continuing =
        entry != nullptr && entry->board.phase() == BoardPhase::AwaitingSecondStage;
    if (entry != nullptr && entry->board.afterBootStep()) {
        // Back in boot mode before its storage step ended: a reset.
        afterBootFailed(*entry,
                        "the board went back to boot mode before its storage step ended" +
                            storageProgressText(*entry),
                        FailureClass::DeviceGone);
    }
    if (!continuing && refuseAgain(entry, device)) {
        return;
    }
    if (!continuing) {
        const rpiboot::DeviceIdentity& identity = device.identity;
        const bool romStage = identity.stage == BootStage::Rom;
        const std::string serial =
            romStage || chipHasRomSerial(identity.chip) ? device.serial : std::string();
        if (config_->configuration().ignores({identity.chip, device.port, serial})) {
            // Never opened: another program may want this board.
            env_.log.info("ignoring the board on port " + device.port + " (" +
                              std::string(rpiboot::chipName(identity.chip)) +
                              "): a rule of the configuration says ignore",
                          portFields(device.port));
            return;
        }
    }
    Entry& e = entry != nullptr ? *entry : entryFor(device.port);
    portOfDevice_[device.id] = device.port;
    if (e.session != 0) {
        // The previous enumeration's worker has not reported yet (the device
        // re-enumerated faster than its outcome reached us): start after it.
        if (e.pending) {
            portOfDevice_.erase(e.pending->id);
        }
        e.pending = device;
        env_.log.debug("holding " + device.id + " until the previous session of this port ends",
                       fieldsOf(e));
        return;
    }
    start(e, device);
}

void BoardRegistry::start(Entry& e, const DeviceInfo& device) {
    e.forgetTimer.reset();
    e.reenumerateTimer.reset();
    e.deviceId = device.id;
    e.deviceGone = false;
    e.device = device;
    e.chip = device.identity.chip;
    if (isHeld(e.board.status().port)) {
        holdEntry(e, &device);
        return;
    }
    // A retry continues the boot it belongs to; anything else but the
    // second stage of this board's own ROM stage begins a new boot.
    const bool retry = e.retrying;
    const bool newBoot =
        !retry && (device.identity.stage == BootStage::Rom ||
                   !(e.board.phase() == BoardPhase::AwaitingSecondStage && e.profile));
    e.retrying = false;
    e.retryTimer.reset();
    if (retry) {
        ++e.attempt;
    } else if (newBoot) {
        e.attempt = 1;
        e.bootStartUsec = now();
        e.deadlinePassed = false;
        e.deadlineTimer.reset();
    }
    if (newBoot) {
        e.bootedUsec = 0;
        e.bootMessage.clear();
        e.afterBootId.clear();
        e.diskIds.clear();
        e.afterBootTimer.reset();
        e.settleTimer.reset();
        e.absenceTimer.reset();
        e.once = false;
        e.onceSerial.clear();
    }
    if (device.identity.stage == BootStage::Rom) {
        beginRomStage(e, device, retry, newBoot);
    } else {
        beginSecondStage(e, device, retry, newBoot);
    }
    if (newBoot) {
        armDeadline(e);
        if (bootListener_ != nullptr) {
            bootListener_->bootStarted(e.board.status());
        }
    }
    e.session = ++nextSession_;
    StageRequest request;
    request.session = e.session;
    request.device = device;
    request.stage = device.identity.stage;
    request.board = rpiboot::BoardContext{e.chip, e.board.status().port, e.board.status().serial};
    request.profile = e.profile;
    request.fields = fieldsOf(e);
    env_.launcher.launch(std::move(request), *this);
}

void BoardRegistry::beginRomStage(Entry& e, const DeviceInfo& device, bool retry, bool newBoot) {
    const auto selection = config_->select({e.chip, e.board.status().port, device.serial});
    e.profile = selection.profile;
    update(e, [&](Board& b) {
        b.beginRomStage(std::string(rpiboot::chipName(e.chip)), device.serial,
                        e.profile->profile.name, now());
    });
    env_.log.info("boot ROM found: sending " + std::string(rpiboot::bootcodeFileName(e.chip)) +
                      " (profile " + e.profile->profile.name + ", by " + selection.reason +
                      (retry ? "; attempt " + std::to_string(e.attempt) : std::string()) + ")",
                  fieldsOf(e).withMessageId(newBoot ? kMessageBootStarted : ""));
}

void BoardRegistry::beginSecondStage(Entry& e, const DeviceInfo& device, bool retry, bool newBoot) {
    const bool continuing =
        !retry && e.board.phase() == BoardPhase::AwaitingSecondStage && e.profile;
    std::string serial = e.board.status().serial;
    std::string reason = "its ROM stage";
    if (!continuing) {
        // We did not see this board's ROM stage (e.g. the daemon started
        // in between): choose afresh. Only 2711/2712 report the SoC serial.
        serial = chipHasRomSerial(e.chip) ? device.serial : std::string();
        const auto selection = config_->select({e.chip, e.board.status().port, serial});
        e.profile = selection.profile;
        reason = selection.reason;
    }
    update(e, [&](Board& b) {
        b.beginSecondStage(std::string(rpiboot::chipName(e.chip)), serial, e.profile->profile.name,
                           continuing, now());
        if (retry) {
            b.countAttempt();
        }
    });
    env_.log.info("second stage found: serving files (profile " + e.profile->profile.name +
                      ", by " + reason +
                      (retry ? "; attempt " + std::to_string(e.attempt) : std::string()) + ")",
                  fieldsOf(e).withMessageId(newBoot ? kMessageBootStarted : ""));
}

void BoardRegistry::deviceRemoved(const std::string& id) {
    const auto it = portOfDevice_.find(id);
    if (it == portOfDevice_.end()) {
        return;
    }
    const std::string port = it->second;
    portOfDevice_.erase(it);
    const auto entryIt = entries_.find(port);
    if (entryIt == entries_.end() || shuttingDown_) {
        return;
    }
    Entry& e = *entryIt->second;
    if (e.pending && e.pending->id == id) {
        e.pending.reset();
        return;
    }
    if (e.deviceId != id) {
        return;
    }
    if (e.device && e.device->id == id) {
        e.device.reset();
    }
    if (e.session != 0) {
        // Its worker fails fast now; the outcome decides the stage.
        e.deviceGone = true;
        return;
    }
    if (e.retrying) {
        return;  // between attempts: the retry waits for it to come back
    }
    switch (e.board.phase()) {
        case BoardPhase::Held:  // still held; the record goes after a while
            armForget(e);
            return;
        case BoardPhase::AwaitingSecondStage:  // the ROM resets on its way to the second stage
        case BoardPhase::Booted:               // it becomes what it was served
        case BoardPhase::StorageReady:
        case BoardPhase::Storage:
        case BoardPhase::Disconnected:
            return;
        case BoardPhase::Done:  // it became what it was served
            portMaybeEmpty(e);
            return;
        case BoardPhase::Failed:  // keep the failure and its reason: that is the truth
            armForget(e);
            return;
        default:
            break;
    }
    update(e, [&](Board& b) { b.disconnect(now()); });
    env_.log.info("board disconnected", fieldsOf(e));
    armForget(e);
}

void BoardRegistry::stageProgress(std::uint64_t session, const StageProgress& p) {
    Entry* e = entryBySession(session);
    if (e == nullptr || shuttingDown_) {
        return;
    }
    const bool countsAsFile = e->board.phase() == BoardPhase::ServingFiles;
    update(*e, [&](Board& b) {
        switch (p.kind) {
            case StageProgress::Kind::Started:
                b.transferStarted(p.currentFile, p.total);
                break;
            case StageProgress::Kind::Progress:
                b.transferProgress(p.currentFile, p.sent, p.total);
                break;
            case StageProgress::Kind::Finished:
                b.transferFinished(p.currentFile, p.total, countsAsFile);
                break;
        }
    });
    if (p.kind == StageProgress::Kind::Finished && bootListener_ != nullptr) {
        bootListener_->bytesServed(p.total);
    }
}

void BoardRegistry::stageMetadata(std::uint64_t session, const std::string& key,
                                  const std::string& value) {
    Entry* e = entryBySession(session);
    if (e == nullptr || shuttingDown_) {
        return;
    }
    update(*e, [&](Board& b) { b.metadata(key, value); });
}

void BoardRegistry::stageFinished(std::uint64_t session, const StageResult& result) {
    Entry* found = entryBySession(session);
    env_.launcher.reap(session);
    if (found == nullptr || shuttingDown_) {
        return;
    }
    Entry& e = *found;
    e.session = 0;
    // The worker's own reading of the device decides what kind of session it was.
    if (result.ok && !result.sessionEnd) {
        romAccepted(e);
    } else if (result.ok) {
        filesServed(e, result);
    } else {
        stageFailed(e, result);
    }
    if (e.pending) {
        const DeviceInfo next = *e.pending;
        e.pending.reset();
        // A board that went back to boot mode before its outcome reached us
        // (recovery_reboot=1 resets at once): as if it came now.
        if (e.board.afterBootStep()) {
            afterBootFailed(e, "the board went back to boot mode before its storage step began",
                            FailureClass::DeviceGone);
        }
        if (e.board.phase() != BoardPhase::AwaitingSecondStage && refuseAgain(&e, next)) {
            return;
        }
        start(e, next);
        return;
    }
    if (e.deviceGone && e.board.phase() == BoardPhase::Failed) {
        armForget(e);
    }
}

void BoardRegistry::romAccepted(Entry& e) {
    update(e, [](Board& b) { b.romSucceeded(); });
    env_.log.info("bootcode accepted; waiting for the board to come back as its second stage",
                  fieldsOf(e));
    if (!e.pending) {
        armReenumerationTimeout(e);
    }
}

void BoardRegistry::filesServed(Entry& e, const StageResult& result) {
    if (*result.sessionEnd == rpiboot::SessionEnd::DeviceGone &&
        e.board.status().filesServed == 0) {
        attemptFailed(e, "the board left the bus before it was served any file",
                      FailureClass::DeviceGone);
        return;
    }
    update(e, [&](Board& b) { b.filesDone(*result.sessionEnd, now()); });
    e.bootedUsec = now();
    e.bootMessage = "booted: " + std::to_string(e.board.status().filesServed) + " file(s), " +
                    std::to_string(result.bytesSent) + " bytes served; " +
                    sessionEndText(*result.sessionEnd);
    // What it became may be on the bus already (its events can overtake the
    // worker's outcome).
    const std::string port = e.board.status().port;
    for (const auto& [id, device] : usbDevices_) {
        if (device.port == port) {
            adoptDevice(e, device);
            break;
        }
    }
    if (!e.profile->profile.storage) {
        finishBoot(e, e.bootMessage);
        return;
    }
    const auto wait = e.profile->profile.timeouts.afterBoot;
    env_.log.info(
        e.bootMessage + "; waiting up to " + secondsText(wait) + " for it to come back as a disk",
        fieldsOf(e));
    e.afterBootTimer = env_.timers.after(wait, [this, port] { afterBootTimedOut(port); });
    checkStorageReady(e);
}

void BoardRegistry::stageFailed(Entry& e, const StageResult& result) {
    // Name the file that was on its way, which the engine's error (about
    // one USB transfer) does not.
    const BoardStatus& status = e.board.status();
    const bool romStage = e.board.phase() == BoardPhase::RomInFlight;
    const bool midFile = !status.currentFile.empty() && status.bytesSent < status.bytesTotal;
    const std::string message = std::string(romStage ? "ROM stage failed" : "second stage failed") +
                                (midFile ? " while sending " + status.currentFile + " (" +
                                               std::to_string(status.bytesTotal) + " bytes)"
                                         : std::string()) +
                                ": " + result.error;
    attemptFailed(e, message, classifyFailure(result.errc));
}

void BoardRegistry::settle(Entry& e, bool success, const std::string& message,
                           FailureClass reason) {
    e.retrying = false;
    e.retryTimer.reset();
    e.deadlineTimer.reset();
    if (success) {
        env_.log.info(message, fieldsOf(e).withMessageId(kMessageBootFinished));
    } else {
        env_.log.error(message, fieldsOf(e).withMessageId(kMessageBootFailed));
    }
    if (sink_ != nullptr) {
        sink_->bootFinished(e.board.status().port, success, message);
    }
    if (bootListener_ != nullptr) {
        const std::uint64_t end = now();
        const double seconds =
            end > e.bootStartUsec ? static_cast<double>(end - e.bootStartUsec) / 1e6 : 0.0;
        bootListener_->bootFinished(e.board.status(), success, reason, seconds);
    }
}

void BoardRegistry::attemptFailed(Entry& e, const std::string& message, FailureClass reason) {
    const std::string port = e.board.status().port;
    const rpiboot::ProfileRetries& retries = e.profile->profile.retries;
    const bool again = isTransient(reason) && e.attempt <= retries.attempts && !e.deadlinePassed &&
                       !isHeld(port) && !shuttingDown_;
    if (!again) {
        std::string verdict = message;
        if (e.attempt > 1) {
            verdict += " (attempt " + std::to_string(e.attempt) + " of " +
                       std::to_string(retries.attempts + 1) + ")";
        }
        if (e.deadlinePassed && reason != FailureClass::Deadline) {
            verdict += "; the boot's deadline of " + secondsText(e.profile->profile.timeouts.boot) +
                       " has passed";
        }
        update(e, [&](Board& b) { b.fail(verdict, now()); });
        if (bootListener_ != nullptr) {
            bootListener_->attemptFailed(e.board.status(), reason);
        }
        settle(e, false, verdict, reason);
        return;
    }
    e.attemptError = message;
    const unsigned doublings = std::min(e.attempt - 1, 10U);
    const auto backoff = retries.backoff * (1LL << doublings);
    const std::string text = "attempt " + std::to_string(e.attempt) + " of " +
                             std::to_string(retries.attempts + 1) + " failed: " + message +
                             "; trying again in " + secondsText(backoff);
    e.retrying = true;
    e.reenumerateTimer.reset();
    update(e, [&](Board& b) { b.awaitRetry(text); });
    env_.log.warning(text, fieldsOf(e));
    if (bootListener_ != nullptr) {
        bootListener_->attemptFailed(e.board.status(), reason);
    }
    e.retryTimer = env_.timers.after(backoff, [this, port] { retryAttempt(port); });
}

void BoardRegistry::retryAttempt(const std::string& port) {
    const auto it = entries_.find(port);
    if (it == entries_.end() || !it->second->retrying || it->second->session != 0) {
        return;
    }
    Entry& e = *it->second;
    if (e.device && !e.pending) {
        const DeviceInfo device = *e.device;
        start(e, device);
        return;
    }
    // Off the bus: the next attempt starts when it comes back on this port.
    const auto wait = e.profile->profile.timeouts.reenumerate;
    e.retryTimer = env_.timers.after(wait, [this, port, wait] {
        const auto found = entries_.find(port);
        if (found == entries_.end() || !found->second->retrying || found->second->session != 0) {
            return;
        }
        Entry& entry = *found->second;
        entry.retrying = false;
        const std::string message =
            "the board did not come back on port " + port + " within " + secondsText(wait) +
            " for attempt " + std::to_string(entry.attempt + 1) + "; attempt " +
            std::to_string(entry.attempt) + " failed: " + entry.attemptError;
        update(entry, [&](Board& b) { b.fail(message, now()); });
        settle(entry, false, message, FailureClass::DeviceGone);
        armForget(entry);
    });
}

void BoardRegistry::armDeadline(Entry& e) {
    const auto deadline = e.profile->profile.timeouts.boot;
    if (deadline.count() == 0) {
        return;
    }
    const std::string port = e.board.status().port;
    e.deadlineTimer = env_.timers.after(deadline, [this, port, deadline] {
        const auto it = entries_.find(port);
        if (it == entries_.end()) {
            return;
        }
        Entry& entry = *it->second;
        entry.deadlinePassed = true;
        // A session in flight ends by itself (every transfer has a timeout);
        // its failure then gets no retry. Anything else ends here.
        const BoardPhase phase = entry.board.phase();
        if (entry.session != 0 || (!entry.retrying && phase != BoardPhase::AwaitingSecondStage)) {
            return;
        }
        entry.reenumerateTimer.reset();
        const std::string message = "the boot took longer than its deadline of " +
                                    secondsText(deadline) + " (" + std::to_string(entry.attempt) +
                                    " attempt(s))";
        entry.retrying = false;
        update(entry, [&](Board& b) { b.fail(message, now()); });
        settle(entry, false, message, FailureClass::Deadline);
        if (!entry.device) {
            armForget(entry);
        }
    });
}

void BoardRegistry::armReenumerationTimeout(Entry& e) {
    const auto timeout = e.profile->profile.timeouts.reenumerate;
    Entry* entry = &e;
    e.reenumerateTimer = env_.timers.after(timeout, [this, entry, timeout] {
        if (entry->board.phase() != BoardPhase::AwaitingSecondStage) {
            return;
        }
        const std::string message = "the board did not come back after bootcode within " +
                                    std::to_string(timeout.count()) + " ms";
        entry->reenumerateTimer.reset();
        attemptFailed(*entry, message, FailureClass::Timeout);
        if (entry->board.phase() == BoardPhase::Failed) {
            armForget(*entry);
        }
    });
}

void BoardRegistry::armForget(Entry& e) {
    const std::string port = e.board.status().port;
    e.forgetTimer = env_.timers.after(config_->configuration().daemon.forgetAfter,
                                      [this, port] { forget(port); });
}

bool BoardRegistry::isHeld(const std::string& port) const {
    return std::any_of(held_.begin(), held_.end(), [&port](const std::string& glob) {
        return ::fnmatch(glob.c_str(), port.c_str(), 0) == 0;
    });
}

void BoardRegistry::stopTimers(Entry& e) {
    e.afterBootTimer.reset();
    e.settleTimer.reset();
    e.reenumerateTimer.reset();
    e.retryTimer.reset();
    e.deadlineTimer.reset();
    e.forgetTimer.reset();
    e.retrying = false;
}

void BoardRegistry::holdEntry(Entry& e, const DeviceInfo* device) {
    stopTimers(e);
    std::string chip;
    std::string serial;
    if (device != nullptr) {
        const rpiboot::DeviceIdentity& identity = device->identity;
        chip = std::string(rpiboot::chipName(identity.chip));
        if (identity.stage == BootStage::Rom || chipHasRomSerial(identity.chip)) {
            serial = device->serial;
        }
    }
    const bool wasHeld = e.board.phase() == BoardPhase::Held;
    update(e, [&](Board& b) { b.hold(chip, serial); });
    if (!wasHeld) {
        env_.log.info("port is held: the board is left untouched until it is released",
                      fieldsOf(e).withMessageId(kMessageBoardHeld));
    }
}

ControlResult BoardRegistry::retry(const std::string& port) {
    const auto it = entries_.find(port);
    if (it == entries_.end() || !it->second->published) {
        return {ControlOutcome::UnknownPort, "no board on port " + port};
    }
    Entry& e = *it->second;
    if (isHeld(port)) {
        return {ControlOutcome::Held, "port " + port + " is held; release it first"};
    }
    if (e.session != 0 || e.board.phase() == BoardPhase::AwaitingSecondStage ||
        e.board.afterBootStep()) {
        return {ControlOutcome::Busy, "the board on port " + port + " is booting right now"};
    }
    stopTimers(e);
    forgetSerial(e.board.status().serial);
    clearOnce(e);
    if (e.device && !e.pending) {
        const DeviceInfo device = *e.device;
        env_.log.info("retry asked: booting the board again", fieldsOf(e));
        start(e, device);
        return {ControlOutcome::Ok, "booting the board on port " + port + " again"};
    }
    update(e, [](Board& b) { b.expectReturn(); });
    env_.log.info("retry asked: the board is booted when it comes back", fieldsOf(e));
    return {ControlOutcome::Ok, "the board on port " + port + " is booted when it comes back"};
}

ControlResult BoardRegistry::forgetBoard(const std::string& port) {
    const auto it = entries_.find(port);
    if (it == entries_.end() || !it->second->published) {
        return {ControlOutcome::UnknownPort, "no board on port " + port};
    }
    const Entry& e = *it->second;
    if (e.session != 0 || e.board.phase() == BoardPhase::AwaitingSecondStage ||
        e.board.afterBootStep()) {
        return {ControlOutcome::Busy, "the board on port " + port + " is booting right now"};
    }
    forgetSerial(e.board.status().serial);
    env_.log.info("forgotten at an operator's request", fieldsOf(e));
    forget(port);
    return {ControlOutcome::Ok, "forgot the board on port " + port};
}

ControlResult BoardRegistry::holdPort(const std::string& glob) {
    if (!validGlob(glob)) {
        return {ControlOutcome::InvalidGlob,
                ""
                " + glob + "
                " is not a port or port glob (1 to 256 printable characters)"};
    }
    if (std::find(held_.begin(), held_.end(), glob) != held_.end()) {
        return {ControlOutcome::Ok, "port " + glob + " was already held"};
    }
    held_.insert(std::upper_bound(held_.begin(), held_.end(), glob), glob);
    env_.log.info("holding port(s) " + glob, LogFields{}.withMessageId(kMessageBoardHeld));
    for (auto& [port, entry] : entries_) {
        Entry& e = *entry;
        if (!isHeld(port) || e.session != 0 || e.board.phase() == BoardPhase::Held ||
            e.board.phase() == BoardPhase::AwaitingSecondStage || e.board.afterBootStep()) {
            continue;  // one in flight finishes its session, then is held
        }
        if (e.device) {
            const DeviceInfo device = *e.device;
            holdEntry(e, &device);
        } else if (e.retrying) {
            holdEntry(e, nullptr);
        }
    }
    if (heldListener_) {
        heldListener_(held_);
    }
    if (sink_ != nullptr) {
        sink_->heldPortsChanged();
    }
    return {ControlOutcome::Ok, "holding port " + glob};
}

ControlResult BoardRegistry::releasePort(const std::string& glob) {
    const auto it = std::find(held_.begin(), held_.end(), glob);
    if (it == held_.end()) {
        std::string known;
        for (const auto& g : held_) {
            known += (known.empty() ? "" : ", ") + g;
        }
        return {ControlOutcome::NotHeld,
                "port " + glob + " is not held" +
                    (known.empty() ? std::string(" (nothing is held)") : " (held: " + known + ")")};
    }
    held_.erase(it);
    env_.log.info("released port(s) " + glob);
    std::vector<std::string> released;
    for (auto& [port, entry] : entries_) {
        if (entry->board.phase() == BoardPhase::Held && !isHeld(port)) {
            released.push_back(port);
        }
    }
    for (const auto& port : released) {
        Entry& e = *entries_.at(port);
        if (e.device && e.session == 0) {
            const DeviceInfo device = *e.device;
            start(e, device);
        } else {
            update(e, [](Board& b) { b.expectReturn(); });
            armForget(e);
        }
    }
    if (heldListener_) {
        heldListener_(held_);
    }
    if (sink_ != nullptr) {
        sink_->heldPortsChanged();
    }
    return {ControlOutcome::Ok, "released port " + glob};
}

ControlResult BoardRegistry::holdBoard(const std::string& port) {
    if (entries_.count(port) == 0) {
        return {ControlOutcome::UnknownPort, "no board on port " + port};
    }
    return holdPort(port);
}

ControlResult BoardRegistry::releaseBoard(const std::string& port) {
    if (entries_.count(port) == 0) {
        return {ControlOutcome::UnknownPort, "no board on port " + port};
    }
    if (std::find(held_.begin(), held_.end(), port) == held_.end() && isHeld(port)) {
        std::string globs;
        for (const auto& g : held_) {
            if (::fnmatch(g.c_str(), port.c_str(), 0) == 0) {
                globs += (globs.empty() ? "" : ", ") + g;
            }
        }
        return {ControlOutcome::NotHeld,
                "port " + port + " is held by " + globs + "; release that instead"};
    }
    return releasePort(port);
}

// ---------------------------------------------------------------- after the boot

void BoardRegistry::usbDeviceAdded(const UsbDeviceInfo& device) {
    if (shuttingDown_) {
        return;
    }
    usbDevices_[device.id] = device;
    const auto it = entries_.find(device.port);
    if (it == entries_.end()) {
        return;  // not on a port of a board we booted: none of our business
    }
    Entry& e = *it->second;
    e.absenceTimer.reset();
    if (e.bootedUsec == 0 || !e.afterBootId.empty()) {
        return;
    }
    const BoardPhase phase = e.board.phase();
    const auto window =
        std::chrono::duration_cast<std::chrono::microseconds>(e.profile->profile.timeouts.afterBoot)
            .count();
    const std::uint64_t t = now();
    const bool recentlyDone = phase == BoardPhase::Done && t >= e.bootedUsec &&
                              t - e.bootedUsec <= static_cast<std::uint64_t>(window);
    if (phase == BoardPhase::Booted) {
        adoptDevice(e, device);
        checkStorageReady(e);
    } else if (recentlyDone) {
        adoptDevice(e, device);
    }
}

void BoardRegistry::usbDeviceRemoved(const std::string& id) {
    const auto found = usbDevices_.find(id);
    if (found == usbDevices_.end()) {
        return;
    }
    const UsbDeviceInfo device = found->second;
    usbDevices_.erase(found);
    const auto it = entries_.find(device.port);
    if (it == entries_.end() || shuttingDown_) {
        return;
    }
    Entry& e = *it->second;
    if (e.afterBootId == id) {
        switch (e.board.phase()) {
            case BoardPhase::Booted:
                // Gone before its disks were used (a gadget may re-enumerate
                // while it starts): the next device on the port is taken.
                e.afterBootId.clear();
                e.diskIds.clear();
                e.settleTimer.reset();
                env_.log.info(
                    device.describe() + " left the bus again; waiting for what comes next",
                    fieldsOf(e));
                break;
            case BoardPhase::StorageReady:
            case BoardPhase::Storage:
                afterBootFailed(
                    e, "the board left the bus during its storage step" + storageProgressText(e),
                    FailureClass::DeviceGone);
                break;
            default:
                break;
        }
    }
    portMaybeEmpty(e);
}

void BoardRegistry::diskAdded(const DiskInfo& disk) {
    if (shuttingDown_) {
        return;
    }
    disks_[disk.id] = disk;
    const auto it = entries_.find(disk.port);
    if (it == entries_.end()) {
        return;
    }
    Entry& e = *it->second;
    if (e.afterBootId.empty() || usbDevices_.count(e.afterBootId) == 0 ||
        usbDevices_.at(e.afterBootId).port != disk.port) {
        return;
    }
    const BoardPhase phase = e.board.phase();
    if (phase != BoardPhase::Booted && phase != BoardPhase::Done) {
        return;  // the storage step has chosen already
    }
    adoptDisk(e, disk);
    checkStorageReady(e);
}

void BoardRegistry::diskRemoved(const std::string& id) {
    const auto found = disks_.find(id);
    if (found == disks_.end()) {
        return;
    }
    const DiskInfo disk = found->second;
    disks_.erase(found);
    const auto it = entries_.find(disk.port);
    if (it == entries_.end() || shuttingDown_) {
        return;
    }
    Entry& e = *it->second;
    const auto mine = std::find(e.diskIds.begin(), e.diskIds.end(), id);
    if (mine == e.diskIds.end()) {
        return;
    }
    switch (e.board.phase()) {
        case BoardPhase::Booted:
            e.diskIds.erase(mine);  // not offered to the storage step
            break;
        case BoardPhase::StorageReady:
        case BoardPhase::Storage:
            afterBootFailed(
                e,
                "disk " + disk.disk.node + " left during the storage step" + storageProgressText(e),
                FailureClass::DeviceGone);
            break;
        default:
            break;
    }
}

void BoardRegistry::adoptDevice(Entry& e, const UsbDeviceInfo& device) {
    e.afterBootId = device.id;
    const std::string text = device.describe();
    update(e, [&](Board& b) { b.becameDevice(text); });
    env_.log.info("the board came back as " + text +
                      (device.sysfsPath.empty() ? std::string() : " (" + device.sysfsPath + ")"),
                  fieldsOf(e));
    for (const auto& [id, disk] : disks_) {
        if (disk.port == device.port) {
            adoptDisk(e, disk);
        }
    }
}

void BoardRegistry::adoptDisk(Entry& e, const DiskInfo& disk) {
    if (std::find(e.diskIds.begin(), e.diskIds.end(), disk.id) != e.diskIds.end()) {
        return;
    }
    e.diskIds.push_back(disk.id);
    const BoardDisk& d = disk.disk;
    update(e, [&](Board& b) { b.addDisk(DiskEntry{d.node, d.model, d.sizeBytes}); });
    env_.log.info("disk " + d.node + " (" + (d.model.empty() ? "no model" : d.model) + ", " +
                      std::to_string(d.sizeBytes) + " bytes)" +
                      (d.byPath.empty() ? std::string() : " " + d.byPath) + " is under it",
                  fieldsOf(e));
}

void BoardRegistry::checkStorageReady(Entry& e) {
    if (e.board.phase() != BoardPhase::Booted || !e.profile->profile.storage ||
        e.afterBootId.empty() || e.diskIds.empty()) {
        return;
    }
    const std::string& wanted = e.profile->profile.storage->disk;
    if (!wanted.empty()) {
        // The profile names its disk: go as soon as that one is there.
        const bool there = std::any_of(e.diskIds.begin(), e.diskIds.end(), [&](const auto& id) {
            return disks_.count(id) != 0 && disks_.at(id).disk.model == wanted;
        });
        if (there) {
            startStorage(e);
        }
        return;
    }
    // "The only disk": let every disk of the device appear first.
    const std::string port = e.board.status().port;
    e.settleTimer = env_.timers.after(env_.diskSettle, [this, port] {
        const auto it = entries_.find(port);
        if (it != entries_.end() && it->second->board.phase() == BoardPhase::Booted) {
            it->second->settleTimer.reset();
            startStorage(*it->second);
        }
    });
}

void BoardRegistry::startStorage(Entry& e) {
    e.afterBootTimer.reset();
    e.settleTimer.reset();
    update(e, [](Board& b) { b.storageReady(); });
    if (env_.storage == nullptr) {
        afterBootFailed(e, "this rpibootd has no storage writer", FailureClass::Io);
        return;
    }
    const rpiboot::Profile& profile = e.profile->profile;
    const BoardStatus& status = e.board.status();
    const UsbDeviceInfo& device = usbDevices_.at(e.afterBootId);
    StorageJobInput input;
    input.port = status.port;
    input.serial = status.serial;
    input.profile = profile.name;
    input.storage = *profile.storage;
    input.usbDeviceSysfs = device.sysfsPath;
    for (const auto& id : e.diskIds) {
        if (const auto d = disks_.find(id); d != disks_.end()) {
            input.disks.push_back(d->second.disk);
        }
    }
    input.metadata = status.metadata;
    input.recordDir = profile.metadataDir;
    input.startedAt = static_cast<std::int64_t>(e.bootStartUsec / 1000000);
    input.virtualTarget = device.simulated;
    e.storageJob = ++nextSession_;
    env_.log.info("storage step: writing " + profile.storage->image.filename().string() + " to " +
                      (profile.storage->disk.empty() ? std::string("its only disk")
                                                     : "disk " + profile.storage->disk),
                  fieldsOf(e));
    env_.storage->launch(e.storageJob, std::move(input), *this);
}

void BoardRegistry::afterBootTimedOut(const std::string& port) {
    const auto it = entries_.find(port);
    if (it == entries_.end() || it->second->board.phase() != BoardPhase::Booted) {
        return;
    }
    Entry& e = *it->second;
    e.afterBootTimer.reset();
    const std::string within = secondsText(e.profile->profile.timeouts.afterBoot);
    const std::string& wanted = e.profile->profile.storage->disk;
    std::string message;
    if (e.afterBootId.empty()) {
        message = "the board did not come back as a disk within " + within;
    } else if (e.diskIds.empty()) {
        message = "the board did not come back as a disk within " + within + " (it came back as " +
                  e.board.status().afterBoot + ", without a disk)";
    } else {
        std::string models;
        for (const auto& disk : e.board.status().disks) {
            models += (models.empty() ? "" : ", ") + disk.model;
        }
        message = "disk " + wanted + " did not appear within " + within +
                  " (the board came back as " + e.board.status().afterBoot + " with " + models +
                  ")";
    }
    afterBootFailed(e, message, FailureClass::Timeout);
}

void BoardRegistry::storageStage(std::uint64_t job, const std::string& stage) {
    Entry* e = entryByJob(job);
    if (e == nullptr || shuttingDown_) {
        return;
    }
    update(*e, [&](Board& b) { b.storageStage(stage); });
    env_.log.debug("storage step: " + stage, fieldsOf(*e));
}

void BoardRegistry::storageProgress(std::uint64_t job, std::uint64_t written,
                                    std::uint64_t toWrite) {
    Entry* e = entryByJob(job);
    if (e == nullptr || shuttingDown_) {
        return;
    }
    update(*e, [&](Board& b) { b.storageProgress(written, toWrite); });
}

void BoardRegistry::storageFinished(std::uint64_t job, const StorageJobResult& result) {
    if (env_.storage != nullptr) {
        env_.storage->reap(job);
    }
    if (result.write && bootListener_ != nullptr) {
        bootListener_->bytesWritten(result.write->bytesWritten);
    }
    Entry* found = entryByJob(job);
    if (found == nullptr || shuttingDown_) {
        return;  // abandoned: the board's verdict is already out
    }
    Entry& e = *found;
    e.storageJob = 0;
    if (!result.ok) {
        afterBootFailed(e, "storage step failed: " + result.error, FailureClass::Io);
        return;
    }
    std::string done = e.bootMessage;
    if (result.write) {
        const auto& w = *result.write;
        done += "; wrote " + w.imageName + " (" + std::to_string(w.bytesWritten) + " bytes)";
        if (result.disk) {
            done += " to " + result.disk->node +
                    (result.disk->model.empty() ? std::string() : " (" + result.disk->model + ")");
        }
        done += ", " + std::string(rpiboot::storage::toString(w.outcome));
        if (!w.imageSha256.empty()) {
            done += ", sha256 " + w.imageSha256;
        }
    }
    finishBoot(e, done);
}

std::string BoardRegistry::storageProgressText(const Entry& e) const {
    const BoardStatus& s = e.board.status();
    if (e.board.phase() != BoardPhase::Storage) {
        return {};
    }
    return " (" + s.stage + ", " + std::to_string(s.bytesWritten) + " of " +
           std::to_string(s.bytesToWrite) + " bytes written)";
}

void BoardRegistry::finishBoot(Entry& e, const std::string& message) {
    e.afterBootTimer.reset();
    e.settleTimer.reset();
    update(e, [&](Board& b) { b.finish(now()); });
    settle(e, true, message);
    markOnce(e);
}

void BoardRegistry::afterBootFailed(Entry& e, const std::string& message, FailureClass reason) {
    e.afterBootTimer.reset();
    e.settleTimer.reset();
    if (e.storageJob != 0) {
        // Its result is ignored when it comes; the job stops at its next buffer.
        if (env_.storage != nullptr) {
            env_.storage->cancel(e.storageJob);
        }
        e.storageJob = 0;
    }
    update(e, [&](Board& b) { b.fail(message, now()); });
    if (bootListener_ != nullptr) {
        bootListener_->attemptFailed(e.board.status(), reason);
    }
    settle(e, false, message, reason);
}

// ---------------------------------------------------------------- after-success policy

void BoardRegistry::restoreOnceSerials(const std::vector<std::string>& serials) {
    onceSerials_.insert(serials.begin(), serials.end());
}

void BoardRegistry::noteIgnoredDevice(Entry& e, const DeviceInfo& device) {
    portOfDevice_[device.id] = device.port;
    e.deviceId = device.id;
    e.deviceGone = false;
    e.device = device;
    e.chip = device.identity.chip;
    e.absenceTimer.reset();
    e.forgetTimer.reset();
}

bool BoardRegistry::refuseAgain(Entry* entry, const DeviceInfo& device) {
    if (entry != nullptr && entry->session != 0) {
        return false;  // decided when its session has ended (it waits as `pending`)
    }
    const rpiboot::DeviceIdentity& identity = device.identity;
    const std::string serial = identity.stage == BootStage::Rom || chipHasRomSerial(identity.chip)
                                   ? device.serial
                                   : std::string();
    if (entry != nullptr && entry->once && entry->board.phase() == BoardPhase::Done) {
        if (serial.empty() || entry->onceSerial.empty() || serial == entry->onceSerial) {
            Entry& e = *entry;
            noteIgnoredDevice(e, device);
            env_.log.info(
                "not booting the board again: profile " + e.profile->profile.name +
                    " boots a board once (after_success \"once\"); it is booted again after it "
                    "has been away from port " +
                    device.port + " for more than " +
                    std::to_string(e.profile->profile.forgetAfter.count()) +
                    " s, or with rpibootctl retry",
                fieldsOf(e));
            return true;
        }
        clearOnce(*entry);  // another board on that port
    }
    if (serial.empty() || onceSerials_.count(serial) == 0) {
        return false;
    }
    const auto selection = config_->select({identity.chip, device.port, serial});
    if (selection.profile->profile.afterSuccess != rpiboot::AfterSuccess::OncePerSerial) {
        return false;
    }
    Entry& e = entry != nullptr ? *entry : entryFor(device.port);
    noteIgnoredDevice(e, device);
    if (e.board.phase() != BoardPhase::Done || e.board.status().serial != serial) {
        e.profile = selection.profile;
        update(e, [&](Board& b) {
            b.alreadyDone(std::string(rpiboot::chipName(identity.chip)), serial,
                          selection.profile->profile.name);
        });
    }
    env_.log.info("not booting board " + serial + " again: it was booted with profile " +
                      selection.profile->profile.name +
                      " (after_success \"once-per-serial\"); rpibootctl retry boots it",
                  fieldsOf(e));
    return true;
}

void BoardRegistry::markOnce(Entry& e) {
    const rpiboot::AfterSuccess policy = e.profile->profile.afterSuccess;
    if (policy == rpiboot::AfterSuccess::BootAgain) {
        return;
    }
    e.once = true;
    e.onceSerial = e.board.status().serial;
    if (policy == rpiboot::AfterSuccess::OncePerSerial && !e.onceSerial.empty() &&
        onceSerials_.insert(e.onceSerial).second && onceSerialsListener_) {
        onceSerialsListener_(onceSerials());
    }
    portMaybeEmpty(e);
}

void BoardRegistry::clearOnce(Entry& e) {
    e.once = false;
    e.onceSerial.clear();
    e.absenceTimer.reset();
}

void BoardRegistry::forgetSerial(const std::string& serial) {
    if (!serial.empty() && onceSerials_.erase(serial) > 0 && onceSerialsListener_) {
        onceSerialsListener_(onceSerials());
    }
}

void BoardRegistry::portMaybeEmpty(Entry& e) {
    if (!e.once || e.absenceTimer || e.device) {
        return;
    }
    const std::string port = e.board.status().port;
    for (const auto& [id, device] : usbDevices_) {
        if (device.port == port) {
            return;
        }
    }
    const auto away = e.profile->profile.forgetAfter;
    e.absenceTimer = env_.timers.after(
        std::chrono::duration_cast<std::chrono::milliseconds>(away), [this, port, away] {
            const auto it = entries_.find(port);
            if (it == entries_.end()) {
                return;
            }
            Entry& entry = *it->second;
            entry.absenceTimer.reset();
            entry.once = false;
            env_.log.info("port " + port + " has been empty for " + std::to_string(away.count()) +
                              " s: the next board there is booted",
                          fieldsOf(entry));
        });
}

std::vector<BoardStatus> BoardRegistry::boards() const {
    std::vector<BoardStatus> out;
    for (const auto& [port, entry] : entries_) {
        if (entry->published) {
            out.push_back(entry->board.status());
        }
    }
    return out;
}

ControlResult BoardRegistry::control(const std::string& port, BoardAction action) {
    switch (action) {
        case BoardAction::Retry:
            return retry(port);
        case BoardAction::Forget:
            return forgetBoard(port);
        case BoardAction::Hold:
            return holdBoard(port);
        case BoardAction::Release:
            return releaseBoard(port);
    }
    return {ControlOutcome::UnknownPort, "unknown action"};
}

}  // namespace rpibootd
