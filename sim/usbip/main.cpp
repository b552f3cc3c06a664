// rpiboot-usbip-boards: virtual Raspberry Pi boards on the kernel's real USB
// stack. Each board gets a vhci-hcd root-hub port and is attached there
// through USB/IP for each of its enumerations, so udev, libusb, rpiboot and
// rpibootd see real USB devices that detach and come back between stages.
// Writes what every board received to a results folder and exits non-zero
// when a board did not end as its test meant.
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "board_slot.hpp"
#include "board_spec.hpp"
#include "rpiboot/core/device.hpp"
#include "rpiboot/core/error.hpp"
#include "verdict.hpp"
#include "vhci.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr int kExitPassed = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

const char* const kUsage = R"(usage: rpiboot-usbip-boards -r DIR [options] BOARD...

Plugs virtual Raspberry Pi boards into this machine's USB/IP virtual host
controller (vhci-hcd), one root-hub port per board, and serves their USB
traffic until every board has ended. Needs root and the vhci-hcd module.

BOARD:  SOURCE[*COUNT][,KEY=VALUE...]
  SOURCE          CHIP:PROFILE (2711:msd, 2712:mass-storage-gadget, 2837:msd,
                  2711:recovery, ...), a scenario .json file, or
                  decoy-disk:SIZE (a plain USB disk, 1209:0001, never boots)
  serial=HEX      serial of the first of COUNT boards (the others count up)
  unplug=NAME@N   the board leaves the bus after N bytes of file NAME;
                  unplug=disk@N: after N bytes written to its disk
  disk=SIZE       its final identity's disk answers SCSI, backed by a sparse
                  file DIR/board-<i>-disk.img of SIZE (64M, 1G, bytes)
  disks=N:S+N:S   several gadget disks by name (mmcblk0:64M+nvme0n1:32M),
                  files DIR/board-<i>-<name>.img
  start=final     the board shows its final identity at once (no boot)
  returns=N       after a successful run the board resets into its boot ROM
                  on the same port (recovery_reboot=1), at most N times, and
                  runs its scenario again if booted there
  expect=failed   the board is meant to fail (then failing passes)
  sums=FILE       expected SHA-256 per file name (sha256sum listing)
  sha256=NAME:HEX expected SHA-256 of NAME (repeatable)
  quirk=config    the ROM claims a 55-byte configuration but returns 32
  port=N          vhci-hcd port number (default: lowest free USB 2.0 port)

options:
  -r, --results DIR      write DIR/boards.tsv at start, DIR/board-<i>.json when
                         a board ends and DIR/summary.json at the end
      --sha256sums FILE  expected hashes for every board (sha256sum listing)
      --sha256 NAME:HEX  expected hash of NAME for every board (repeatable)
      --require-hashes   a received file without an expected hash fails
      --hold             once every board has ended, keep the devices attached
                         until SIGTERM/SIGINT
  -t, --timeout SECONDS  power off boards still running after SECONDS (default 300)
      --disk-dir DIR     where the disks' backing files go (default: --results)
      --serial-base HEX  serial of the first board without one (default 7e570001)
      --tcp              connect through loopback TCP instead of socket pairs
      --vhci-dir DIR     where vhci_hcd.N live (default /sys/devices/platform)
  -v, --verbose          log attach and detach; -vv also every URB
  -h, --help             show this help

exit: 0 every board ended as meant, 1 otherwise, 2 bad usage or no vhci-hcd.
)";

struct UsageError {
    std::string message;
};

struct Options {
    std::vector<std::string> boards;
    fs::path results;
    fs::path diskDir;
    std::vector<fs::path> sumFiles;
    std::map<std::string, std::string> hashes;
    bool requireHashes = false;
    bool hold = false;
    bool tcp = false;
    int verbose = 0;
    std::chrono::seconds timeout{300};
    fs::path vhciDir = "/sys/devices/platform";
    std::string serialBase = "7e570001";
    bool help = false;
};

