// Fuzz target: a whole second-stage FileServer session (file_server.hpp).
//
// The fuzzer plays the board. A small Transport answers each control-IN read
// from the input and records what the host writes; a reference model of
// docs/protocol.md §5, driven by the same input, says what the host should have
// written. Any difference, any exception other than rpiboot::Error, or an
// error the model did not expect, is a crash.
//
// Input: one option byte, then events, each introduced by a kind byte:
//   0x00-0xDF  the board answers with a 260-byte request (the next 260 input
//              bytes, NUL-padded when the input runs out)
//   0xE0-0xE7  the read times out          0xE8-0xEB  the board left the bus
//   0xEC-0xEF  the read fails with I/O     0xF0-0xF3  the endpoint stalls
//   0xF4-0xF7  a short answer (next byte: its length mod 260)
//   0xF8-0xFB  the host's next control OUT fails (then another event follows)
//   0xFC-0xFF  the host's next bulk OUT fails (then another event follows)
// The end of the input is the board leaving the bus.
// Option byte: bits 0-1 consecutive timeouts allowed; bit 7 set: at most
// (bits 2-6) + 1 requests.
#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <vector>

#include "fuzz_support.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/core/file_server.hpp"
#include "rpiboot/core/link.hpp"
#include "rpiboot/core/metadata.hpp"
#include "rpiboot/core/transport.hpp"
#include "rpiboot/firmware/request_name.hpp"

namespace rpiboot::fuzz {
namespace {

// ---- the files a board can ask for --------------------------------------

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) {
        bytes[i] = static_cast<std::uint8_t>(seed + i * 31 + (i >> 8));
    }
    return bytes;
}

struct StaticFiles {
    std::map<std::string, std::vector<std::uint8_t>, std::less<>> files;
    // Announced as larger than the protocol's 32-bit sizes; its bytes must
    // never be read (ASan reports it if they are).
    std::array<std::uint8_t, 16> hugeBacking{};

    StaticFiles() {
        files["config.txt"] = pattern(238, 1);
        files["start4.elf"] = pattern(2 * kBulkChunkSize + 1234, 2);  // three bulk chunks
        files["bootcode4.bin"] = pattern(kBulkChunkSize, 3);          // exactly one chunk
        files["empty.txt"] = {};
        files["overlays/x.dtbo"] = pattern(10, 4);
        files["*not-metadata"] = pattern(5, 5);  // only reachable with command 2
    }
};

const StaticFiles& staticFiles() {
    static const StaticFiles files;
    return files;
}

// A FileSource over StaticFiles, plus "changing.bin", whose size changes at
// every lookup (a file rewritten on disk between requests) and "huge.bin".
// The session under test and the model each own one, so both see the same
// sequence of answers as long as they look up the same names in the same
// order.
class ScriptedSource final : public FileSource {
  public:
    Lookup lookup(std::string_view name) override {
        Lookup result;
        if (auto refusal = requestNameRefusal(name)) {
            result.refusal = *refusal;
            return result;
        }
        const StaticFiles& all = staticFiles();
        if (name == "changing.bin") {
            ++changes_;
            auto bytes = std::make_shared<std::vector<std::uint8_t>>(
                pattern(changes_ * 977 % 40000, static_cast<std::uint8_t>(changes_)));
            const std::span<const std::uint8_t> view(*bytes);
            result.file = ServedFile{bytes, view, "changing.bin#" + std::to_string(changes_)};
            return result;
        }
        if (name == "huge.bin") {
            const std::span<const std::uint8_t> view(all.hugeBacking.data(),
                                                     (std::size_t{1} << 32) + 5);
            result.file = ServedFile{nullptr, view, "huge.bin"};
            return result;
        }
        if (const auto it = all.files.find(name); it != all.files.end()) {
            result.file = ServedFile{nullptr, it->second, it->first};
        }
        return result;
    }

  private:
    std::uint32_t changes_ = 0;
};

// ---- the input, as a sequence of board events ----------------------------

enum class EventKind { Request, Timeout, Gone, Io, Stall, Short };

struct Event {
    EventKind kind = EventKind::Gone;
    std::array<std::uint8_t, kFileRequestSize> request{};
    std::size_t shortLength = 0;
    bool failNextControlOut = false;
    bool failNextBulkOut = false;
};

