// Scenario runner: drives the real rpibootd process with virtual boards and
// measures what the host adds on top of the boards' own time, plus an
// in-process run of the engine on a shared, bandwidth-limited virtual bus.
//
// It prints one table (figure, measured, target, verdict), optionally with
// the hot-path figures of bench_hotpaths (--hotpaths-json). Figures are
// printed, never asserted; --check fails the run only on gross regressions
// measured as ratios within this one run (and on boards that did not boot).
// It never touches real USB: the daemon runs with --no-udev --bus none.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "rpiboot/boot/boot.hpp"
#include "rpiboot/core/device.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/firmware/firmware_set.hpp"
#include "virtualpi/bandwidth.hpp"
#include "virtualpi/builtin_scenarios.hpp"
#include "virtualpi/scenario.hpp"
#include "virtualpi/virtual_bus.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Settings {
    fs::path daemon;
    fs::path firmware;  // base directory with msd/ (the daemon's --firmware-dir)
    fs::path work;
    std::vector<unsigned> counts{1, 8, 32, 64};
    unsigned rssBoards = 32;
    unsigned idleSeconds = 60;
    unsigned busBoards = 8;
    unsigned repeat = 1;  // daemon runs per N; the one with the median total time is kept
    std::uint64_t busFileSize = 8u << 20;
    // Pipelining run: one big file per board, 1 vs N bulk transfers in
    // flight, on a bus whose transfers take `completionLatency` to complete.
    std::uint64_t pipeFileSize = 32u << 20;
    std::vector<unsigned> pipeBoards{1, 8};
    std::chrono::microseconds completionLatency{200};
    std::optional<fs::path> hotpathsJson;
    bool check = false;
    std::vector<std::string> daemonExtra;  // --daemon-arg, e.g. --bulk-transfers-in-flight=1
    // Board-side figures of the latency and concurrency runs.
    milliseconds romReset{200};
    milliseconds secondStageStart{100};
    std::uint64_t boardRate = 40'000'000;
};

// ---------------------------------------------------------------- table

struct Row {
    std::string figure;
    std::string measured;
    std::string target;
    std::string verdict;  // "met", "MISSED", "report"
};

std::string fixed(double value, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    return buf;
}

void printTable(const std::vector<Row>& rows) {
    std::size_t w0 = 6, w1 = 8, w2 = 6;
    for (const auto& r : rows) {
        w0 = std::max(w0, r.figure.size());
        w1 = std::max(w1, r.measured.size());
        w2 = std::max(w2, r.target.size());
    }
    auto line = [&](const std::string& a, const std::string& b, const std::string& c,
                    const std::string& d) {
        std::printf("| %-*s | %-*s | %-*s | %-6s |\n", static_cast<int>(w0), a.c_str(),
                    static_cast<int>(w1), b.c_str(), static_cast<int>(w2), c.c_str(), d.c_str());
    };
    line("figure", "measured", "target", "verdict");
    std::printf("|%s|%s|%s|%s|\n", std::string(w0 + 2, '-').c_str(),
                std::string(w1 + 2, '-').c_str(), std::string(w2 + 2, '-').c_str(),
                std::string(8, '-').c_str());
    for (const auto& r : rows) {
        line(r.figure, r.measured, r.target, r.verdict);
    }
    std::fflush(stdout);
}

// ------------------------------------------------------- daemon process

struct ProcessRun {
    int exitStatus = -1;
    double wallMs = 0;
    double cpuMs = 0;    // user + system of the daemon process (all threads)
    long maxRssKb = 0;   // VmHWM / ru_maxrss
    std::string output;  // stdout + stderr
    std::vector<std::pair<double, std::string>> lines;  // (daemon clock ms, text)
};

// "HH:MM:SS.mmm rest" -> milliseconds of the day.
std::optional<double> stampOf(const std::string& line) {
    int h = 0, m = 0, s = 0, ms = 0;
    if (line.size() < 12 || std::sscanf(line.c_str(), "%2d:%2d:%2d.%3d", &h, &m, &s, &ms) != 4) {
        return std::nullopt;
    }
    return ((h * 60.0 + m) * 60.0 + s) * 1000.0 + ms;
}