Options parseOptions(int argc, char** argv) {
    Options o;
    const auto value = [&](int& i, const std::string& name) -> std::string {
        if (i + 1 >= argc) {
            throw UsageError{name + " needs a value"};
        }
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-r" || a == "--results") {
            o.results = value(i, a);
        } else if (a == "--disk-dir") {
            o.diskDir = value(i, a);
        } else if (a == "--sha256sums") {
            o.sumFiles.emplace_back(value(i, a));
        } else if (a == "--sha256") {
            const std::string v = value(i, a);
            const auto colon = v.rfind(':');
            if (colon == std::string::npos || colon == 0 || v.size() - colon - 1 != 64) {
                throw UsageError{"--sha256 wants NAME:HEX with 64 hex digits, not '" + v + "'"};
            }
            o.hashes[v.substr(0, colon)] = v.substr(colon + 1);
        } else if (a == "--require-hashes") {
            o.requireHashes = true;
        } else if (a == "--hold") {
            o.hold = true;
        } else if (a == "-t" || a == "--timeout") {
            const std::string v = value(i, a);
            try {
                o.timeout = std::chrono::seconds(std::stoul(v));
            } catch (const std::exception&) {
                throw UsageError{"--timeout wants whole seconds, not '" + v + "'"};
            }
        } else if (a == "--serial-base") {
            o.serialBase = value(i, a);
        } else if (a == "--tcp") {
            o.tcp = true;
        } else if (a == "--vhci-dir") {
            o.vhciDir = value(i, a);
        } else if (a == "-v" || a == "--verbose") {
            ++o.verbose;
        } else if (a == "-vv") {
            o.verbose += 2;
        } else if (a == "-h" || a == "--help") {
            o.help = true;
            return o;
        } else if (!a.empty() && a[0] == '-') {
            throw UsageError{"unknown option '" + a + "'"};
        } else {
            o.boards.push_back(a);
        }
    }
    if (o.results.empty()) {
        throw UsageError{"--results DIR is required"};
    }
    if (o.boards.empty()) {
        throw UsageError{"no BOARD given"};
    }
    return o;
}

// Timestamped lines on stderr, one writer at a time.
class Log {
  public:
    void operator()(const std::string& message) {
        const double t = std::chrono::duration<double>(Clock::now() - start_).count();
        std::lock_guard lock(mutex_);
        std::fprintf(stderr, "[%8.3f] %s\n", t, message.c_str());
    }
    double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  private:
    Clock::time_point start_ = Clock::now();
    std::mutex mutex_;
};

void writeFile(const fs::path& path, const std::string& text) {
    const fs::path tmp = path.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << text;
        if (!out) {
            throw rpiboot::Error(rpiboot::Errc::Io, "cannot write " + tmp.string());
        }
    }
    fs::rename(tmp, path);
}

// SHA-256 of a whole file (a disk's backing file), as hex; "" if unreadable.
std::string fileSha256(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return {};
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    std::vector<unsigned char> buffer(1 << 20);
    bool ok = true;
    for (;;) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        EVP_DigestUpdate(ctx, buffer.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx, digest, &length);
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return {};
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 15]);
    }
    return out;
}

// The thread that takes SIGINT/SIGTERM/SIGHUP; stopped with SIGUSR1, also
// when the runner leaves by an exception.
class SignalWatcher {
  public:
    explicit SignalWatcher(std::function<void()> body) : thread_(std::move(body)) {}
    ~SignalWatcher() { stop(); }
    SignalWatcher(const SignalWatcher&) = delete;
    SignalWatcher& operator=(const SignalWatcher&) = delete;
    void stop() {
        if (thread_.joinable()) {
            pthread_kill(thread_.native_handle(), SIGUSR1);
            thread_.join();
        }
    }

  private:
    std::thread thread_;
};

struct Entry {
    unsigned index = 0;
    const usbip::BoardSpec* spec = nullptr;
    virtualpi::Scenario scenario;
    std::string serial;
    unsigned port = 0;
    std::string portPath;
    std::vector<virtualpi::DiskAttachment> disks;
    std::unique_ptr<usbip::BoardSlot> slot;
};

class Runner {
  public:
    explicit Runner(Options options) : o_(std::move(options)), vhci_(o_.vhciDir) {}

    int run();

  private:
    void plan();
    void watchSignals();
    void boardEnded(unsigned index);
    // `hashDisks`: add each backing file's SHA-256 (at the end, when the
    // host can no longer write).
    json boardJson(const Entry& e, usbip::Verdict& verdict, bool hashDisks = false) const;
    void writeRecord(const Entry& e);
    int finish();