Event nextEvent(FuzzInput& in) {
    Event event;
    while (!in.empty()) {
        const std::uint8_t kind = in.byte();
        if (kind < 0xE0) {
            event.kind = EventKind::Request;
            const auto bytes = in.take(kFileRequestSize);
            std::copy(bytes.begin(), bytes.end(), event.request.begin());
            return event;
        }
        if (kind >= 0xF8) {
            (kind >= 0xFC ? event.failNextBulkOut : event.failNextControlOut) = true;
            continue;
        }
        if (kind < 0xE8) {
            event.kind = EventKind::Timeout;
        } else if (kind < 0xEC) {
            event.kind = EventKind::Gone;
        } else if (kind < 0xF0) {
            event.kind = EventKind::Io;
        } else if (kind < 0xF4) {
            event.kind = EventKind::Stall;
        } else {
            event.kind = EventKind::Short;
            event.shortLength = in.byte() % kFileRequestSize;
        }
        return event;
    }
    event.kind = EventKind::Gone;  // input exhausted: the board has gone
    return event;
}

struct HostWrite {
    std::uint32_t announced = 0;
    std::vector<std::uint8_t> bulk;
    bool operator==(const HostWrite&) const = default;
};

// ---- the transport the session under test talks to -----------------------

class BoardTransport final : public Transport {
  public:
    explicit BoardTransport(FuzzInput input) : input_(input) {}

    void controlOutLength(std::uint32_t length, Milliseconds /*timeout*/) override {
        if (failControlOut_) {
            failControlOut_ = false;
            throw Error(Errc::Stall, "fuzz: control OUT stalled");
        }
        writes_.push_back(HostWrite{length, {}});
    }

    std::size_t controlIn(std::span<std::uint8_t> buffer, Milliseconds /*timeout*/) override {
        FUZZ_CHECK(buffer.size() == kFileRequestSize, "the file server reads 260-byte requests");
        ++reads_;
        const Event event = nextEvent(input_);
        failControlOut_ = failControlOut_ || event.failNextControlOut;
        failBulkOut_ = failBulkOut_ || event.failNextBulkOut;
        switch (event.kind) {
            case EventKind::Request:
                std::copy(event.request.begin(), event.request.end(), buffer.begin());
                return buffer.size();
            case EventKind::Timeout:
                throw Error(Errc::Timeout, "fuzz: board quiet");
            case EventKind::Gone:
                throw Error(Errc::DeviceGone, "fuzz: board left");
            case EventKind::Io:
                throw Error(Errc::Io, "fuzz: I/O error");
            case EventKind::Stall:
                throw Error(Errc::Stall, "fuzz: IN stalled");
            case EventKind::Short:
                return event.shortLength;
        }
        return 0;
    }

    void bulkOut(std::span<const std::uint8_t> chunk, Milliseconds /*timeout*/) override {
        FUZZ_CHECK(!writes_.empty(), "bulk data without a control OUT announcing it");
        FUZZ_CHECK(!chunk.empty() && chunk.size() <= kBulkChunkSize, "bulk chunk size");
        HostWrite& write = writes_.back();
        FUZZ_CHECK(write.bulk.size() + chunk.size() <= write.announced,
                   "more bulk bytes than the control OUT announced");
        if (failBulkOut_) {
            failBulkOut_ = false;
            throw Error(Errc::DeviceGone, "fuzz: bulk OUT failed");
        }
        write.bulk.insert(write.bulk.end(), chunk.begin(), chunk.end());
    }

    const std::vector<HostWrite>& writes() const { return writes_; }
    std::size_t reads() const { return reads_; }

  private:
    FuzzInput input_;
    std::vector<HostWrite> writes_;
    std::size_t reads_ = 0;
    bool failControlOut_ = false;
    bool failBulkOut_ = false;
};

class CheckingObserver final : public BootObserver {
  public:
    void onTransferStarted(std::string_view /*name*/, std::uint64_t size) override {
        FUZZ_CHECK(!active_, "transfer started while another was running");
        active_ = true;
        total_ = size;
        sent_ = 0;
    }
    void onTransferProgress(std::uint64_t sent, std::uint64_t total) override {
        FUZZ_CHECK(active_ && total == total_ && sent > sent_ && sent <= total,
                   "progress must grow towards the announced total");
        sent_ = sent;
    }
    void onTransferFinished(std::string_view /*name*/, std::uint64_t size) override {
        FUZZ_CHECK(active_ && size == total_ && sent_ == total_, "finished before all was sent");
        active_ = false;
    }

