#include "virtualpi/sim_board.hpp"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "board_core.hpp"
#include "rpiboot/core/error.hpp"
#include "scenario_internal.hpp"
#include "secure_boot.hpp"
#include "sha256.hpp"
#include "virtualpi/c40.hpp"

namespace virtualpi {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// Unwinding signals of the firmware thread.
struct PoweredOff {};  // stop() was called
struct LeftTheBus {};  // the device disconnected for good (fault, host timeout)
struct Hung {};        // a fault froze the firmware; it waits for power-off

std::uint32_t le32(const std::vector<std::uint8_t>& b, std::size_t at) {
    if (b.size() < at + 4) {
        return 0;
    }
    return static_cast<std::uint32_t>(b[at]) | (static_cast<std::uint32_t>(b[at + 1]) << 8) |
           (static_cast<std::uint32_t>(b[at + 2]) << 16) |
           (static_cast<std::uint32_t>(b[at + 3]) << 24);
}

std::vector<std::uint8_t> le32Bytes(std::uint32_t v) {
    return {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8),
            static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 24)};
}

std::string printableName(const std::vector<std::uint8_t>& field) {
    std::string out;
    for (std::uint8_t c : field) {
        if (c == 0) {
            break;
        }
        if (c >= 0x20 && c < 0x7f) {
            out.push_back(static_cast<char>(c));
        } else {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        }
    }
    return out;
}

std::string lower(std::string text) {
    for (char& c : text) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return text;
}

}  // namespace

// ------------------------------------------------------------------ firmware

// The program of one board, run on the board thread (docs/protocol.md §4, §5,
// §12.5).
class Firmware {
  public:
    Firmware(BoardCore& core, std::shared_ptr<BoardCore> coreRef, const Scenario& scenario,
             const std::string& serial, const std::string& port, const AttachListener& listener,
             const std::vector<std::shared_ptr<ScsiDisk>>& disks,
             const std::vector<DiskAttachment>& attachments, std::stop_token stop)
        : core_(core),
          coreRef_(std::move(coreRef)),
          s_(scenario),
          serial_(serial),
          port_(port),
          listener_(listener),
          disks_(disks),
          attachments_(attachments),
          stop_(std::move(stop)),
          secure_(scenario.secureBoot) {}

    void run() {
        try {
            if (s_.startStage == StartStage::Final) {
                showFinalIdentity();
                endWith(Outcome::Succeeded, {});
                waitForDiskUnplug();
                return;
            }
            bool fromRom = s_.startStage == StartStage::Rom;
            do {
                if (fromRom) {
                    romStage();
                    detach();
                    pause(s_.timing.romResetDelay);
                }
                fromRom = true;
                startRun();
                attach(Stage::SecondStage,
                       secondStageDescriptors(s_.chip, serial_, s_.secondStage));
                pause(s_.timing.secondStageStartDelay);
                secondStage();
            } while (finish());
        } catch (const PoweredOff&) {
        } catch (const LeftTheBus&) {
        } catch (const Hung&) {
            std::unique_lock lock(core_.mutex);
            core_.changed.wait(lock, stop_, [] { return false; });
        }
    }

  private:
    // ---------------------------------------------------------- plumbing

    milliseconds sincePowerOn() const {
        return duration_cast<milliseconds>(Clock::now() - core_.poweredOn);
    }

    std::string who() const {
        return "virtual " + std::string(rpiboot::chipNumber(s_.chip)) +
               (port_.empty() ? std::string() : " at " + port_);
    }

    void attach(Stage stage, DescriptorSet descriptors,
                std::vector<std::shared_ptr<BulkOnlyStorage>> storage = {}) {
        std::shared_ptr<UsbDevice> device;
        {
            std::lock_guard lock(core_.mutex);
            ++core_.generation;
            core_.resetProtocolState();
            core_.storage = std::move(storage);
            core_.attached = true;
            core_.stage = stage;
            core_.descriptors = std::make_shared<const DescriptorSet>(std::move(descriptors));
            device = std::make_shared<BoardUsbDevice>(coreRef_, core_.generation, core_.descriptors,
                                                      stage);
            core_.currentDevice = device;
            core_.record.stage = stage;
            ++core_.record.enumerations;
            core_.changed.notify_all();
        }
        if (listener_) {
            listener_({AttachEventKind::Attached, device});
        }
    }

    void detach() {
        std::shared_ptr<UsbDevice> device;
        {
            std::lock_guard lock(core_.mutex);
            if (!core_.attached) {
                return;
            }
            core_.attached = false;
            core_.stage = Stage::Off;
            core_.record.stage = Stage::Off;
            core_.dropStorage();
            device = std::move(core_.currentDevice);
            core_.changed.notify_all();
        }
        if (listener_) {
            listener_({AttachEventKind::Detached, device});
        }
    }

    // Interruptible device-side delay (timing model, Pause steps).
    void pause(milliseconds duration) {
        if (duration.count() <= 0) {
            return;
        }
        std::unique_lock lock(core_.mutex);
        core_.changed.wait_for(lock, stop_, duration, [] { return false; });
        if (stop_.stop_requested()) {
            throw PoweredOff{};
        }
    }

    void note(const std::string& message) {
        std::lock_guard lock(core_.mutex);
        core_.record.log.push_back(message);
    }