    Options o_;
    usbip::Vhci vhci_;
    Log log_;
    std::vector<usbip::BoardSpec> specs_;
    std::vector<Entry> entries_;

    std::mutex mutex_;
    std::condition_variable changed_;
    unsigned ended_ = 0;
    double poweredOnAt_ = 0;  // seconds since start when the boards were powered on
    double allEndedAt_ = -1;  // seconds after power-on when the last board ended
    int signal_ = 0;
    std::mutex fileMutex_;
};

void Runner::plan() {
    std::map<std::string, std::string> globalHashes;
    for (const auto& file : o_.sumFiles) {
        for (const auto& [name, hash] : virtualpi::readSha256Sums(file)) {
            globalHashes[name] = hash;
        }
    }
    for (const auto& [name, hash] : o_.hashes) {
        globalHashes[name] = hash;
    }
    for (const auto& text : o_.boards) {
        specs_.push_back(usbip::parseBoardSpec(text));
    }
    std::set<unsigned> taken;
    for (const auto& spec : specs_) {
        if (spec.port) {
            const auto p = vhci_.port(*spec.port);
            if (!p || !p->highSpeed || p->state != usbip::kPortFree ||
                !taken.insert(*spec.port).second) {
                throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                                     "board '" + spec.text + "': vhci-hcd port " +
                                         std::to_string(*spec.port) +
                                         " is not a free USB 2.0 port");
            }
        }
    }
    auto free = vhci_.freeHighSpeedPorts();
    std::erase_if(free, [&](unsigned p) { return taken.count(p) != 0; });
    std::size_t nextFree = 0;
    unsigned index = 0;
    for (const auto& spec : specs_) {
        for (unsigned i = 0; i < spec.count; ++i, ++index) {
            Entry e;
            e.index = index;
            e.spec = &spec;
            e.serial = spec.serial.empty() ? usbip::serialPlus(o_.serialBase, index)
                                           : usbip::serialPlus(spec.serial, i);
            if (spec.port) {
                e.port = *spec.port;
            } else if (nextFree < free.size()) {
                e.port = free[nextFree++];
            } else {
                throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                                     "not enough free USB 2.0 ports on vhci-hcd for " +
                                         std::to_string(index + 1) + " boards");
            }
            e.portPath = vhci_.portPath(e.port);
            e.scenario = usbip::boardScenario(spec, e.serial, globalHashes);
            e.disks = usbip::boardDisks(spec, e.scenario,
                                        o_.diskDir.empty() ? o_.results : o_.diskDir, index);
            entries_.push_back(std::move(e));
        }
    }
}

void Runner::watchSignals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) {
        sigaddset(&set, s);
    }
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0 || sig == SIGUSR1) {
            return;  // SIGUSR1: the runner is finishing
        }
        std::lock_guard lock(mutex_);
        signal_ = sig;
        changed_.notify_all();
    }
}

json Runner::boardJson(const Entry& e, usbip::Verdict& verdict, bool hashDisks) const {
    const virtualpi::BoardRecord record = e.slot->board().record();
    const usbip::SlotStats stats = e.slot->stats();
    verdict = usbip::judgeBoard(
        {&record, &e.scenario, e.spec->expectFailure, o_.requireHashes, stats.problems});
    json disks = json::array();
    for (const auto& d : e.slot->board().disks()) {
        json j{{"name", d.name},
               {"file", fs::absolute(d.file).string()},
               {"sizeBytes", d.sizeBytes},
               {"commands", d.stats.commands},
               {"failedCommands", d.stats.failedCommands},
               {"bytesRead", d.stats.bytesRead},
               {"bytesWritten", d.stats.bytesWritten},
               {"syncs", d.stats.syncs},
               {"unplugged", d.unplugged}};
        if (hashDisks) {
            j["sha256"] = fileSha256(d.file);
        }
        disks.push_back(std::move(j));
    }
    return {{"index", e.index},
            {"spec", e.spec->text},
            {"scenario", e.scenario.name},
            {"chip", std::string(rpiboot::chipName(e.scenario.chip))},
            {"serial", e.serial},
            {"vhciPort", e.port},
            {"portPath", e.portPath},
            {"expected", e.spec->expectFailure ? "failed" : "succeeded"},
            {"passed", verdict.passed},
            {"problems", verdict.problems},
            {"filesVerified", verdict.filesVerified},
            {"bytesVerified", verdict.bytesVerified},
            {"attachedEnumerations", stats.attached},
            {"urbs",
             {{"submitted", stats.urbs.submitted},
              {"answered", stats.urbs.answered},
              {"control", stats.urbs.controlRequests},
              {"unlinkedPending", stats.urbs.unlinkedPending},
              {"unlinkedLate", stats.urbs.unlinkedLate},
              {"bulkOutBytes", stats.urbs.bulkOutBytes}}},
            {"replyMicros", stats.urbs.replyMicros},
            {"disks", disks},
            {"record", virtualpi::recordToJson(record)}};
}