  private:
    bool active_ = false;
    std::uint64_t total_ = 0;
    std::uint64_t sent_ = 0;
};

// ---- the reference model (docs/protocol.md §5, file_server.hpp) ---------------

enum class Outcome { Ends, Throws };

struct Expected {
    Outcome outcome = Outcome::Ends;
    SessionEnd end = SessionEnd::DeviceGone;
    std::vector<HostWrite> writes;
    std::size_t reads = 0;
    std::uint32_t requests = 0;
    std::uint32_t filesServed = 0;
    std::uint64_t bytesSent = 0;
    std::map<std::string, std::string> metadata;
    std::size_t metadataErrors = 0;
};

class Model {
  public:
    Model(FuzzInput input, FileServerOptions options) : input_(input), options_(options) {}

    Expected run() {
        while (true) {
            if (expected_.requests >= options_.maxRequests) {
                return throws();
            }
            std::optional<Event> request = receive();
            if (!request) {
                return expected_;  // outcome already decided by receive()
            }
            ++expected_.requests;
            if (!handle(request->request)) {
                return expected_;
            }
        }
    }

  private:
    Expected throws() {
        expected_.outcome = Outcome::Throws;
        return expected_;
    }

    // A request event, or nullopt with the outcome set.
    std::optional<Event> receive() {
        std::uint32_t idle = 0;
        while (true) {
            ++expected_.reads;
            const Event event = nextEvent(input_);
            failControlOut_ = failControlOut_ || event.failNextControlOut;
            failBulkOut_ = failBulkOut_ || event.failNextBulkOut;
            switch (event.kind) {
                case EventKind::Request:
                    return event;
                case EventKind::Timeout:
                    if (++idle <= options_.idleTimeoutsAllowed) {
                        continue;
                    }
                    throws();
                    return std::nullopt;
                case EventKind::Gone:
                case EventKind::Io:
                    expected_.outcome = Outcome::Ends;
                    expected_.end = SessionEnd::DeviceGone;
                    return std::nullopt;
                case EventKind::Stall:
                case EventKind::Short:
                    throws();
                    return std::nullopt;
            }
        }
    }

    // false when the session ends with this request (outcome set).
    bool write(std::span<const std::uint8_t> bytes, std::uint32_t announced) {
        if (failControlOut_) {
            failControlOut_ = false;
            throws();
            return false;
        }
        HostWrite w{announced, {}};
        if (!bytes.empty() && failBulkOut_) {
            failBulkOut_ = false;
            // The first chunk never arrived; later ones were never sent.
            expected_.writes.push_back(w);
            throws();
            return false;
        }
        w.bulk.assign(bytes.begin(), bytes.end());
        expected_.writes.push_back(std::move(w));
        return true;
    }

    bool ack(std::uint32_t length) { return write({}, length); }

    std::optional<ServedFile> find(const std::string& name) {
        Lookup found = source_.lookup(name);
        if (!found.found() || found.file->bytes.size() > 0xffffffffU) {
            return std::nullopt;
        }
        return std::move(found.file);
    }

    bool handle(const std::array<std::uint8_t, kFileRequestSize>& request) {
        const auto command = static_cast<std::int32_t>(
            std::uint32_t{request[0]} | std::uint32_t{request[1]} << 8 |
            std::uint32_t{request[2]} << 16 | std::uint32_t{request[3]} << 24);
        const auto field = std::span<const std::uint8_t>(request).subspan(4);
        const auto nul = std::find(field.begin(), field.end(), std::uint8_t{0});
        const std::string name(field.begin(), nul);
        if (nul == field.end()) {  // refused, answered as not found
            open_.reset();
            return ack(0);
        }
        if (name.empty()) {
            if (ack(0)) {
                expected_.end = SessionEnd::EmptyName;
            }
            return false;
        }
        if (name[0] == '*' && command != 2) {
            recordMetadata(name);
            return ack(0);
        }
        switch (command) {
            case 0: {
                auto file = find(name);
                if (!file) {
                    open_.reset();
                    return ack(0);
                }
                const auto size = static_cast<std::uint32_t>(file->bytes.size());
                open_.emplace(name, std::move(*file));
                return ack(size);
            }
            case 1: {
                std::optional<ServedFile> file;
                if (open_ && open_->first == name) {
                    file = std::move(open_->second);
                } else {
                    file = find(name);
                }
                open_.reset();
                if (!file) {
                    return ack(0);
                }
                const auto size = static_cast<std::uint32_t>(file->bytes.size());
                if (!write(file->bytes, size)) {
                    return false;
                }
                ++expected_.filesServed;
                expected_.bytesSent += size;
                return true;
            }
            case 2:
                expected_.end = SessionEnd::DoneCommand;
                return false;
            default:
                throws();
                return false;
        }
    }