    // A failure that does not stop the script: the board carries on to the
    // end of the session and then reports Failed with the first reason.
    void failLater(const std::string& reason) {
        std::lock_guard lock(core_.mutex);
        core_.record.log.push_back(reason);
        if (failure_.empty()) {
            failure_ = reason;
        }
    }

    // The outcome is decided once, except that a failed run after a return
    // to the ROM turns the earlier success into a failure.
    void endWith(Outcome outcome, const std::string& reason) {
        std::lock_guard lock(core_.mutex);
        const bool laterFailure = outcome == Outcome::Failed && returns_ > 0 &&
                                  core_.record.outcome == Outcome::Succeeded;
        if (core_.record.outcome == Outcome::Running || laterFailure) {
            core_.record.outcome = outcome;
            core_.record.reason =
                laterFailure ? "run " + std::to_string(core_.record.runs) + ": " + reason : reason;
            if (!reason.empty()) {
                core_.record.log.push_back(core_.record.reason);
            }
        }
        core_.changed.notify_all();
    }

    // Waits for something the host must do. Stop -> PoweredOff; the
    // scenario's host timeout -> the board gives up and leaves the bus.
    template <typename Pred>
    void waitForHost(std::unique_lock<std::mutex>& lock, const std::string& what, Pred pred) {
        // A ROM the board returned to waits for a host as long as it is powered.
        const auto timeout = idleRom_ ? milliseconds(0) : s_.timing.hostTimeout;
        bool ok = true;
        if (timeout.count() > 0) {
            ok = core_.changed.wait_for(lock, stop_, timeout, pred);
        } else {
            core_.changed.wait(lock, stop_, pred);
            ok = pred();
        }
        if (stop_.stop_requested() && !ok) {
            throw PoweredOff{};
        }
        if (!ok) {
            lock.unlock();
            leaveBus("the host did not " + what + " within " + std::to_string(timeout.count()) +
                     " ms");
        }
    }

    // Off the bus first, so whoever sees the outcome also sees the device gone.
    [[noreturn]] void leaveBus(const std::string& reason) {
        detach();
        endWith(Outcome::Failed, reason);
        throw LeftTheBus{};
    }

    [[noreturn]] void hang(const std::string& reason) {
        endWith(Outcome::Failed, reason);
        throw Hung{};
    }

    // Applies a fault at a point where no bulk data is involved.
    void strike(const Fault& fault, FaultPoint point, const std::string& where) {
        if (!fault.active() || fault.at != point) {
            return;
        }
        const std::string reason = std::string("fault injected: ") + faultKindName(fault.kind) +
                                   " at " + faultPointName(point) + " of " + where;
        switch (fault.kind) {
            case FaultKind::Disconnect:
                leaveBus(reason);
            case FaultKind::StallControl: {
                std::lock_guard lock(core_.mutex);
                // A request point stalls the host's control IN, every other
                // point the control OUT the device is waiting for.
                if (point == FaultPoint::Request || point == FaultPoint::Status) {
                    core_.controlInMode = EndpointMode::Stall;
                } else {
                    core_.controlOutMode = EndpointMode::Stall;
                }
                core_.changed.notify_all();
                break;
            }
            case FaultKind::Silence: {
                std::lock_guard lock(core_.mutex);
                if (point == FaultPoint::Reply) {
                    core_.controlOutMode = EndpointMode::Silence;
                }
                break;
            }
            default:
                break;
        }
        hang(reason);
    }

    // Holds `message` for the host's next vendor control IN and waits until
    // the host has read it.
    void post(std::vector<std::uint8_t> message, const std::string& what,
              RequestRecord* request = nullptr, const Fault* replyFault = nullptr) {
        std::unique_lock lock(core_.mutex);
        if (replyFault != nullptr && replyFault->active() && replyFault->at == FaultPoint::Reply) {
            // Until the fault strikes, the host's answer is NAKed (or stalled).
            core_.controlOutModeOnCollect = replyFault->kind == FaultKind::StallControl
                                                ? EndpointMode::Stall
                                                : EndpointMode::Silence;
        }
        if (!core_.controlOuts.empty()) {
            const std::string stray = std::to_string(core_.controlOuts.front());
            core_.controlOuts.clear();
            lock.unlock();
            failLater("protocol violation: the host sent a control OUT (length " + stray +
                      ") the device did not ask for, before " + what);
            lock.lock();
        }
        std::size_t index = 0;
        if (request != nullptr) {
            request->at = sincePowerOn();
            core_.record.requests.push_back(*request);
            index = core_.record.requests.size() - 1;
        }
        const std::uint64_t taken = core_.inTaken;
        core_.pendingIn = std::move(message);
        core_.changed.notify_all();
        waitForHost(lock, "read " + what, [&] { return core_.inTaken != taken; });
        if (request != nullptr) {
            core_.record.requests[index].collected = true;
        }
    }

    // Waits for the host's next vendor control OUT and returns its length.
    std::uint32_t awaitLength(const std::string& what) {
        std::unique_lock lock(core_.mutex);
        waitForHost(lock, "send " + what, [&] { return !core_.controlOuts.empty(); });
        const std::uint32_t length = core_.controlOuts.front();
        core_.controlOuts.pop_front();
        if (!core_.record.requests.empty() && !core_.record.requests.back().reply) {
            core_.record.requests.back().reply = length;
        }
        return length;
    }