void Runner::writeRecord(const Entry& e) {
    usbip::Verdict verdict;
    const json j = boardJson(e, verdict);
    std::lock_guard lock(fileMutex_);
    writeFile(o_.results / ("board-" + std::to_string(e.index) + ".json"), j.dump(2) + "\n");
}

void Runner::boardEnded(unsigned index) {
    const Entry& e = entries_.at(index);
    usbip::Verdict verdict;
    boardJson(e, verdict);
    const auto record = e.slot->board().record();
    log_("board " + std::to_string(index) + " at " + e.portPath + " ended " +
         virtualpi::outcomeName(record.outcome) +
         (record.reason.empty() ? "" : " (" + record.reason + ")") +
         (verdict.passed ? ", as meant" : ", NOT as meant"));
    try {
        writeRecord(e);
    } catch (const std::exception& ex) {
        log_(ex.what());
    }
    std::lock_guard lock(mutex_);
    if (++ended_ == entries_.size()) {
        allEndedAt_ = log_.elapsed() - poweredOnAt_;
    }
    changed_.notify_all();
}

int Runner::run() {
    plan();
    fs::create_directories(o_.results);
    if (!o_.diskDir.empty()) {
        fs::create_directories(o_.diskDir);
    }
    std::string table = "index\tportPath\tserial\tchip\tscenario\texpected\tvhciPort\n";
    for (const Entry& e : entries_) {
        table += std::to_string(e.index) + "\t" + e.portPath + "\t" + e.serial + "\t" +
                 std::string(rpiboot::chipName(e.scenario.chip)) + "\t" + e.scenario.name + "\t" +
                 (e.spec->expectFailure ? "failed" : "succeeded") + "\t" + std::to_string(e.port) +
                 "\n";
    }
    writeFile(o_.results / "boards.tsv", table);
    fs::remove(o_.results / "summary.json");

    auto logger = [this](const std::string& m) { log_(m); };
    for (Entry& e : entries_) {
        usbip::SlotOptions so;
        so.index = e.index;
        so.label = "board " + std::to_string(e.index) + " (" + e.scenario.name + ", serial " +
                   e.serial + ", " + e.portPath + ")";
        so.port = e.port;
        so.portPath = e.portPath;
        so.tcp = o_.tcp;
        so.trace = o_.verbose >= 2;
        // Problems are always worth a line; routine events only with -v.
        so.log = o_.verbose >= 1 ? logger : std::function<void(const std::string&)>{};
        so.onOutcome = [this](unsigned index) { boardEnded(index); };
        so.disks = e.disks;
        e.slot = std::make_unique<usbip::BoardSlot>(vhci_, e.scenario, so);
    }
    SignalWatcher signals([this] { watchSignals(); });
    log_("powering on " + std::to_string(entries_.size()) + " board(s)");
    {
        std::lock_guard lock(mutex_);
        poweredOnAt_ = log_.elapsed();
    }
    for (Entry& e : entries_) {
        e.slot->start();
    }

    const auto deadline = Clock::now() + o_.timeout;
    {
        std::unique_lock lock(mutex_);
        const bool settled = changed_.wait_until(
            lock, deadline, [&] { return ended_ == entries_.size() || signal_ != 0; });
        if (!settled) {
            log_("timed out after " + std::to_string(o_.timeout.count()) +
                 " s; powering off the boards still running");
        } else if (signal_ != 0) {
            log_("signal " + std::to_string(signal_) + ": powering off every board");
        } else if (o_.hold) {
            const double endedAt = allEndedAt_;
            lock.unlock();
            writeFile(o_.results / "summary.json",
                      json{{"state", "holding"}, {"allEndedSeconds", endedAt}}.dump() + "\n");
            log_("every board has ended; holding the devices until SIGTERM");
            lock.lock();
            changed_.wait(lock, [&] { return signal_ != 0; });
        }
    }
    for (Entry& e : entries_) {
        e.slot->powerOff();
    }
    signals.stop();
    return finish();
}

