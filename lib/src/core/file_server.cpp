#include "rpiboot/core/file_server.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/metadata.hpp"

namespace rpiboot {
namespace {

std::int32_t getLe32(const std::uint8_t* in) {
    const std::uint32_t v = std::uint32_t{in[0]} | std::uint32_t{in[1]} << 8 |
                            std::uint32_t{in[2]} << 16 | std::uint32_t{in[3]} << 24;
    return static_cast<std::int32_t>(v);
}

// Names come from the device: never print them raw.
std::string printable(std::string_view name) {
    std::string out;
    out.reserve(name.size());
    for (unsigned char c : name) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out.push_back(static_cast<char>(c));
        } else {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\x%02x", c);
            out += esc;
        }
    }
    return out;
}

const char* commandName(std::int32_t command) {
    switch (command) {
        case 0:
            return "GetFileSize";
        case 1:
            return "ReadFile";
        case 2:
            return "Done";
        default:
            return "unknown";
    }
}

class Session {
  public:
    Session(Link& link, FileSource& source, BootObserver* observer, FileServerOptions options)
        : link_(link), source_(source), observer_(observer), options_(options) {}

    FileServerResult run() {
        while (true) {
            std::optional<FileRequest> request = receive();
            if (!request) {
                result_.end = SessionEnd::DeviceGone;
                return result_;
            }
            if (auto end = handle(*request)) {
                result_.end = *end;
                return result_;
            }
        }
    }

  private:
    void log(LogLevel level, const std::string& message) {
        if (observer_ != nullptr) {
            observer_->onLog(level, message);
        }
    }

    // nullopt when the board left the bus between requests: the normal end
    // of a session whose board rebooted into what it was served.
    std::optional<FileRequest> receive() {
        if (result_.requests >= options_.maxRequests) {
            throw Error(Errc::Protocol, "board sent more than " +
                                            std::to_string(options_.maxRequests) +
                                            " requests in one session; giving up on it");
        }
        std::array<std::uint8_t, kFileRequestSize> message{};
        std::uint32_t idle = 0;
        while (true) {
            try {
                link_.read(message);
                break;
            } catch (const Error& e) {
                if (e.code() == Errc::DeviceGone || e.code() == Errc::Io) {
                    return std::nullopt;
                }
                if (e.code() == Errc::Timeout && ++idle <= options_.idleTimeoutsAllowed) {
                    log(LogLevel::Debug, "board is quiet, still waiting for its next request");
                    continue;
                }
                throw;
            }
        }
        ++result_.requests;
        return parseFileRequest(message);
    }

    std::optional<SessionEnd> handle(const FileRequest& request) {
        const std::string shown = printable(request.name);
        log(LogLevel::Debug,
            std::string("received ") + commandName(request.command) + ": " + shown);
        if (!request.terminated) {
            // docs/protocol.md §6.3: a name without its NUL is refused, not guessed at.
            notFound(shown, "name is not NUL-terminated within 256 bytes");
            return std::nullopt;
        }
        if (request.name.empty()) {
            link_.sendLength(0);
            return SessionEnd::EmptyName;
        }
        if (request.command != static_cast<std::int32_t>(FileCommand::Done) &&
            isMetadataMessage(request.name)) {
            recordMetadata(request.name);
            link_.sendLength(0);
            return std::nullopt;
        }
        switch (request.command) {
            case static_cast<std::int32_t>(FileCommand::GetFileSize):
                getFileSize(request.name, shown);
                break;
            case static_cast<std::int32_t>(FileCommand::ReadFile):
                readFile(request.name, shown);
                break;
            case static_cast<std::int32_t>(FileCommand::Done):
                return SessionEnd::DoneCommand;
            default:
                throw Error(Errc::Protocol,
                            "board sent unknown command " +
                                std::to_string(static_cast<std::uint32_t>(request.command)) +
                                " (file name \"" + shown + "\")");
        }
        return std::nullopt;
    }