    struct Received {
        std::uint64_t bytes = 0;
        std::string sha256;
        std::vector<std::uint8_t> head;
        Clock::time_point lastByte{};
    };

    // Accepts exactly `length` bytes on bulk OUT, in any packetisation; a data
    // fault (`fault.at == dataPoint`) strikes after fault.afterBytes bytes.
    // `beforeFault` sees what arrived before a data fault strikes.
    Received receive(std::uint64_t length, const Fault& fault, FaultPoint dataPoint,
                     const std::string& what, std::size_t keep = 0,
                     const std::function<void(const Received&)>& beforeFault = {}) {
        const bool faulted =
            fault.active() && fault.at == dataPoint && fault.kind != FaultKind::StallControl;
        const std::uint64_t limit = faulted ? std::min(fault.afterBytes, length) : length;
        Received r;
        std::unique_lock lock(core_.mutex);
        core_.windowOpen = true;
        core_.windowLimit = limit;
        core_.windowReceived = 0;
        core_.windowInFlight = 0;
        core_.windowKeep.clear();
        core_.windowKeepMax = keep;
        core_.windowHash.finishHex();  // restart
        core_.windowLastByte = Clock::now();
        core_.changed.notify_all();
        waitForHost(lock, "send the " + std::to_string(length) + " bytes of " + what,
                    [&] { return core_.windowReceived >= limit && core_.windowInFlight == 0; });
        r.bytes = core_.windowReceived;
        r.head = core_.windowKeep;
        r.lastByte = core_.windowLastByte;
        if (!faulted) {
            core_.windowOpen = false;
            r.sha256 = core_.windowHash.finishHex();
            return r;
        }
        // The fault point is reached: the window stays as it is (further
        // bytes are NAKed) unless the fault says otherwise.
        const std::string reason = std::string("fault injected: ") + faultKindName(fault.kind) +
                                   " after " + std::to_string(r.bytes) + " bytes of " + what;
        if (fault.kind == FaultKind::StallBulk) {
            core_.haltedEndpoints.insert(core_.descriptors->vendorBulkOutEndpoint());
            core_.changed.notify_all();
        }
        lock.unlock();
        if (beforeFault) {
            beforeFault(r);
        }
        if (fault.kind == FaultKind::Disconnect) {
            leaveBus(reason);
        }
        hang(reason);
    }

    // ---------------------------------------------------------- ROM stage

    void romStage() {
        attach(Stage::Rom, romDescriptors(s_.chip, serial_, s_.rom.configQuirk));
        if (returns_ > 0) {
            // Back in its ROM after a successful run: that run is its outcome.
            endWith(Outcome::Succeeded, {});
        }
        const Fault& fault = s_.rom.fault;
        std::size_t acceptedUploads = 0;
        idleRom_ = returns_ > 0;
        for (;;) {
            RomAttempt attempt;
            strike(fault.kind == FaultKind::StallControl ? fault : Fault{}, FaultPoint::BootMessage,
                   "the boot message");
            attempt.bootMessageLength = awaitLength("the boot message length");
            idleRom_ = false;
            const Received message =
                receive(attempt.bootMessageLength, fault, FaultPoint::BootMessage,
                        "the boot message", kBootMessageSize);
            attempt.announcedLength = le32(message.head, 0);
            if (message.head.size() >= kBootMessageSize) {
                attempt.signatureHex =
                    detail::toHex(std::span<const std::uint8_t>(message.head).subspan(4, 20));
            }
            strike(fault.kind == FaultKind::StallControl ? fault : Fault{}, FaultPoint::Bootcode,
                   s_.rom.bootcodeName);
            const std::uint32_t length = awaitLength("the " + s_.rom.bootcodeName + " length");
            const bool checkSignature = s_.chip == rpiboot::Chip::Bcm2712 && secure_.locked();
            const Received code = receive(length, fault, FaultPoint::Bootcode, s_.rom.bootcodeName,
                                          checkSignature ? length : 0, [&](const Received& part) {
                                              // Keep what arrived before the fault in the record.
                                              RomAttempt partial = attempt;
                                              partial.bootcodeLength = part.bytes;
                                              partial.reason = "fault injected during the upload";
                                              partial.at = sincePowerOn();
                                              std::lock_guard lock(core_.mutex);
                                              core_.record.romAttempts.push_back(partial);
                                          });
            attempt.bootcodeLength = code.bytes;
            attempt.bootcodeSha256 = code.sha256;
            attempt.reason = checkUpload(attempt);
            if (attempt.reason.empty() && checkSignature) {
                // The locked BCM2712 ROM runs only loaders counter-signed with the OTP key.
                const std::string problem = detail::check2712Loader(code.head, secure_.otpKeyHash);
                if (!problem.empty()) {
                    attempt.reason = "secure boot: " + problem;
                }
            }
            attempt.accepted = attempt.reason.empty();
            if (attempt.accepted) {
                const auto& codes = s_.rom.returnCodes;
                attempt.status = codes[std::min(acceptedUploads, codes.size() - 1)];
                ++acceptedUploads;
            } else {
                attempt.status = s_.rom.rejectCode;
            }
            attempt.at = sincePowerOn();
            {
                std::lock_guard lock(core_.mutex);
                core_.record.romAttempts.push_back(attempt);
                if (!attempt.accepted) {
                    core_.record.log.push_back("ROM rejected the upload: " + attempt.reason);
                } else if (attempt.status == 0) {
                    ++core_.record.boots;
                }
            }
            strike(fault, FaultPoint::Status, "the ROM status");
            pause(s_.timing.romStatusDelay);
            post(le32Bytes(attempt.status), "the ROM status");
            if (attempt.accepted && attempt.status == 0) {
                return;
            }
            // A failed upload leaves the ROM waiting for another attempt.
        }
    }