    void recordMetadata(const std::string& message) {
        const auto keyEnd = message.find('*', 1);
        if (keyEnd == std::string::npos || keyEnd == 1) {
            ++expected_.metadataErrors;
            return;
        }
        std::string value = message.substr(keyEnd + 1);
        value = value.substr(0, value.find('*'));
        if (value.empty()) {
            ++expected_.metadataErrors;
            return;
        }
        const std::string key = message.substr(1, keyEnd - 1);
        if (key == "FACTORY_UUID") {
            try {
                value = decodeFactoryUuid(value);
            } catch (const Error&) {
                ++expected_.metadataErrors;
                return;
            }
        }
        expected_.metadata[key] = value;
    }

    FuzzInput input_;
    FileServerOptions options_;
    ScriptedSource source_;
    Expected expected_;
    std::optional<std::pair<std::string, ServedFile>> open_;
    bool failControlOut_ = false;
    bool failBulkOut_ = false;
};

std::string describe(const Expected& e) {
    return "model: " + std::string(e.outcome == Outcome::Throws ? "throws" : "ends") + " after " +
           std::to_string(e.reads) + " reads, " + std::to_string(e.writes.size()) + " writes, " +
           std::to_string(e.requests) + " requests";
}

}  // namespace

int fileServerOne(const std::uint8_t* data, std::size_t size) {
    FuzzInput input(std::span<const std::uint8_t>(data, size));
    const std::uint8_t optionByte = input.byte();
    FileServerOptions options;
    options.idleTimeoutsAllowed = optionByte & 0x3U;
    if ((optionByte & 0x80U) != 0) {
        options.maxRequests = ((optionByte >> 2) & 0x1fU) + 1;
    }

    const Expected expected = Model(input, options).run();

    BoardTransport transport(input);
    Link link(transport, TransferTimeouts{});
    ScriptedSource source;
    CheckingObserver observer;
    FileServer server(link, source, &observer, options);
    std::optional<FileServerResult> result;
    try {
        result = server.run();
    } catch (const Error& error) {
        FUZZ_CHECK(expected.outcome == Outcome::Throws,
                   "unexpected error: " + std::string(error.what()) + "; " + describe(expected));
    }

    FUZZ_CHECK(transport.reads() == expected.reads,
               "reads: " + std::to_string(transport.reads()) + "; " + describe(expected));
    FUZZ_CHECK(transport.writes().size() == expected.writes.size(),
               "writes: " + std::to_string(transport.writes().size()) + "; " + describe(expected));
    for (std::size_t i = 0; i < expected.writes.size(); ++i) {
        const HostWrite& got = transport.writes()[i];
        const HostWrite& want = expected.writes[i];
        FUZZ_CHECK(got == want, "write " + std::to_string(i) + ": announced " +
                                    std::to_string(got.announced) + " with " +
                                    std::to_string(got.bulk.size()) + " bulk bytes, model " +
                                    std::to_string(want.announced) + " with " +
                                    std::to_string(want.bulk.size()));
    }
    if (!result) {
        return 0;
    }
    FUZZ_CHECK(expected.outcome == Outcome::Ends, "session ended normally; " + describe(expected));
    FUZZ_CHECK(result->end == expected.end, "end reason differs from the model");
    FUZZ_CHECK(result->requests == expected.requests, "request count");
    FUZZ_CHECK(result->filesServed == expected.filesServed, "files served");
    FUZZ_CHECK(result->bytesSent == expected.bytesSent, "bytes sent");
    FUZZ_CHECK(result->metadata == expected.metadata, "metadata recorded");
    FUZZ_CHECK(result->metadataErrors.size() == expected.metadataErrors, "metadata errors");
    return 0;
}

}  // namespace rpiboot::fuzz

RPIBOOT_FUZZ_ENTRY(fileServerOne)