    // Every reply goes out before the observer hears of it: the board is
    // waiting, and an observer may log or wake other threads (docs/protocol.md §5.3).
    void notFound(const std::string& shown, const std::string& why) {
        open_.reset();
        link_.sendLength(0);
        if (observer_ != nullptr) {
            observer_->onFileLookup(shown, false, 0, why);
        }
    }

    Lookup lookup(const std::string& name, const std::string& shown) {
        Lookup found = source_.lookup(name);
        if (found.found() && found.file->bytes.size() > std::numeric_limits<std::uint32_t>::max()) {
            found.refusal = "file is larger than the protocol's 4 GiB limit";
            found.file.reset();
        }
        if (!found.refusal.empty()) {
            log(LogLevel::Warning, "refused request for \"" + shown + "\": " + found.refusal);
        }
        return found;
    }

    void getFileSize(const std::string& name, const std::string& shown) {
        Lookup found = lookup(name, shown);
        if (!found.found()) {
            notFound(shown, found.refusal);
            return;
        }
        const auto size = static_cast<std::uint32_t>(found.file->bytes.size());
        // Keep what this GetFileSize saw, so the ReadFile that follows sends
        // exactly the bytes whose size was announced, even if the file on
        // disk changes in between.
        open_ = OpenFile{name, std::move(*found.file)};
        link_.sendLength(size);
        if (observer_ != nullptr) {
            observer_->onFileLookup(shown, true, size, open_->file.origin);
        }
    }

    void readFile(const std::string& name, const std::string& shown) {
        std::optional<ServedFile> file;
        if (open_ && open_->name == name) {
            file = std::move(open_->file);
        } else {
            Lookup found = lookup(name, shown);
            if (!found.found()) {
                notFound(shown, found.refusal);
                return;
            }
            file = std::move(found.file);
        }
        open_.reset();
        const auto size = static_cast<std::uint32_t>(file->bytes.size());
        // The reply (the announced length) goes out first: the observer may
        // wake other threads, and the board is waiting for this answer.
        link_.sendLength(size);
        if (observer_ != nullptr) {
            observer_->onTransferStarted(shown, size);
        }
        link_.writeBulk(file->bytes, observer_);
        ++result_.filesServed;
        result_.bytesSent += size;
        if (observer_ != nullptr) {
            observer_->onTransferFinished(shown, size);
        }
    }

    void recordMetadata(const std::string& message) {
        auto entry = parseMetadataMessage(message);
        if (!entry) {
            const std::string why =
                "metadata message without a key or value: \"" + printable(message) + "\"";
            result_.metadataErrors.push_back(why);
            log(LogLevel::Warning, why);
            return;
        }
        if (entry->key == "FACTORY_UUID") {
            try {
                entry->value = decodeFactoryUuid(entry->value);
            } catch (const Error& e) {
                result_.metadataErrors.push_back(e.what());
                log(LogLevel::Warning, e.what());
                return;
            }
        }
        if (observer_ != nullptr) {
            observer_->onMetadata(entry->key, entry->value);
        }
        result_.metadata[entry->key] = entry->value;
    }

    struct OpenFile {
        std::string name;
        ServedFile file;
    };

    Link& link_;
    FileSource& source_;
    BootObserver* observer_;
    FileServerOptions options_;
    FileServerResult result_;
    std::optional<OpenFile> open_;
};

}  // namespace

FileRequest parseFileRequest(std::span<const std::uint8_t, kFileRequestSize> message) {
    FileRequest request;
    request.command = getLe32(message.data());
    const auto field = message.subspan<4, kFileNameFieldSize>();
    const auto nul = std::find(field.begin(), field.end(), std::uint8_t{0});
    request.terminated = nul != field.end();
    request.name.assign(field.begin(), nul);
    return request;
}

FileServer::FileServer(Link& link, FileSource& source, BootObserver* observer,
                       FileServerOptions options)
    : link_(link), source_(source), observer_(observer), options_(options) {}

FileServerResult FileServer::run() {
    return Session(link_, source_, observer_, options_).run();
}

}  // namespace rpiboot