    std::string checkUpload(const RomAttempt& a) const {
        if (a.bootMessageLength != kBootMessageSize) {
            return "the boot message was " + std::to_string(a.bootMessageLength) + " bytes, not 24";
        }
        if (a.bootcodeLength != a.announcedLength) {
            return "the boot message announced " + std::to_string(a.announcedLength) +
                   " bytes of " + s_.rom.bootcodeName + " but " + std::to_string(a.bootcodeLength) +
                   " arrived";
        }
        if (s_.rom.bootcodeSha256 && lower(*s_.rom.bootcodeSha256) != a.bootcodeSha256) {
            return s_.rom.bootcodeName + " has SHA-256 " + a.bootcodeSha256 + ", expected " +
                   lower(*s_.rom.bootcodeSha256);
        }
        if (s_.rom.signature && lower(*s_.rom.signature) != a.signatureHex) {
            return "the boot message signature " + a.signatureHex + " is not the expected " +
                   lower(*s_.rom.signature);
        }
        return {};
    }

    // ---------------------------------------------------------- second stage

    std::vector<std::uint8_t> request(std::uint32_t command, const std::string& name,
                                      std::uint8_t pad = 0,
                                      std::size_t length = kRequestSize) const {
        std::vector<std::uint8_t> m = le32Bytes(command);
        m.insert(m.end(), name.begin(), name.end());
        m.resize(4 + kRequestNameSize, pad);
        m.resize(length, 0);
        return m;
    }

    // Posts a request and records it; applies Request/Reply faults.
    void ask(const Step& step, std::uint32_t command, const std::string& name,
             std::vector<std::uint8_t> message, bool firstOfStep) {
        const std::string what =
            std::string(command == kCommandGetFileSize ? "GetFileSize"
                        : command == kCommandReadFile  ? "ReadFile"
                        : command == kCommandDone      ? "Done"
                                                       : "command ") +
            (command > 2 ? std::to_string(command) : std::string()) + " \"" +
            printableName(std::vector<std::uint8_t>(name.begin(), name.end())) + "\"";
        if (firstOfStep) {
            strike(step.fault, FaultPoint::Request, what);
        }
        RequestRecord r;
        r.command = command;
        r.name = printableName(std::vector<std::uint8_t>(
            message.begin() +
                std::min<std::ptrdiff_t>(4, static_cast<std::ptrdiff_t>(message.size())),
            message.end()));
        post(std::move(message), "the request " + what, &r, firstOfStep ? &step.fault : nullptr);
        if (firstOfStep) {
            strike(step.fault, FaultPoint::Reply, what);
        }
    }

    std::size_t addFile(FileRecord record) {
        std::lock_guard lock(core_.mutex);
        record.at = sincePowerOn();
        core_.record.files.push_back(std::move(record));
        return core_.record.files.size() - 1;
    }

    template <typename Fn>
    void updateFile(std::size_t index, Fn fn) {
        std::lock_guard lock(core_.mutex);
        fn(core_.record.files[index]);
    }

    void runFile(const Step& step) {
        FileRecord rec;
        rec.name = step.name;
        rec.kind = step.kind;
        const std::size_t index = addFile(rec);
        std::uint32_t size = 0;
        bool haveSize = false;
        if (step.kind != StepKind::ReadFile) {
            ask(step, kCommandGetFileSize, step.name, request(kCommandGetFileSize, step.name),
                true);
            size = awaitLength("the size of " + step.name);
            haveSize = true;
            updateFile(index, [&](FileRecord& f) {
                f.reportedSize = size;
                f.missing = size == 0;
            });
            if (size == 0) {
                if (!step.optional) {
                    failLater("required file " + step.name +
                              " is missing (the host answered size 0)");
                }
                return;
            }
            if (step.size && *step.size != size) {
                failLater(step.name + " is " + std::to_string(size) + " bytes, expected " +
                          std::to_string(*step.size));
            }
            const auto limit = step.maxSize ? step.maxSize : s_.maxFileSize;
            if (limit && size > *limit) {
                failLater(step.name + " is " + std::to_string(size) +
                          " bytes, more than the device can hold (" + std::to_string(*limit) +
                          "); not read");
                return;
            }
            if (step.kind == StepKind::GetFileSize) {
                return;
            }
        }
        ask(step, kCommandReadFile, step.name, request(kCommandReadFile, step.name), !haveSize);
        const std::uint32_t length = awaitLength("the data of " + step.name);
        const auto started = Clock::now();
        updateFile(index, [&](FileRecord& f) {
            f.announcedLength = length;
            f.missing = length == 0;
        });
        if (haveSize && length != size) {
            failLater("protocol violation: the host announced " + std::to_string(length) +
                      " bytes for " + step.name + " after reporting its size as " +
                      std::to_string(size));
        }
        if (length == 0) {
            if (!step.optional) {
                failLater("required file " + step.name + " is missing (ReadFile answered 0)");
            }
            return;
        }
        const bool keep = step.name == "config.txt" || step.name == "pieeprom.bin" ||
                          step.name == "boot.sig" || (step.name == "boot.img" && secure_.locked());
        const Received data =
            receive(length, step.fault, FaultPoint::Data, step.name, keep ? length : 0,
                    [&](const Received& part) {
                        updateFile(index, [&](FileRecord& f) { f.receivedBytes = part.bytes; });
                    });
        {
            std::lock_guard lock(core_.mutex);
            received_[step.name] = data.sha256;
        }
        if (keep) {
            contents_[step.name] = data.head;
        }
        updateFile(index, [&](FileRecord& f) {
            f.receivedBytes = data.bytes;
            f.sha256 = data.sha256;
            f.complete = data.bytes == length;
            f.duration = duration_cast<milliseconds>(data.lastByte - started);
            if (step.sha256) {
                f.hashMatches = lower(*step.sha256) == data.sha256;
            }
        });
        if (step.sha256 && lower(*step.sha256) != data.sha256) {
            failLater(step.name + " has SHA-256 " + data.sha256 + ", expected " +
                      lower(*step.sha256));
        }
        pause(s_.timing.fileProcessingDelay);
    }

