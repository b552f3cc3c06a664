// Logging for rpibootd: structured journald entries and readable stderr lines.
//
// Under systemd (stderr is the journal stream) every entry goes to the journal
// through sd-journal with the fields PORT, CHIP, SERIAL, STAGE and PROFILE, so
// `journalctl PORT=1-1.3` finds one board's story. In the foreground it
// prints one readable line per entry on stderr instead. Thread-safe: board
// workers log directly. It never throws and never blocks on the journal.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "rpiboot/core/observer.hpp"

namespace rpibootd {

using rpiboot::LogLevel;

// Stable MESSAGE_IDs of the entries a station watches for, so that
// `journalctl MESSAGE_ID=...` finds them; systemd/rpibootd.catalog explains
// each one. Never change a value: scripts and alerts match on it.
inline constexpr const char* kMessageBootStarted = "677b4c0471d14497a2a0d1ba921d1eae";
inline constexpr const char* kMessageBootFinished = "8180813a1bcc4345860c058350c1cf22";
inline constexpr const char* kMessageBootFailed = "8a00d4ce41064535b7083ce804913060";
inline constexpr const char* kMessageBoardHeld = "73ddb0c50e1a49cda9882f9407542867";

struct LogFields {
    std::string port;
    std::string chip;
    std::string serial;
    std::string stage;
    std::string profile;
    std::string messageId;  // one of kMessage*, or empty

    LogFields withMessageId(std::string id) const {
        LogFields f = *this;
        f.messageId = std::move(id);
        return f;
    }
};

inline LogFields portFields(std::string port) {
    LogFields f;
    f.port = std::move(port);
    return f;
}

struct LogTargets {
    bool journal = false;
    bool stderrLines = true;
    // 0: info and above; 1 (-v): debug; 2 (-vv): debug and progress chatter.
    int verbosity = 0;
};

// Journal when stderr is connected to journald ($JOURNAL_STREAM), else stderr.
LogTargets detectLogTargets(int verbosity);

class Logger {
  public:
    explicit Logger(LogTargets targets) : targets_(targets) {}

    bool enabled(LogLevel level) const noexcept;
    void log(LogLevel level, std::string_view message, const LogFields& fields = {});

    void error(std::string_view m, const LogFields& f = {}) { log(LogLevel::Error, m, f); }
    void warning(std::string_view m, const LogFields& f = {}) { log(LogLevel::Warning, m, f); }
    void info(std::string_view m, const LogFields& f = {}) { log(LogLevel::Info, m, f); }
    void debug(std::string_view m, const LogFields& f = {}) { log(LogLevel::Debug, m, f); }

  private:
    void toJournal(LogLevel level, std::string_view message, const LogFields& fields);
    void toStderr(LogLevel level, std::string_view message, const LogFields& fields);

    LogTargets targets_;
    std::mutex stderrMutex_;
};

}  // namespace rpibootd