class DaemonProcess {
  public:
    explicit DaemonProcess(const std::vector<std::string>& args) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe failed");
        }
        start_ = Clock::now();
        pid_ = ::fork();
        if (pid_ < 0) {
            throw std::runtime_error("fork failed");
        }
        if (pid_ == 0) {
            ::dup2(fds[1], 1);
            ::dup2(fds[1], 2);
            ::setenv("TZ", "UTC", 1);
            ::unsetenv("JOURNAL_STREAM");
            ::unsetenv("NOTIFY_SOCKET");
            ::unsetenv("WATCHDOG_USEC");
            std::vector<char*> argv;
            for (const auto& a : args) {
                argv.push_back(const_cast<char*>(a.c_str()));
            }
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        out_ = fds[0];
    }
    ~DaemonProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (out_ >= 0) {
            ::close(out_);
        }
    }
    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;

    pid_t pid() const { return pid_; }

    // Reads until `text` appears; false when the daemon ended or time ran out.
    bool waitFor(const std::string& text, milliseconds limit) {
        const auto deadline = Clock::now() + limit;
        while (run_.output.find(text) == std::string::npos) {
            if (!readSome(deadline)) {
                return false;
            }
        }
        return true;
    }

    // Reads everything until the daemon exits (killed after `limit`).
    ProcessRun finish(milliseconds limit) {
        const auto deadline = Clock::now() + limit;
        while (readSome(deadline)) {
        }
        if (Clock::now() >= deadline) {
            ::kill(pid_, SIGKILL);
        }
        int status = 0;
        rusage usage{};
        ::wait4(pid_, &status, 0, &usage);
        pid_ = -1;
        run_.wallMs = std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
        run_.exitStatus = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        run_.cpuMs = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000.0 +
                     static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000.0;
        run_.maxRssKb = usage.ru_maxrss;
        std::istringstream in(run_.output);
        std::string line;
        while (std::getline(in, line)) {
            if (auto t = stampOf(line)) {
                run_.lines.emplace_back(*t, line.substr(12));
            }
        }
        return run_;
    }

  private:
    bool readSome(Clock::time_point deadline) {
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            return false;
        }
        pollfd p{out_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
            return false;
        }
        char buf[65536];
        const ssize_t n = ::read(out_, buf, sizeof buf);
        if (n <= 0) {
            return false;
        }
        run_.output.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int out_ = -1;
    Clock::time_point start_;
    ProcessRun run_;
};

std::vector<std::string> daemonArgs(const Settings& s, const fs::path& config) {
    std::vector<std::string> args{s.daemon.string(), "-c",   config.string(),  "--no-udev",
                                  "--bus",           "none", "--firmware-dir", s.firmware.string()};
    args.insert(args.end(), s.daemonExtra.begin(), s.daemonExtra.end());
    return args;
}

fs::path writeConfig(const Settings& s) {
    const fs::path config = s.work / "rpibootd.json";
    std::ofstream(config) << R"({"default_profile": "msd"})" << '\n';
    return config;
}

// The built-in msd scenario of a BCM2711 with fixed board-side delays and rate.
fs::path writeScenario(const Settings& s) {
    auto scenario = virtualpi::builtinScenario(rpiboot::Chip::Bcm2711, virtualpi::Profile::Msd);
    scenario.name = "bench-2711-msd";
    scenario.timing.romResetDelay = s.romReset;
    scenario.timing.secondStageStartDelay = s.secondStageStart;
    scenario.bulkBytesPerSecond = s.boardRate;
    const fs::path file = s.work / "bench-2711-msd.json";
    std::ofstream(file) << virtualpi::scenarioToJson(scenario).dump(2) << '\n';
    return file;
}

std::uint64_t fileSize(const fs::path& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    return ec ? 0 : size;
}

struct BoardTimes {
    double plug = -1;
    double booted = -1;
    std::uint64_t bytesServed = 0;
    bool failed = false;
};

struct BootRun {
    unsigned boards = 0;
    unsigned booted = 0;
    int exitStatus = -1;
    double totalMs = 0;               // first plug -> last "booted"
    std::vector<double> hostAddedMs;  // per board
    double cpuMs = 0;
    long maxRssKb = 0;
    std::string output;
};