    std::string expand(const std::string& value) {
        std::string out;
        std::size_t at = 0;
        while (at < value.size()) {
            const auto open = value.find('{', at);
            const auto close = open == std::string::npos ? open : value.find('}', open);
            if (close == std::string::npos) {
                out += value.substr(at);
                break;
            }
            out += value.substr(at, open - at);
            const std::string key = value.substr(open + 1, close - open - 1);
            if (key == "serial") {
                out += serial_;
            } else if (key == "provision" || key == "eeprom_update" || key == "customer_key_hash" ||
                       key == "jtag_locked") {
                const detail::ProvisionOutcome& o = recoveryOutcome();
                out += key == "provision"       ? o.provision
                       : key == "eeprom_update" ? o.eepromUpdate
                       : key == "customer_key_hash"
                           ? (secure_.locked() ? secure_.otpKeyHash : std::string(64, '0'))
                           : std::string(secure_.jtagLocked ? "1" : "0");
            } else if (key.rfind("sha256:", 0) == 0) {
                std::lock_guard lock(core_.mutex);
                const auto it = received_.find(key.substr(7));
                out += it == received_.end() ? std::string() : it->second;
            } else {
                out += value.substr(open, close - open + 1);
            }
            at = close + 1;
        }
        return out;
    }

    void runMetadata(const Step& step) {
        MetadataRecord m;
        m.key = step.name;
        m.wire = "*" + step.name;
        if (step.value) {
            m.value = expand(*step.value);
            m.wire += "*" + (step.c40 ? c40Encode(*m.value) : *m.value);
        }
        std::size_t index = 0;
        {
            std::lock_guard lock(core_.mutex);
            core_.record.metadata.push_back(m);
            index = core_.record.metadata.size() - 1;
        }
        // Sent as ReadFile (docs/protocol.md §5.5).
        ask(step, kCommandReadFile, m.wire, request(kCommandReadFile, m.wire), true);
        const std::uint32_t ack = awaitLength("the acknowledgement of " + m.wire);
        if (ack != 0) {
            failLater("protocol violation: metadata " + m.wire + " was answered with length " +
                      std::to_string(ack) + " instead of 0");
            receive(ack, step.fault, FaultPoint::Data, "the answer to " + m.wire);
            return;
        }
        std::lock_guard lock(core_.mutex);
        core_.record.metadata[index].acked = true;
    }

    void runRaw(const Step& step) {
        const std::size_t length = step.messageLength.value_or(kRequestSize);
        ask(step, step.command, step.name, request(step.command, step.name, step.pad, length),
            true);
        if (step.reply == RawReply::None) {
            return;
        }
        const std::uint32_t answer =
            awaitLength("an answer to command " + std::to_string(step.command));
        if (step.command == kCommandReadFile && answer > 0) {
            receive(answer, step.fault, FaultPoint::Data, "the answer to a raw request");
        }
    }

    void runEnd(const Step& step) {
        ask(step, step.command, step.kind == StepKind::Done ? step.name : std::string(),
            request(step.command, step.kind == StepKind::Done ? step.name : std::string()), true);
        if (step.kind == StepKind::Done) {
            return;  // no acknowledgement (docs/protocol.md §5.3 step 6)
        }
        const std::uint32_t ack = awaitLength("the acknowledgement of the empty name");
        if (ack != 0) {
            failLater("protocol violation: the empty-name request was answered with length " +
                      std::to_string(ack) + " instead of 0");
            receive(ack, Fault{}, FaultPoint::Data, "the answer to the empty name");
        }
    }

    // What recovery.bin does once it has its files: flash, then act on the
    // config.txt switches (docs/protocol.md §7.3, §7.4). Runs once.
    const detail::ProvisionOutcome& recoveryOutcome() {
        if (!recovery_) {
            recovery_.emplace();
            const auto image = contents_.find("pieeprom.bin");
            if (image == contents_.end()) {
                recovery_->eepromUpdate = "failed";
                recovery_->notes.push_back("no pieeprom.bin was received");
            } else {
                const auto config = contents_.find("config.txt");
                const std::string configTxt =
                    config == contents_.end()
                        ? std::string()
                        : std::string(config->second.begin(), config->second.end());
                recovery_ = detail::applyRecovery(secure_, configTxt, image->second);
            }
            std::lock_guard lock(core_.mutex);
            for (const auto& n : recovery_->notes) {
                core_.record.log.push_back(n);
            }
            core_.record.secureBoot = secure_;
        }
        return *recovery_;
    }

