#include "commands.hpp"

#include <getopt.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "board_view.hpp"
#include "station_client.hpp"

namespace rpibootctl {

namespace {

std::uint64_t nowUsec() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

struct EventDeleter {
    void operator()(sd_event* e) const { sd_event_unref(e); }
};
struct SourceDeleter {
    void operator()(sd_event_source* s) const { sd_event_source_disable_unref(s); }
};
using EventPtr = std::unique_ptr<sd_event, EventDeleter>;
using SourcePtr = std::unique_ptr<sd_event_source, SourceDeleter>;

// An sd-event loop that ends on SIGINT/SIGTERM (status 0) or on exit().
class Loop {
  public:
    Loop() {
        sd_event* raw = nullptr;
        if (sd_event_new(&raw) < 0) {
            throw CtlError("cannot create an event loop");
        }
        event_.reset(raw);
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, nullptr);
        for (int sig : {SIGINT, SIGTERM}) {
            sd_event_source* s = nullptr;
            // No handler: the loop exits with status 0 (userdata).
            sd_event_add_signal(event_.get(), &s, sig, nullptr, nullptr);
            signals_.emplace_back(s);
        }
    }
    sd_event* get() const { return event_.get(); }
    int run() {
        const int r = sd_event_loop(event_.get());
        return r < 0 ? kExitFailed : r;
    }
    void exit(int code) { sd_event_exit(event_.get(), code); }

    // One timer, re-armable: `fn` runs when it fires.
    void armTimer(std::uint64_t usecFromNow, std::function<void()> fn) {
        timerFn_ = std::move(fn);
        if (!timer_) {
            sd_event_source* s = nullptr;
            sd_event_add_time_relative(event_.get(), &s, CLOCK_MONOTONIC, usecFromNow, 1000,
                                       &Loop::onTimer, this);
            timer_.reset(s);
        } else {
            sd_event_source_set_time_relative(timer_.get(), usecFromNow);
        }
        sd_event_source_set_enabled(timer_.get(), SD_EVENT_ONESHOT);
    }
    // The timer's next expiry in µs from now; UINT64_MAX when disarmed.
    std::uint64_t timerDue() const {
        int enabled = SD_EVENT_OFF;
        if (!timer_ || sd_event_source_get_enabled(timer_.get(), &enabled) < 0 ||
            enabled == SD_EVENT_OFF) {
            return UINT64_MAX;
        }
        std::uint64_t at = 0;
        std::uint64_t now = 0;
        sd_event_source_get_time(timer_.get(), &at);
        sd_event_now(event_.get(), CLOCK_MONOTONIC, &now);
        return at > now ? at - now : 0;
    }

  private:
    static int onTimer(sd_event_source*, std::uint64_t, void* userdata) {
        auto* self = static_cast<Loop*>(userdata);
        auto fn = self->timerFn_;
        if (fn) {
            fn();
        }
        return 0;
    }

    EventPtr event_;
    std::vector<SourcePtr> signals_;
    SourcePtr timer_;
    std::function<void()> timerFn_;
};

int terminalColumns() {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        return ws.ws_col;
    }
    return 120;
}