int Runner::finish() {
    json boards = json::array();
    bool allPassed = true;
    for (const Entry& e : entries_) {
        usbip::Verdict verdict;
        json j = boardJson(e, verdict, true);
        writeFile(o_.results / ("board-" + std::to_string(e.index) + ".json"), j.dump(2) + "\n");
        allPassed = allPassed && verdict.passed;
        std::printf("board %u %s %s %s: %s (%s, %u files / %llu bytes verified)\n", e.index,
                    e.portPath.c_str(), e.serial.c_str(), e.scenario.name.c_str(),
                    verdict.passed ? "passed" : "FAILED",
                    virtualpi::outcomeName(e.slot->board().outcome()), verdict.filesVerified,
                    static_cast<unsigned long long>(verdict.bytesVerified));
        for (const auto& p : verdict.problems) {
            std::printf("  - %s\n", p.c_str());
        }
        const virtualpi::BoardRecord record = e.slot->board().record();
        if (record.returnsToRom > 0) {
            std::printf("  %u boot(s), %u run(s), back in its ROM %u time(s)\n", record.boots,
                        record.runs, record.returnsToRom);
        }
        for (const auto& d : j.at("disks")) {
            std::printf("  disk %s %s %llu bytes sha256 %s (%llu bytes written%s)\n",
                        d.at("name").get<std::string>().c_str(),
                        d.at("file").get<std::string>().c_str(),
                        static_cast<unsigned long long>(d.at("sizeBytes").get<std::uint64_t>()),
                        d.at("sha256").get<std::string>().c_str(),
                        static_cast<unsigned long long>(d.at("bytesWritten").get<std::uint64_t>()),
                        d.at("unplugged").get<bool>() ? ", unplugged at its limit" : "");
        }
        boards.push_back({{"index", e.index},
                          {"portPath", e.portPath},
                          {"serial", e.serial},
                          {"outcome", virtualpi::outcomeName(record.outcome)},
                          {"boots", record.boots},
                          {"runs", record.runs},
                          {"returnsToRom", record.returnsToRom},
                          {"passed", verdict.passed},
                          {"disks", j.at("disks")}});
    }
    double endedAt = 0;
    {
        std::lock_guard lock(mutex_);
        endedAt = allEndedAt_;
    }
    writeFile(o_.results / "summary.json", json{{"state", "finished"},
                                                {"passed", allPassed},
                                                {"allEndedSeconds", endedAt},
                                                {"seconds", log_.elapsed()},
                                                {"boards", boards}}
                                                   .dump(2) +
                                               "\n");
    if (endedAt >= 0) {
        std::printf("%zu board(s), all ended %.2f s after power-on: %s\n", entries_.size(), endedAt,
                    allPassed ? "all as meant" : "SOME NOT AS MEANT");
    } else {
        std::printf("%zu board(s), not all ended: %s\n", entries_.size(),
                    allPassed ? "all as meant" : "SOME NOT AS MEANT");
    }
    std::fflush(stdout);
    return allPassed ? kExitPassed : kExitFailed;
}

}  // namespace

int main(int argc, char** argv) {
    // Every thread inherits this mask; only the signal watcher takes them.
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) {
        sigaddset(&set, s);
    }
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    try {
        Options options = parseOptions(argc, argv);
        if (options.help) {
            std::cout << kUsage;
            return kExitPassed;
        }
        Runner runner(std::move(options));
        return runner.run();
    } catch (const UsageError& e) {
        std::fprintf(stderr, "rpiboot-usbip-boards: %s\n\n%s", e.message.c_str(), kUsage);
        return kExitUsage;
    } catch (const rpiboot::Error& e) {
        std::fprintf(stderr, "rpiboot-usbip-boards: %s\n", e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rpiboot-usbip-boards: %s\n", e.what());
        return kExitFailed;
    }
}