    // A locked board's second stage boots boot.img only with a boot.sig that
    // verifies with its EEPROM key of the OTP hash; otherwise it stops (the
    // host sees no further request).
    void checkSignedBootImage(const Step& step) {
        if (!secure_.locked() || (step.name != "boot.img" && step.name != "boot.sig")) {
            return;
        }
        if (step.name == "boot.sig") {
            bootSigStepDone_ = true;
        }
        const bool sigAsked = std::any_of(s_.steps.begin(), s_.steps.end(),
                                          [](const Step& st) { return st.name == "boot.sig"; });
        const auto img = contents_.find("boot.img");
        if (img == contents_.end() || (sigAsked && !bootSigStepDone_)) {
            return;  // the other one is still to come
        }
        const auto sig = contents_.find("boot.sig");
        std::string problem;
        if (sig == contents_.end()) {
            problem = "boot.img came without boot.sig";
        } else if (secure_.eepromPubkey.empty()) {
            problem = "the board's EEPROM holds no public key";
        } else {
            std::vector<std::uint8_t> key;
            for (std::size_t i = 0; i + 1 < secure_.eepromPubkey.size(); i += 2) {
                key.push_back(static_cast<std::uint8_t>(
                    std::stoi(secure_.eepromPubkey.substr(i, 2), nullptr, 16)));
            }
            if (detail::sha256Of(key) != secure_.otpKeyHash) {
                problem = "the EEPROM's public key does not match the hash in OTP";
            } else {
                const std::string sigText(sig->second.begin(), sig->second.end());
                const std::string why = detail::checkSigFile(img->second, sigText, key);
                if (!why.empty()) {
                    problem = "boot.sig: " + why;
                }
            }
        }
        if (!problem.empty()) {
            hang("secure boot: refused boot.img: " + problem);
        }
        note("secure boot: boot.sig verified with the key in OTP");
    }

    // Returns false when the step ended the session (Disconnect).
    bool runStep(const Step& step) {
        if (step.kind == StepKind::Pause) {
            pause(step.delay);
            return true;
        }
        pause(step.delay);
        switch (step.kind) {
            case StepKind::File:
            case StepKind::GetFileSize:
            case StepKind::ReadFile:
                runFile(step);
                checkSignedBootImage(step);
                break;
            case StepKind::Metadata:
                runMetadata(step);
                break;
            case StepKind::Raw:
                runRaw(step);
                break;
            case StepKind::EmptyName:
            case StepKind::Done:
                runEnd(step);
                break;
            case StepKind::Disconnect:
                note("second stage left the bus without an end message");
                return false;
            case StepKind::Pause:
                break;
        }
        return true;
    }

    void secondStage() {
        for (const Step& step : s_.steps) {
            for (unsigned i = 0; i < step.repeat; ++i) {
                if (!runStep(step)) {
                    return;
                }
            }
        }
    }

    // A run of the second stage begins: what the previous run received is
    // forgotten; OTP and EEPROM (secure_) keep what it did to them.
    void startRun() {
        failure_.clear();
        contents_.clear();
        recovery_.reset();
        bootSigStepDone_ = false;
        std::lock_guard lock(core_.mutex);
        received_.clear();
        ++core_.record.runs;
    }

    // Ends a run. Returns true when the board goes back to its ROM to run the
    // scenario again (final kind Rom with returns left).
    bool finish() {
        detach();
        if (!failure_.empty()) {
            endWith(Outcome::Failed, failure_);
            return false;
        }
        if (s_.final.kind == FinalKind::Rom) {
            if (returns_ >= s_.final.returns) {
                note("no return to the ROM left after " + std::to_string(returns_) +
                     " (final.returns): the board stays off the bus");
                endWith(Outcome::Succeeded, {});
                return false;
            }
            pause(s_.timing.finalDelay);
            ++returns_;
            std::lock_guard lock(core_.mutex);
            core_.record.returnsToRom = returns_;
            core_.record.log.push_back("reset into its boot ROM (return " +
                                       std::to_string(returns_) + " of " +
                                       std::to_string(s_.final.returns) + ")");
            return true;
        }
        if (s_.final.kind != FinalKind::None) {
            pause(s_.timing.finalDelay);
            showFinalIdentity();
        }
        endWith(Outcome::Succeeded, {});
        waitForDiskUnplug();
        return false;
    }