void print(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

const BoardView* byPath(const StationView& station, const std::string& path) {
    for (const auto& b : station.boards) {
        if (b.path == path) {
            return &b;
        }
    }
    return nullptr;
}

int status(const CtlOptions& o) {
    StationClient client(o.bus);
    const StationView station = client.snapshot();
    print(o.json ? renderJson(station, nowUsec()) : renderTable(station, nowUsec()));
    return kExitOk;
}

int show(const CtlOptions& o) {
    StationClient client(o.bus);
    print(renderBoard(client.board(o.args.at(0)), nowUsec()));
    return kExitOk;
}

int watch(const CtlOptions& o) {
    StationClient client(o.bus);
    Loop loop;
    StationView station;
    WatchTally tally;
    tally.startedUsec = nowUsec();
    const bool screen = !o.plain && ::isatty(STDOUT_FILENO) == 1;
    int exitCode = kExitOk;
    std::function<void()> draw = [&] {
        print(renderScreen(station, tally, nowUsec(), terminalColumns()));
        // The elapsed times and the clock move on their own: redraw each second.
        loop.armTimer(1'000'000, draw);
    };
    client.goLive(loop.get(), station, [&](const StationEvent& ev) {
        const std::uint64_t now = nowUsec();
        if (ev.kind == StationEvent::Kind::BootFinished) {
            ev.success ? tally.booted(now) : tally.failed();
        }
        if (ev.kind == StationEvent::Kind::DaemonGone) {
            if (screen) {
                print("\x1b[?25h");
            }
            std::fprintf(stderr, "rpibootctl: rpibootd stopped\n");
            exitCode = kExitNoDaemon;
            loop.exit(kExitNoDaemon);
            return;
        }
        if (screen) {
            // Changes come in bursts: draw at most every 50 ms.
            if (loop.timerDue() > 50'000) {
                loop.armTimer(50'000, draw);
            }
            return;
        }
        const BoardView* b = byPath(station, ev.path);
        switch (ev.kind) {
            case StationEvent::Kind::BoardAdded:
                if (b != nullptr) {
                    print(renderEventLine(*b, now));
                }
                break;
            case StationEvent::Kind::BoardChanged:
                if (b != nullptr && ev.stageOrFileChanged) {
                    print(renderEventLine(*b, now));
                }
                break;
            case StationEvent::Kind::BootFinished:
                print((b != nullptr ? b->port : ev.path) +
                      (ev.success ? " booted: " : " failed: ") + ev.message + "\n" +
                      renderSummary(station, tally, now) + "\n");
                break;
            default:
                break;
        }
    });
    if (screen) {
        print("\x1b[?25l\x1b[2J");
        draw();
    } else {
        for (const auto& b : station.boards) {
            print(renderEventLine(b, nowUsec()));
        }
        print(renderSummary(station, tally, nowUsec()) + "\n");
    }
    const int r = loop.run();
    if (screen) {
        print("\x1b[?25h\n");
    }
    return exitCode != kExitOk ? exitCode : r;
}

int wait(const CtlOptions& o) {
    StationClient client(o.bus);
    Loop loop;
    StationView station;
    const std::set<std::string> named(o.args.begin(), o.args.end());
    std::set<std::string> doneSeen;  // ports seen done (a board may be forgotten later)
    bool finished = false;
    int result = kExitOk;
    const auto finish = [&](int code, const std::string& text) {
        if (finished) {
            return;
        }
        finished = true;
        result = code;
        print(text);
        loop.exit(code);
    };
    const auto evaluate = [&] {
        std::string report;
        std::string failures;
        std::size_t considered = 0;
        bool pending = false;
        for (const auto& b : station.boards) {
            if (!named.empty() && named.count(b.port) == 0) {
                continue;
            }
            if (b.stage == "held" && named.empty()) {
                continue;  // a held board is left alone: nothing to wait for
            }
            ++considered;
            if (b.stage == "done") {
                doneSeen.insert(b.port);
                report += b.port + " done\n";
            } else if (failedStage(b.stage)) {
                failures += b.port + " " + b.stage + ": " + b.lastError + "\n";
            } else {
                pending = true;
            }
        }
        if (!failures.empty()) {
            finish(kExitFailed, failures);
            return;
        }
        for (const auto& port : named) {
            const bool present = std::any_of(station.boards.begin(), station.boards.end(),
                                             [&](const BoardView& b) { return b.port == port; });
            if (!present && doneSeen.count(port) == 0) {
                pending = true;
            } else if (!present) {
                report += port + " done\n";
            }
        }
        if (!pending && (considered > 0 || !named.empty())) {
            finish(kExitOk, report);
        }
    };
    client.goLive(loop.get(), station, [&](const StationEvent& ev) {
        if (ev.kind == StationEvent::Kind::DaemonGone) {
            std::fprintf(stderr, "rpibootctl: rpibootd stopped while waiting\n");
            finish(kExitNoDaemon, "");
            return;
        }
        evaluate();
    });
    if (o.timeoutSec) {
        loop.armTimer(static_cast<std::uint64_t>(*o.timeoutSec * 1e6), [&] {
            std::string waiting;
            for (const auto& b : station.boards) {
                if ((named.empty() || named.count(b.port) != 0) && !settled(b)) {
                    waiting += " " + b.port + " (" + b.stage + ")";
                }
            }
            for (const auto& port : named) {
                const bool present =
                    std::any_of(station.boards.begin(), station.boards.end(),
                                [&](const BoardView& b) { return b.port == port; });
                if (!present && doneSeen.count(port) == 0) {
                    waiting += " " + port + " (not seen)";
                }
            }
            std::fprintf(stderr, "rpibootctl: timed out after %g s; still waiting for:%s\n",
                         *o.timeoutSec, waiting.empty() ? " a board" : waiting.c_str());
            finish(kExitFailed, "");
        });
    }
    evaluate();
    if (finished) {
        return result;
    }
    const int r = loop.run();
    return finished ? result : r;
}

bool isGlob(const std::string& text) {
    return text.find_first_of("*?[") != std::string::npos;
}

int control(const CtlOptions& o) {
    StationClient client(o.bus);
    const std::string& c = o.command;
    if (c == "reload") {
        client.callManager("Reload", "", "reload the configuration");
        print("configuration reloaded\n");
        return kExitOk;
    }
    const std::string& port = o.args.at(0);
    if (c == "retry") {
        client.callBoard(port, "Retry", "retry a board");
        print("retrying " + port + "\n");
    } else if (c == "forget") {
        client.callBoard(port, "Forget", "forget a board");
        print("forgot " + port + "\n");
    } else if (c == "hold" || c == "release") {
        const bool hold = c == "hold";
        const char* verb = hold ? "hold a port" : "release a port";
        bool known = false;
        if (!isGlob(port)) {
            const StationView station = client.snapshot();
            known = std::any_of(station.boards.begin(), station.boards.end(),
                                [&](const BoardView& b) { return b.port == port; });
        }
        if (known) {
            client.callBoard(port, hold ? "Hold" : "Release", verb);
        } else {
            client.callManager(hold ? "HoldPort" : "ReleasePort", port, verb);
        }
        print((hold ? "holding " : "released ") + port + "\n");
    }
    return kExitOk;
}

struct CommandSpec {
    const char* name;
    std::size_t minArgs;
    std::size_t maxArgs;
};

constexpr CommandSpec kCommands[] = {
    {"status", 0, 0}, {"watch", 0, 0}, {"show", 1, 1},    {"wait", 0, SIZE_MAX}, {"retry", 1, 1},
    {"forget", 1, 1}, {"hold", 1, 1},  {"release", 1, 1}, {"reload", 0, 0},      {"help", 0, 0},
};

}  // namespace

std::string ctlUsage() {
    return "Usage: rpibootctl [OPTIONS] COMMAND [ARGS]\n"
           "Shows and controls the boards rpibootd is booting (over D-Bus).\n"
           "\n"
           "Commands:\n"
           "  status [--json]         one line per board (--json: for scripts)\n"
           "  watch [--plain]         live view with progress bars and a summary\n"
           "  show PORT               everything about the board on PORT\n"
           "  wait [PORT...] [--timeout S]\n"
           "                          wait until the boards (default: every board) are done;\n"
           "                          exit 0 when all are done, 1 when one failed or timed out\n"
           "  retry PORT              boot the board on PORT again\n"
           "  forget PORT             drop the board's record\n"
           "  hold PORT|GLOB          leave boards on these ports untouched\n"
           "  release PORT|GLOB       boot them again\n"
           "  reload                  re-read rpibootd's configuration\n"
           "\n"
           "Options:\n"
           "      --bus BUS           system (default), session or a D-Bus address\n"
           "      --json              status: JSON output (schema in rpibootctl(1))\n"
           "      --plain             watch: plain lines even on a terminal\n"
           "      --timeout S         wait: give up after S seconds (exit 1)\n"
           "  -V, --version           print the version and exit\n"
           "  -h, --help              print this help and exit\n"
           "\n"
           "retry, forget, hold, release and reload need root or group rpiboot.\n"
           "Exit status: 0 ok, 1 failed/refused/timed out, 2 usage, 3 rpibootd not reachable.\n";
}

CtlOptions parseCtlOptions(int argc, char** argv) {
    enum : int { kBus = 1000, kJson, kPlain, kTimeout };
    static const option kOptions[] = {
        {"bus", required_argument, nullptr, kBus},
        {"json", no_argument, nullptr, kJson},
        {"plain", no_argument, nullptr, kPlain},
        {"timeout", required_argument, nullptr, kTimeout},
        {"version", no_argument, nullptr, 'V'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    CtlOptions o;
    optind = 0;
    opterr = 0;
    while (true) {
        const int c = getopt_long(argc, argv, ":Vh", kOptions, nullptr);
        if (c == -1) {
            break;
        }
        switch (c) {
            case kBus:
                o.bus = optarg;
                break;
            case kJson:
                o.json = true;
                break;
            case kPlain:
                o.plain = true;
                break;
            case kTimeout: {
                char* end = nullptr;
                const double t = std::strtod(optarg, &end);
                if (end == optarg || *end != '\0' || !(t >= 0) || !std::isfinite(t)) {
                    o.error = std::string("--timeout needs seconds, not \"") + optarg + "\"";
                    return o;
                }
                o.timeoutSec = t;
                break;
            }
            case 'V':
                o.version = true;
                break;
            case 'h':
                o.help = true;
                break;
            case ':':
                o.error = std::string("option ") + argv[optind - 1] + " needs a value";
                return o;
            default:
                o.error = std::string("unknown option ") + argv[optind - 1];
                return o;
        }
    }
    if (o.help || o.version) {
        return o;
    }
    if (optind >= argc) {
        o.error = "no command given";
        return o;
    }
    o.command = argv[optind++];
    o.args.assign(argv + optind, argv + argc);
    const CommandSpec* spec = nullptr;
    for (const auto& s : kCommands) {
        if (o.command == s.name) {
            spec = &s;
        }
    }
    if (spec == nullptr) {
        o.error = "unknown command \"" + o.command + "\"";
    } else if (o.args.size() < spec->minArgs) {
        o.error = o.command + " needs a port";
    } else if (o.args.size() > spec->maxArgs) {
        o.error = "too many arguments for " + o.command;
    } else if (o.json && o.command != "status") {
        o.error = "--json goes with status";
    } else if (o.timeoutSec && o.command != "wait") {
        o.error = "--timeout goes with wait";
    } else if (o.plain && o.command != "watch") {
        o.error = "--plain goes with watch";
    }
    return o;
}

int runCommand(const CtlOptions& o) {
    const std::string& c = o.command;
    if (c == "help") {
        print(ctlUsage());
        return kExitOk;
    }
    if (c == "status") {
        return status(o);
    }
    if (c == "watch") {
        return watch(o);
    }
    if (c == "show") {
        return show(o);
    }
    if (c == "wait") {
        return wait(o);
    }
    return control(o);
}

}  // namespace rpibootctl
