#include "journal.hpp"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

namespace rpibootd {

namespace {

int syslogPriority(LogLevel level) {
    switch (level) {
        case LogLevel::Error:
            return 3;
        case LogLevel::Warning:
            return 4;
        case LogLevel::Info:
            return 6;
        case LogLevel::Debug:
            return 7;
    }
    return 6;
}

bool stderrIsJournal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr) {
        return false;
    }
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) {
        return false;
    }
    // "<device>:<inode>" of the stream systemd connected us to.
    char* end = nullptr;
    errno = 0;
    const unsigned long long dev = std::strtoull(stream, &end, 10);
    if (errno != 0 || end == stream || *end != ':') {
        return false;
    }
    const char* inoText = end + 1;
    const unsigned long long ino = std::strtoull(inoText, &end, 10);
    if (errno != 0 || end == inoText || *end != '\0') {
        return false;
    }
    return dev == static_cast<unsigned long long>(st.st_dev) &&
           ino == static_cast<unsigned long long>(st.st_ino);
}

std::string clockPrefix() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm local{};
    ::localtime_r(&t, &local);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d", local.tm_hour, local.tm_min, local.tm_sec,
                  static_cast<int>(ms));
    return buf;
}

}  // namespace

LogTargets detectLogTargets(int verbosity) {
    LogTargets t;
    t.verbosity = verbosity;
    t.journal = stderrIsJournal();
    t.stderrLines = !t.journal;
    return t;
}

bool Logger::enabled(LogLevel level) const noexcept {
    return level != LogLevel::Debug || targets_.verbosity >= 1;
}

void Logger::log(LogLevel level, std::string_view message, const LogFields& fields) {
    if (!enabled(level)) {
        return;
    }
    if (targets_.journal) {
        toJournal(level, message, fields);
    }
    if (targets_.stderrLines) {
        toStderr(level, message, fields);
    }
}

void Logger::toJournal(LogLevel level, std::string_view message, const LogFields& fields) {
    std::vector<std::string> entries;
    entries.reserve(8);
    entries.push_back("MESSAGE=" + std::string(message));
    entries.push_back("PRIORITY=" + std::to_string(syslogPriority(level)));
    entries.emplace_back("SYSLOG_IDENTIFIER=rpibootd");
    const std::pair<const char*, const std::string*> named[] = {
        {"PORT=", &fields.port},       {"CHIP=", &fields.chip},
        {"SERIAL=", &fields.serial},   {"STAGE=", &fields.stage},
        {"PROFILE=", &fields.profile}, {"MESSAGE_ID=", &fields.messageId},
    };
    for (const auto& [key, value] : named) {
        if (!value->empty()) {
            entries.push_back(key + *value);
        }
    }
    std::vector<iovec> iov;
    iov.reserve(entries.size());
    for (auto& e : entries) {
        iov.push_back(iovec{e.data(), e.size()});
    }
    // A journal that cannot be reached must not take the daemon down.
    sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

void Logger::toStderr(LogLevel level, std::string_view message, const LogFields& fields) {
    std::string line = " ";
    if (!fields.port.empty()) {
        line += fields.port;
        if (!fields.chip.empty()) {
            line += " " + fields.chip;
        }
        line += ": ";
    }
    if (level == LogLevel::Error) {
        line += "error: ";
    } else if (level == LogLevel::Warning) {
        line += "warning: ";
    }
    line += message;
    line += '\n';
    std::lock_guard lock(stderrMutex_);
    // Stamped under the lock, so lines from different boards stay in order.
    line.insert(0, clockPrefix());
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

}  // namespace rpibootd