    // The identity after booting, with a mass-storage function for every
    // disk that has a backing file.
    void showFinalIdentity() {
        const FinalIdentity& f = s_.final;
        const std::string serial = f.serial.empty() ? serial_ : f.serial;
        DescriptorSet descriptors;
        switch (f.kind) {
            case FinalKind::MassStorageGadget:
                descriptors = massStorageGadgetDescriptors(
                    f.serial.empty() ? "10000000" + serial_ : f.serial, f.disks);
                break;
            case FinalKind::UsbDisk:
                descriptors =
                    usbDiskDescriptors(f.vendorId, f.productId, f.manufacturer, f.product, serial);
                break;
            default:
                descriptors =
                    customDescriptors(f.vendorId, f.productId, f.manufacturer, f.product, serial);
                break;
        }
        std::vector<std::shared_ptr<BulkOnlyStorage>> storage;
        const auto interfaces = descriptors.storageInterfaces();
        for (std::size_t i = 0; i < disks_.size() && i < interfaces.size(); ++i) {
            auto function = std::make_shared<BulkOnlyStorage>(disks_[i], interfaces[i].number,
                                                              interfaces[i].in, interfaces[i].out);
            if (const auto limit = attachments_[i].unplugAfterWritten) {
                std::weak_ptr<BoardCore> weak = coreRef_;
                function->unplugAfterWritten(*limit, [weak, i] {
                    if (const auto core = weak.lock()) {
                        std::lock_guard lock(core->mutex);
                        core->unpluggedDisk = i;
                        core->changed.notify_all();
                    }
                });
            }
            storage.push_back(std::move(function));
        }
        attach(Stage::Final, std::move(descriptors), std::move(storage));
    }

    // With an unplug limit on a disk: stays on the bus until the host has
    // written that much to it, then leaves.
    void waitForDiskUnplug() {
        const bool armed =
            std::any_of(attachments_.begin(), attachments_.end(),
                        [](const DiskAttachment& a) { return a.unplugAfterWritten.has_value(); });
        if (!armed) {
            return;
        }
        std::size_t disk = 0;
        {
            std::unique_lock lock(core_.mutex);
            core_.changed.wait(lock, stop_, [&] { return core_.unpluggedDisk.has_value(); });
            if (!core_.unpluggedDisk) {
                return;  // powered off
            }
            disk = *core_.unpluggedDisk;
            core_.record.log.push_back("left the bus after " +
                                       std::to_string(*attachments_[disk].unplugAfterWritten) +
                                       " bytes written to disk " +
                                       (disk < s_.final.disks.size() ? s_.final.disks[disk] : ""));
        }
        detach();
    }

    BoardCore& core_;
    std::shared_ptr<BoardCore> coreRef_;
    const Scenario& s_;
    const std::string& serial_;
    const std::string& port_;
    const AttachListener& listener_;
    const std::vector<std::shared_ptr<ScsiDisk>>& disks_;
    const std::vector<DiskAttachment>& attachments_;
    std::stop_token stop_;
    std::string failure_;
    std::map<std::string, std::string> received_;  // file name -> sha256 (guarded by mutex)
    SecureBootState secure_;                       // OTP and EEPROM as they are now
    std::map<std::string, std::vector<std::uint8_t>> contents_;  // files secure boot looks at
    std::optional<detail::ProvisionOutcome> recovery_;
    bool bootSigStepDone_ = false;
    unsigned returns_ = 0;  // times the board went back to its ROM
    bool idleRom_ = false;  // a returned ROM waiting for its first upload
};

// ------------------------------------------------------------------ SimBoard

SimBoard::SimBoard(Scenario scenario, BoardOptions options)
    : scenario_(std::move(scenario)), options_(std::move(options)) {
    detail::validateScenario(scenario_);
    serial_ = !options_.serial.empty()    ? options_.serial
              : !scenario_.serial.empty() ? scenario_.serial
                                          : std::string("00000000");
    core_ = std::make_shared<BoardCore>(scenario_.bulkBytesPerSecond, options_.controllerBudget);
    core_->record.secureBoot = scenario_.secureBoot;
    const FinalIdentity& f = scenario_.final;
    const bool storage = f.kind == FinalKind::MassStorageGadget || f.kind == FinalKind::UsbDisk;
    const std::size_t capacity = storage ? f.disks.size() : 0;
    if (options_.disks.size() > capacity) {
        throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                             "virtual board: " + std::to_string(options_.disks.size()) +
                                 " backing file(s) for a final identity with " +
                                 std::to_string(capacity) + " disk(s)");
    }
    for (std::size_t i = 0; i < options_.disks.size(); ++i) {
        DiskOptions o;
        o.file = options_.disks[i].file;
        o.sizeBytes = options_.disks[i].sizeBytes;
        if (f.kind == FinalKind::MassStorageGadget) {
            // The gadget's inquiry_string is the device name (docs/protocol.md §12.4).
            o.identification = f.disks[i];
            o.serial = f.serial.empty() ? "10000000" + serial_ : f.serial;
        } else {
            o.identification = inquiryIdentification(f.manufacturer, f.product, "1.00");
            o.serial = f.serial.empty() ? serial_ : f.serial;
        }
        disks_.push_back(std::make_shared<ScsiDisk>(std::move(o)));
    }
}

SimBoard::~SimBoard() {
    stop();
}

void SimBoard::start() {
    if (started_) {
        return;
    }
    started_ = true;
    {
        std::lock_guard lock(core_->mutex);
        core_->poweredOn = Clock::now();
    }
    thread_ = std::jthread([this](std::stop_token stop) { run(std::move(stop)); });
}

void SimBoard::run(std::stop_token stop) {
    Firmware firmware(*core_, core_, scenario_, serial_, options_.portPath, options_.listener,
                      disks_, options_.disks, std::move(stop));
    firmware.run();
}