BootRun bootBoards(const Settings& s, const fs::path& config, const fs::path& scenario,
                   unsigned boards) {
    auto args = daemonArgs(s, config);
    args.insert(args.end(), {"--virtual", scenario.string() + ":" + std::to_string(boards),
                             "--exit-when-done"});
    DaemonProcess daemon(args);
    const ProcessRun run = daemon.finish(milliseconds(120'000 + 2'000 * boards));

    std::map<std::string, BoardTimes> times;
    for (const auto& [t, text] : run.lines) {
        // " 1-3 BCM2711: booted: 2 file(s), 536536 bytes served; ..." and
        // " 1-3: plugged in a virtual BCM2711 (scenario ...)"
        const auto colon = text.find(':');
        if (colon == std::string::npos || text.size() < 2) {
            continue;
        }
        std::string port = text.substr(1, colon - 1);
        if (const auto space = port.find(' '); space != std::string::npos) {
            port.resize(space);
        }
        const std::string rest = text.substr(colon + 1);
        if (rest.find("plugged in a virtual") != std::string::npos) {
            times[port].plug = t;
        } else if (rest.rfind(" booted: ", 0) == 0) {
            times[port].booted = t;
            const auto comma = rest.find("), ");
            if (comma != std::string::npos) {
                times[port].bytesServed = std::strtoull(rest.c_str() + comma + 3, nullptr, 10);
            }
        } else if (rest.find("error: ") != std::string::npos) {
            times[port].failed = true;
        }
    }

    const std::uint64_t bootcode = fileSize(s.firmware / "msd/2711/bootcode4.bin");
    const double ownFixed = static_cast<double>(s.romReset.count() + s.secondStageStart.count());
    BootRun out;
    out.boards = boards;
    out.exitStatus = run.exitStatus;
    out.cpuMs = run.cpuMs;
    out.maxRssKb = run.maxRssKb;
    out.output = run.output;
    double first = 1e18, last = -1e18;
    for (const auto& [port, bt] : times) {
        if (bt.plug < 0 || bt.booted < 0) {
            continue;
        }
        double plug = bt.plug, booted = bt.booted;
        if (booted < plug) {
            booted += 86'400'000.0;  // midnight
        }
        ++out.booted;
        first = std::min(first, plug);
        last = std::max(last, booted);
        const double dataMs = static_cast<double>(bootcode + bt.bytesServed) * 1000.0 /
                              static_cast<double>(s.boardRate);
        out.hostAddedMs.push_back(booted - plug - ownFixed - dataMs);
    }
    out.totalMs = out.booted > 0 ? last - first : 0;
    return out;
}

// ------------------------------------------------------------------ idle

struct ThreadSample {
    std::uint64_t switches = 0;  // voluntary + nonvoluntary, all threads
    std::uint64_t cpuNs = 0;     // schedstat run time, all threads
    unsigned threads = 0;
};

ThreadSample sampleThreads(pid_t pid) {
    ThreadSample sample;
    const fs::path tasks = fs::path("/proc") / std::to_string(pid) / "task";
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(tasks, ec)) {
        ++sample.threads;
        std::ifstream status(entry.path() / "status");
        std::string key;
        std::uint64_t value = 0;
        std::string line;
        while (std::getline(status, line)) {
            std::istringstream in(line);
            if (in >> key >> value &&
                (key == "voluntary_ctxt_switches:" || key == "nonvoluntary_ctxt_switches:")) {
                sample.switches += value;
            }
        }
        std::ifstream sched(entry.path() / "schedstat");
        std::uint64_t runNs = 0;
        if (sched >> runNs) {
            sample.cpuNs += runNs;
        }
    }
    return sample;
}

struct IdleResult {
    bool started = false;
    std::uint64_t wakeups = 0;
    double cpuPercent = 0;
    unsigned threads = 0;
    long rssKb = 0;
    std::string output;
};

