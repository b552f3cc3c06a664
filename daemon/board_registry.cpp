#include "board_registry.hpp"

#include <algorithm>

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
        c.inFlight += entry->board.inFlight() || phase == BoardPhase::AwaitingSecondStage ? 1 : 0;
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
    return LogFields{s.port, s.chip, s.serial, s.stage, s.profile};
}

void BoardRegistry::countsChanged() {
    if (countsListener_) {
        countsListener_(counts());
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
    e.chip = device.identity.chip;
    if (device.identity.stage == BootStage::Rom) {
        beginRomStage(e, device);
    } else {
        beginSecondStage(e, device);
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

void BoardRegistry::beginRomStage(Entry& e, const DeviceInfo& device) {
    const auto selection = config_->select({e.chip, e.board.status().port, device.serial});
    e.profile = selection.profile;
    update(e, [&](Board& b) {
        b.beginRomStage(std::string(rpiboot::chipName(e.chip)), device.serial,
                        e.profile->profile.name, now());
    });
    env_.log.info("boot ROM found: sending " + std::string(rpiboot::bootcodeFileName(e.chip)) +
                      " (profile " + e.profile->profile.name + ", by " + selection.reason + ")",
                  fieldsOf(e));
}

void BoardRegistry::beginSecondStage(Entry& e, const DeviceInfo& device) {
    const bool continuing = e.board.phase() == BoardPhase::AwaitingSecondStage && e.profile;
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
    });
    env_.log.info("second stage found: serving files (profile " + e.profile->profile.name +
                      ", by " + reason + ")",
                  fieldsOf(e));
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
    if (e.session != 0) {
        // Its worker fails fast now; the outcome decides the stage.
        e.deviceGone = true;
        return;
    }
    switch (e.board.phase()) {
        case BoardPhase::AwaitingSecondStage:  // the ROM resets on its way to the second stage
        case BoardPhase::Done:                 // it became what it was served
        case BoardPhase::Disconnected:
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
                b.transferProgress(p.sent, p.total);
                break;
            case StageProgress::Kind::Finished:
                b.transferFinished(p.currentFile, p.total, countsAsFile);
                break;
        }
    });
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
    bool success = false;
    update(e, [&](Board& b) { success = b.filesDone(*result.sessionEnd, now()); });
    const std::string message = success
                                    ? "booted: " + std::to_string(e.board.status().filesServed) +
                                          " file(s), " + std::to_string(result.bytesSent) +
                                          " bytes served; " + sessionEndText(*result.sessionEnd)
                                    : e.board.status().lastError;
    settle(e, success, message);
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
    update(e, [&](Board& b) { b.fail(message, now()); });
    settle(e, false, message);
}

void BoardRegistry::settle(Entry& e, bool success, const std::string& message) {
    if (success) {
        env_.log.info(message, fieldsOf(e));
    } else {
        env_.log.error(message, fieldsOf(e));
    }
    if (sink_ != nullptr) {
        sink_->bootFinished(e.board.status().port, success, message);
    }
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
        update(*entry, [&](Board& b) { b.fail(message, now()); });
        settle(*entry, false, message);
        armForget(*entry);
        entry->reenumerateTimer.reset();
    });
}

void BoardRegistry::armForget(Entry& e) {
    const std::string port = e.board.status().port;
    e.forgetTimer = env_.timers.after(config_->configuration().daemon.forgetAfter,
                                      [this, port] { forget(port); });
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

}  // namespace rpibootd