void SimBoard::stop() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
    std::shared_ptr<UsbDevice> device;
    {
        std::lock_guard lock(core_->mutex);
        if (core_->attached) {
            core_->attached = false;
            core_->stage = Stage::Off;
            core_->record.stage = Stage::Off;
            core_->dropStorage();
            device = std::move(core_->currentDevice);
        }
        if (core_->record.outcome == Outcome::Running && core_->record.enumerations > 0) {
            core_->record.outcome = Outcome::Failed;
            core_->record.reason = "powered off before the scenario finished";
        }
        core_->currentDevice.reset();
        core_->changed.notify_all();
    }
    if (device && options_.listener) {
        options_.listener({AttachEventKind::Detached, device});
    }
}

std::shared_ptr<UsbDevice> SimBoard::device() const {
    std::lock_guard lock(core_->mutex);
    return core_->currentDevice;
}

Stage SimBoard::stage() const {
    std::lock_guard lock(core_->mutex);
    return core_->attached ? core_->stage : Stage::Off;
}

BoardRecord SimBoard::record() const {
    std::lock_guard lock(core_->mutex);
    return core_->record;
}

std::vector<DiskStatus> SimBoard::disks() const {
    std::optional<std::size_t> unplugged;
    {
        std::lock_guard lock(core_->mutex);
        unplugged = core_->unpluggedDisk;
    }
    std::vector<DiskStatus> out;
    for (std::size_t i = 0; i < disks_.size(); ++i) {
        DiskStatus d;
        d.name = i < scenario_.final.disks.size() ? scenario_.final.disks[i] : std::string();
        d.file = disks_[i]->options().file;
        d.sizeBytes = disks_[i]->options().sizeBytes;
        d.stats = disks_[i]->stats();
        d.unplugged = unplugged == i;
        out.push_back(std::move(d));
    }
    return out;
}

Outcome SimBoard::outcome() const {
    std::lock_guard lock(core_->mutex);
    return core_->record.outcome;
}

Outcome SimBoard::waitForOutcome(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(core_->mutex);
    core_->changed.wait_for(lock, timeout,
                            [&] { return core_->record.outcome != Outcome::Running; });
    return core_->record.outcome;
}

bool SimBoard::waitForStage(Stage stage, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(core_->mutex);
    return core_->changed.wait_for(lock, timeout,
                                   [&] { return core_->attached && core_->stage == stage; });
}

// ------------------------------------------------------------------ records

const char* outcomeName(Outcome outcome) noexcept {
    switch (outcome) {
        case Outcome::Running:
            return "running";
        case Outcome::Succeeded:
            return "succeeded";
        case Outcome::Failed:
            return "failed";
    }
    return "?";
}

const FileRecord* BoardRecord::file(std::string_view name) const {
    for (auto it = files.rbegin(); it != files.rend(); ++it) {
        if (it->name == name) {
            return &*it;
        }
    }
    return nullptr;
}

nlohmann::json recordToJson(const BoardRecord& r) {
    using nlohmann::json;
    json j;
    j["stage"] = stageName(r.stage);
    j["enumerations"] = r.enumerations;
    j["boots"] = r.boots;
    j["runs"] = r.runs;
    j["returnsToRom"] = r.returnsToRom;
    j["outcome"] = outcomeName(r.outcome);
    j["reason"] = r.reason;
    j["secureBoot"] = {{"otpKeyHash", r.secureBoot.otpKeyHash},
                       {"eepromPubkey", r.secureBoot.eepromPubkey},
                       {"jtagLocked", r.secureBoot.jtagLocked},
                       {"devkeyRevoked", r.secureBoot.devkeyRevoked}};
    j["romAttempts"] = json::array();
    for (const auto& a : r.romAttempts) {
        j["romAttempts"].push_back({{"announcedLength", a.announcedLength},
                                    {"signature", a.signatureHex},
                                    {"bootMessageLength", a.bootMessageLength},
                                    {"bootcodeLength", a.bootcodeLength},
                                    {"bootcodeSha256", a.bootcodeSha256},
                                    {"status", a.status},
                                    {"accepted", a.accepted},
                                    {"reason", a.reason},
                                    {"atMs", a.at.count()}});
    }
    j["requests"] = json::array();
    for (const auto& q : r.requests) {
        json e{{"command", q.command},
               {"name", q.name},
               {"collected", q.collected},
               {"atMs", q.at.count()}};
        if (q.reply) {
            e["reply"] = *q.reply;
        }
        j["requests"].push_back(e);
    }
    j["files"] = json::array();
    for (const auto& f : r.files) {
        json e{{"name", f.name},
               {"kind", stepKindName(f.kind)},
               {"receivedBytes", f.receivedBytes},
               {"sha256", f.sha256},
               {"complete", f.complete},
               {"missing", f.missing},
               {"atMs", f.at.count()},
               {"durationMs", f.duration.count()}};
        if (f.reportedSize) {
            e["reportedSize"] = *f.reportedSize;
        }
        if (f.announcedLength) {
            e["announcedLength"] = *f.announcedLength;
        }
        if (f.hashMatches) {
            e["hashMatches"] = *f.hashMatches;
        }
        j["files"].push_back(e);
    }
    j["metadata"] = json::array();
    for (const auto& m : r.metadata) {
        json e{{"key", m.key}, {"wire", m.wire}, {"acked", m.acked}};
        if (m.value) {
            e["value"] = *m.value;
        }
        j["metadata"].push_back(e);
    }
    j["log"] = r.log;
    return j;
}

}  // namespace virtualpi