IdleResult measureIdle(const Settings& s, const fs::path& config, bool withUdev) {
    auto args = daemonArgs(s, config);
    if (withUdev) {
        args.erase(std::find(args.begin(), args.end(), "--no-udev"));
    }
    DaemonProcess daemon(args);
    IdleResult result;
    if (!daemon.waitFor(" ready", milliseconds(20'000))) {
        ::kill(daemon.pid(), SIGTERM);
        result.output = daemon.finish(milliseconds(5'000)).output;
        return result;
    }
    std::this_thread::sleep_for(milliseconds(500));  // let start-up settle
    const ThreadSample before = sampleThreads(daemon.pid());
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(s.idleSeconds));
    const ThreadSample after = sampleThreads(daemon.pid());
    const double elapsedNs = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    ::kill(daemon.pid(), SIGTERM);
    const ProcessRun run = daemon.finish(milliseconds(10'000));
    result.started = true;
    result.wakeups = after.switches - before.switches;
    result.cpuPercent = static_cast<double>(after.cpuNs - before.cpuNs) * 100.0 / elapsedNs;
    result.threads = after.threads;
    result.rssKb = run.maxRssKb;
    result.output = run.output;
    return result;
}

// ------------------------------------------- in-process shared-bus run

// A minimal host in the daemon's shape: one thread per enumeration running
// runBootStage on it, driven by the bus's events.
struct BusResult {
    unsigned boards = 0;
    unsigned succeeded = 0;
    std::uint64_t bytes = 0;
    double windowMs = 0;
    double utilisation = 0;  // of the controller's budget over the window
    double hostCpuMsPerBoot = 0;
    std::vector<double> hostAddedMs;  // plug -> last byte, minus own delays and data time
    // The largest file of each board: its bytes over its transfer time
    // (announcing control OUT -> last byte), and all of them over the window
    // from the first one's start to the last one's end.
    std::vector<double> bigFileMBps;
    double bigFileTotalMBps = 0;
    std::string failures;
};

struct BusRunOptions {
    std::uint64_t controllerRate = 0;
    milliseconds romReset{0};
    milliseconds secondStageStart{0};
    std::size_t transfersInFlight = rpiboot::kDefaultBulkTransfersInFlight;
    std::chrono::microseconds completionLatency{0};
};

double threadCpuMs() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

BusResult runSharedBus(const Settings& s, const fs::path& firmwareRoot, unsigned boards,
                       const BusRunOptions& o) {
    const std::uint64_t controllerRate = o.controllerRate;
    const milliseconds romReset = o.romReset;
    const milliseconds secondStageStart = o.secondStageStart;
    auto cache = std::make_shared<rpiboot::FileCache>();
    rpiboot::FirmwareSetConfig config;
    config.root = firmwareRoot;
    const rpiboot::FirmwareSet firmware(config, cache);

    auto scenario = virtualpi::builtinScenario(rpiboot::Chip::Bcm2711, virtualpi::Profile::Msd);
    scenario.bulkBytesPerSecond = s.boardRate;
    scenario.timing.romResetDelay = romReset;
    scenario.timing.secondStageStartDelay = secondStageStart;

    BusResult result;
    result.boards = boards;
    std::mutex mutex;
    std::vector<std::jthread> workers;
    std::map<std::string, double> cpuByPort;
    std::map<std::string, Clock::time_point> plugged;
    {
        virtualpi::BusOptions busOptions;
        busOptions.controllerBytesPerSecond = controllerRate;
        busOptions.transferCompletionLatency = o.completionLatency;
        virtualpi::VirtualBus bus(busOptions);
        rpiboot::BootOptions bootOptions;
        bootOptions.bulkTransfersInFlight = o.transfersInFlight;
        const auto listener = bus.addListener([&](const virtualpi::DeviceEvent& event) {
            if (event.kind != virtualpi::DeviceEventKind::Added) {
                return;
            }
            const auto identity = rpiboot::identifyDevice(event.device.summary);
            if (!identity) {
                return;  // the final identity (mass-storage gadget)
            }
            const auto info = event.device;
            std::lock_guard lock(mutex);
            workers.emplace_back([&, info, id = *identity] {
                const double cpu0 = threadCpuMs();
                try {
                    auto transport = bus.open(info.deviceId);
                    const rpiboot::BoardContext board{id.chip, info.portPath, info.serial};
                    rpiboot::runBootStage(*transport, id, firmware, board, bootOptions);
                } catch (const std::exception& e) {
                    std::lock_guard l(mutex);
                    result.failures += info.portPath + ": " + e.what() + "; ";
                }
                const double cpu = threadCpuMs() - cpu0;
                std::lock_guard l(mutex);
                cpuByPort[info.portPath] += cpu;
            });
        });
        for (unsigned i = 0; i < boards; ++i) {
            const auto now = Clock::now();
            const std::string port = bus.plug(virtualpi::BoardSpec{scenario, {}, {}});
            std::lock_guard lock(mutex);
            plugged[port] = now;
        }
        Clock::time_point first = Clock::time_point::max(), last = Clock::time_point::min();
        Clock::time_point bigFirst = Clock::time_point::max(), bigLast = Clock::time_point::min();
        std::uint64_t bigBytes = 0;
        for (const auto& [port, at] : plugged) {
            const auto board = bus.board(port);
            const auto outcome = board->waitForOutcome(milliseconds(120'000));
            const auto record = board->record();
            if (outcome == virtualpi::Outcome::Succeeded) {
                ++result.succeeded;
            } else {
                result.failures += port + ": " + record.reason + "; ";
            }
            std::uint64_t bytes = 0;
            milliseconds lastByte{0};
            for (const auto& rom : record.romAttempts) {
                bytes += rom.bootcodeLength;
            }
            const virtualpi::FileRecord* big = nullptr;
            for (const auto& f : record.files) {
                bytes += f.receivedBytes;
                lastByte = std::max(lastByte, f.at + f.duration);
                if (big == nullptr || f.receivedBytes > big->receivedBytes) {
                    big = &f;
                }
            }
            if (big != nullptr && big->duration.count() > 0) {
                result.bigFileMBps.push_back(static_cast<double>(big->receivedBytes) / 1e3 /
                                             static_cast<double>(big->duration.count()));
                bigBytes += big->receivedBytes;
                bigFirst = std::min(bigFirst, at + big->at);
                bigLast = std::max(bigLast, at + big->at + big->duration);
            }
            result.bytes += bytes;
            first = std::min(first, at);
            last = std::max(last, at + lastByte);
            const double dataMs =
                static_cast<double>(bytes) * 1000.0 / static_cast<double>(s.boardRate);
            result.hostAddedMs.push_back(static_cast<double>(lastByte.count()) -
                                         static_cast<double>(romReset.count()) -
                                         static_cast<double>(secondStageStart.count()) - dataMs);
        }
        bus.removeListener(listener);
        for (auto& w : workers) {
            w.join();
        }
        result.windowMs = std::chrono::duration<double, std::milli>(last - first).count();
        const double bigMs = std::chrono::duration<double, std::milli>(bigLast - bigFirst).count();
        if (bigBytes > 0 && bigMs > 0) {
            result.bigFileTotalMBps = static_cast<double>(bigBytes) / 1e3 / bigMs;
        }
    }
    double cpu = 0;
    for (const auto& [port, ms] : cpuByPort) {
        cpu += ms;
    }
    result.hostCpuMsPerBoot = boards > 0 ? cpu / boards : 0;
    if (controllerRate > 0 && result.windowMs > 0) {
        result.utilisation = static_cast<double>(result.bytes) /
                             (static_cast<double>(controllerRate) * result.windowMs / 1000.0);
    }
    return result;
}

// A firmware set for the shared-bus run: the real loader, a large start4.elf
// so the data phase dominates.
fs::path makeBusFirmware(const Settings& s) {
    const fs::path root = s.work / "bus-firmware";
    fs::create_directories(root / "2711");
    fs::copy_file(s.firmware / "msd/2711/bootcode4.bin", root / "2711/bootcode4.bin",
                  fs::copy_options::overwrite_existing);
    std::vector<char> bytes(s.busFileSize);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = static_cast<char>(i * 131);
    }
    std::ofstream(root / "2711/start4.elf", std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return root;
}

// ------------------------------------------------------------ helpers

double median(std::vector<double> v) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double maxOf(const std::vector<double>& v) {
    return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}

std::vector<unsigned> parseCounts(const std::string& text) {
    std::vector<unsigned> counts;
    std::istringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        counts.push_back(static_cast<unsigned>(std::stoul(item)));
    }
    return counts;
}

void addHotpathRows(const fs::path& file, std::vector<Row>& rows, std::vector<std::string>& bad) {
    std::ifstream in(file);
    nlohmann::json json;
    try {
        json = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
        bad.push_back("cannot read " + file.string() + ": " + e.what());
        return;
    }
    std::map<std::string, nlohmann::json> byName;
    for (const auto& b : json.at("benchmarks")) {
        byName[b.at("name").get<std::string>()] = b;
    }
    auto ns = [&](const std::string& name) -> std::optional<double> {
        const auto it = byName.find(name);
        if (it == byName.end()) {
            return std::nullopt;
        }
        double t = it->second.at("cpu_time").get<double>();
        const std::string unit = it->second.value("time_unit", "ns");
        if (unit == "us")
            t *= 1e3;
        if (unit == "ms")
            t *= 1e6;
        return t;
    };
    auto rate = [&](const std::string& name) -> std::optional<double> {
        const auto it = byName.find(name);
        if (it == byName.end() || !it->second.contains("bytes_per_second")) {
            return std::nullopt;
        }
        return it->second.at("bytes_per_second").get<double>();
    };
    if (const auto serve = rate("BM_ServeFileResolved")) {
        const bool zeroCopy = byName["BM_ServeFileResolved"].value("zero_copy", 0.0) > 0.5;
        rows.push_back({"file serving in-process, one board (2.2 MB start4.elf)",
                        fixed(*serve / 1e9, 1) + " GB/s" + (zeroCopy ? ", zero-copy" : ", COPIED"),
                        ">= 1 GB/s, no per-request copies",
                        *serve >= 1e9 && zeroCopy ? "met" : "MISSED"});
        if (!zeroCopy) {
            bad.push_back("the file server copied the served bytes");
        }
        if (const auto copy = rate("BM_MemcpyReference")) {
            rows.push_back({"  for scale: one memcpy of the same file",
                            fixed(*copy / 1e9, 1) + " GB/s", "-", "report"});
            if (*serve < *copy) {
                bad.push_back("serving is slower than one memcpy of the file (ratio " +
                              fixed(*serve / *copy, 2) + ")");
            }
        }
    }
    if (byName.count("BM_RequestToReply") != 0) {
        const auto& b = byName["BM_RequestToReply"];
        const double mean = b.value("mean_us", 0.0);
        const double p99 = b.value("p99_us", 0.0);
        rows.push_back({"request read -> reply written, in-process (msd session, " +
                            fixed(b.value("requests", 0.0), 0) + " requests): mean / p99 / max",
                        fixed(mean, 1) + " / " + fixed(p99, 1) + " / " +
                            fixed(b.value("max_us", 0.0), 0) + " us",
                        "p99 <= 100 us", p99 <= 100 ? "met" : "MISSED"});
    }
    const std::pair<const char*, const char*> lookups[] = {
        {"BM_ResolveHit", "resolver lookup, hit (start4.elf)"},
        {"BM_ResolveMissing", "resolver lookup, missing file"},
        {"BM_FileCacheHit", "file cache hit (open+fstat+lookup)"},
        {"BM_TarMemberLookup", "tar member lookup (bootfiles.bin layout)"},
    };
    for (const auto& [name, label] : lookups) {
        if (const auto t = ns(name)) {
            rows.push_back({label, *t >= 1000 ? fixed(*t / 1000, 1) + " us" : fixed(*t, 0) + " ns",
                            "report", "report"});
        }
    }
}

int usage() {
    std::fputs(
        "usage: bench_scenarios --daemon PATH --firmware DIR --work DIR\n"
        "       [--counts 1,8,32,64] [--rss-boards 32] [--idle-seconds 60]\n"
        "       [--bus-boards 8] [--bus-file-mib 8] [--repeat 1] [--hotpaths-json FILE]\n"
        "       [--pipe-file-mib 32 (0: skip)] [--pipe-boards 1,8] [--completion-latency-us 200]\n"
        "       [--daemon-arg ARG]... [--check]\n"
        "DIR (--firmware) holds msd/ with bootcode.bin, start.elf, 2711/bootcode4.bin and\n"
        "2711/start4.elf. --check: exit 1 on gross regressions (ratios within this run).\n",
        stderr);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    Settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                throw std::invalid_argument(a + " needs a value");
            }
            return argv[++i];
        };
        try {
            if (a == "--daemon")
                s.daemon = next();
            else if (a == "--firmware")
                s.firmware = next();
            else if (a == "--work")
                s.work = next();
            else if (a == "--counts")
                s.counts = parseCounts(next());
            else if (a == "--rss-boards")
                s.rssBoards = static_cast<unsigned>(std::stoul(next()));
            else if (a == "--idle-seconds")
                s.idleSeconds = static_cast<unsigned>(std::stoul(next()));
            else if (a == "--bus-boards")
                s.busBoards = static_cast<unsigned>(std::stoul(next()));
            else if (a == "--bus-file-mib")
                s.busFileSize = std::stoull(next()) << 20;
            else if (a == "--hotpaths-json")
                s.hotpathsJson = next();
            else if (a == "--pipe-file-mib")
                s.pipeFileSize = std::stoull(next()) << 20;
            else if (a == "--pipe-boards")
                s.pipeBoards = parseCounts(next());
            else if (a == "--completion-latency-us")
                s.completionLatency = std::chrono::microseconds(std::stoll(next()));
            else if (a == "--check")
                s.check = true;
            else if (a == "--daemon-arg")
                s.daemonExtra.push_back(next());
            else if (a == "--repeat")
                s.repeat = static_cast<unsigned>(std::stoul(next()));
            else
                return usage();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_scenarios: %s\n", e.what());
            return usage();
        }
    }
    if (s.daemon.empty() || s.firmware.empty() || s.work.empty() || s.counts.empty()) {
        return usage();
    }
    fs::create_directories(s.work);
    const fs::path config = writeConfig(s);
    const fs::path scenario = writeScenario(s);

    std::vector<Row> rows;
    std::vector<std::string> bad;  // gross regressions and failures
    if (s.hotpathsJson) {
        addHotpathRows(*s.hotpathsJson, rows, bad);
    }

    // Latency and concurrency through the real daemon.
    std::map<unsigned, BootRun> runs;
    std::vector<unsigned> counts = s.counts;
    if (std::find(counts.begin(), counts.end(), s.rssBoards) == counts.end()) {
        counts.push_back(s.rssBoards);
    }
    for (unsigned n : counts) {
        std::fprintf(stderr, "bench: daemon with %u board(s)...\n", n);
        std::vector<BootRun> tries;
        for (unsigned t = 0; t < std::max(1u, s.repeat); ++t) {
            tries.push_back(bootBoards(s, config, scenario, n));
        }
        std::sort(tries.begin(), tries.end(),
                  [](const BootRun& a, const BootRun& b) { return a.totalMs < b.totalMs; });
        runs[n] = tries[tries.size() / 2];
        const auto& r = runs[n];
        if (r.booted != n || r.exitStatus != 0) {
            bad.push_back(std::to_string(n) + " board(s): " + std::to_string(r.booted) +
                          " booted, daemon exit " + std::to_string(r.exitStatus));
            std::fprintf(stderr, "%s\n", r.output.c_str());
        }
    }
    const std::string delays = std::to_string(s.romReset.count()) + " ms ROM reset + " +
                               std::to_string(s.secondStageStart.count()) +
                               " ms second-stage start, " +
                               fixed(static_cast<double>(s.boardRate) / 1e6, 0) + " MB/s";
    const unsigned smallest = counts.front();
    if (runs.count(smallest) != 0 && runs[smallest].booted > 0) {
        const auto& one = runs[smallest];
        rows.push_back({"host-added latency per board, daemon, N=" + std::to_string(smallest) +
                            " (plug -> booted)",
                        fixed(median(one.hostAddedMs), 1) + " ms", "<= 20 ms",
                        median(one.hostAddedMs) <= 20 ? "met" : "MISSED"});
    }
    if (runs.count(s.rssBoards) != 0 && runs[s.rssBoards].booted > 0) {
        const auto& r = runs[s.rssBoards];
        rows.push_back(
            {"host-added latency per board, daemon, N=" + std::to_string(s.rssBoards) +
                 " (median / max)",
             fixed(median(r.hostAddedMs), 1) + " / " + fixed(maxOf(r.hostAddedMs), 1) + " ms",
             "<= 20 ms", maxOf(r.hostAddedMs) <= 20 ? "met" : "MISSED"});
    }
    const double base = runs.count(smallest) != 0 ? runs[smallest].totalMs : 0;
    for (unsigned n : s.counts) {
        const auto& r = runs[n];
        const double ratio = base > 0 ? r.totalMs / base : 0;
        std::string verdict = "report";
        if (n == 32) {
            verdict = ratio <= 1.3 ? "met" : "MISSED";
        }
        rows.push_back(
            {"total time, N=" + std::to_string(n) + " boards (" + delays + ")",
             fixed(r.totalMs, 0) + " ms = " + fixed(ratio, 2) + "x N=" + std::to_string(smallest),
             n == 32 ? "<= 1.3x at 32" : "-", verdict});
        if (ratio > 3.0) {
            bad.push_back("N=" + std::to_string(n) + " took " + fixed(ratio, 2) +
                          "x the time of N=" + std::to_string(smallest) + " (gross limit 3x)");
        }
    }
    if (runs.count(smallest) != 0) {
        rows.push_back(
            {"CPU time per boot, daemon process incl. virtual boards, N=" +
                 std::to_string(smallest),
             fixed(runs[smallest].cpuMs / std::max(1u, runs[smallest].booted), 1) + " ms",
             "report; lower is better", "report"});
    }
    if (runs.count(s.rssBoards) != 0) {
        const auto& r = runs[s.rssBoards];
        rows.push_back({"CPU time per boot, daemon process incl. virtual boards, N=" +
                            std::to_string(s.rssBoards),
                        fixed(r.cpuMs / std::max(1u, r.booted), 1) + " ms",
                        "report; lower is better", "report"});
        rows.push_back({"peak RSS of the daemon, " + std::to_string(s.rssBoards) +
                            " boards in flight (incl. virtual boards)",
                        fixed(static_cast<double>(r.maxRssKb) / 1024.0, 1) + " MiB", "<= 20 MB",
                        static_cast<double>(r.maxRssKb) * 1024.0 <= 20e6 ? "met" : "MISSED"});
    }

    // In-process engine: shared bus and host-only CPU.
    std::fprintf(stderr, "bench: shared bus, %u board(s) in-process...\n", s.busBoards);
    const fs::path busFirmware = makeBusFirmware(s);
    BusRunOptions shared;
    shared.controllerRate = virtualpi::kHighSpeedBytesPerSecond;
    const BusResult bus = runSharedBus(s, busFirmware, s.busBoards, shared);
    if (bus.succeeded != bus.boards) {
        bad.push_back("shared bus: " + bus.failures);
    }
    rows.push_back({"shared bus: " + std::to_string(bus.boards) + " boards x " +
                        fixed(static_cast<double>(s.boardRate) / 1e6, 0) +
                        " MB/s on one 480 Mb/s controller (" +
                        fixed(static_cast<double>(bus.bytes) / 1e6, 0) + " MB)",
                    fixed(bus.utilisation * 100, 1) + " % used", ">= 90 %",
                    bus.utilisation >= 0.9 ? "met" : "MISSED"});
    if (bus.utilisation < 0.5) {
        bad.push_back("shared bus used below 50 %");
    }
    std::fprintf(stderr, "bench: engine latency, in-process...\n");
    BusRunOptions engineRun;
    engineRun.romReset = s.romReset;
    engineRun.secondStageStart = s.secondStageStart;
    const BusResult engine = runSharedBus(s, s.firmware / "msd", 1, engineRun);
    rows.push_back({"host-added latency, engine in-process (plug -> last byte)",
                    fixed(median(engine.hostAddedMs), 1) + " ms", "<= 20 ms",
                    median(engine.hostAddedMs) <= 20 ? "met" : "MISSED"});
    rows.push_back({"CPU time per boot, host engine only (msd, 2711)",
                    fixed(engine.hostCpuMsPerBoot, 2) + " ms", "report; lower is better",
                    "report"});

    // Pipelining: the same boards and file, 1 transfer in flight (the old
    // sender) and the default, in this run.
    if (s.pipeFileSize > 0 && !s.pipeBoards.empty()) {
        Settings big = s;
        big.busFileSize = s.pipeFileSize;
        const fs::path pipeFirmware = makeBusFirmware(big);
        const std::string lat = std::to_string(s.completionLatency.count());
        for (unsigned n : s.pipeBoards) {
            std::map<std::size_t, BusResult> byDepth;
            for (std::size_t depth : {std::size_t{1}, rpiboot::kDefaultBulkTransfersInFlight}) {
                std::fprintf(stderr, "bench: pipelining, %u board(s), %zu in flight...\n", n,
                             depth);
                BusRunOptions p;
                p.controllerRate = virtualpi::kHighSpeedBytesPerSecond;
                p.transfersInFlight = depth;
                p.completionLatency = s.completionLatency;
                byDepth[depth] = runSharedBus(s, pipeFirmware, n, p);
                if (byDepth[depth].succeeded != n) {
                    bad.push_back("pipelining: " + byDepth[depth].failures);
                }
            }
            const BusResult& one = byDepth[1];
            const BusResult& many = byDepth[rpiboot::kDefaultBulkTransfersInFlight];
            const double perOne = median(one.bigFileMBps);
            const double perMany = median(many.bigFileMBps);
            const double ratio = perOne > 0 ? perMany / perOne : 0;
            rows.push_back(
                {"in-process bulk, " + std::to_string(n) + " board(s) x " +
                     std::to_string(s.pipeFileSize >> 20) + " MiB, " +
                     fixed(static_cast<double>(s.boardRate) / 1e6, 0) +
                     " MB/s cap, 480 Mb/s bus, " + lat + " us completion: per board, 1 -> " +
                     std::to_string(rpiboot::kDefaultBulkTransfersInFlight) + " in flight",
                 fixed(perOne, 1) + " -> " + fixed(perMany, 1) + " MB/s = " + fixed(ratio, 2) + "x",
                 "report", "report"});
            rows.push_back(
                {"in-process bulk, " + std::to_string(n) + " board(s): total, 1 -> " +
                     std::to_string(rpiboot::kDefaultBulkTransfersInFlight) + " in flight",
                 fixed(one.bigFileTotalMBps, 1) + " -> " + fixed(many.bigFileTotalMBps, 1) +
                     " MB/s = " +
                     fixed(one.bigFileTotalMBps > 0 ? many.bigFileTotalMBps / one.bigFileTotalMBps
                                                    : 0,
                           2) +
                     "x",
                 "report", "report"});
            if (ratio > 0 && ratio < 0.8) {
                bad.push_back("pipelined bulk OUT at " + std::to_string(n) + " board(s) ran at " +
                              fixed(ratio, 2) + "x the one-in-flight rate (gross limit 0.8x)");
            }
        }
    }

    // Idle.
    if (s.idleSeconds > 0) {
        for (bool withUdev : {true}) {  // rpibootd refuses --no-udev without --virtual
            std::fprintf(stderr, "bench: idle %u s%s...\n", s.idleSeconds,
                         withUdev ? " with udev" : "");
            const IdleResult idle = measureIdle(s, config, withUdev);
            const std::string label = std::string("idle ") + std::to_string(s.idleSeconds) +
                                      " s, no board" + (withUdev ? ", udev on" : ", --no-udev");
            if (!idle.started) {
                rows.push_back({label, "daemon did not start", "0 wakeups, 0.0 % CPU", "n/a"});
                continue;
            }
            rows.push_back({label,
                            std::to_string(idle.wakeups) + " wakeups, " +
                                fixed(idle.cpuPercent, 2) + " % CPU (" +
                                std::to_string(idle.threads) + " threads)",
                            "0 wakeups, 0.0 % CPU",
                            idle.wakeups == 0 && idle.cpuPercent < 0.05 ? "met" : "MISSED"});
        }
    }

    printTable(rows);
    if (!bad.empty()) {
        std::printf("\nProblems:\n");
        for (const auto& b : bad) {
            std::printf("  - %s\n", b.c_str());
        }
    }
    return s.check && !bad.empty() ? 1 : 0;
}
