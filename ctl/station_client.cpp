#include "station_client.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

#include "rpiboot/core/error.hpp"

namespace rpibootctl {

namespace {

constexpr const char* kService = "io.rpibootd1";
constexpr const char* kManagerPath = "/io/rpibootd1";
constexpr const char* kManagerInterface = "io.rpibootd1.Manager";
constexpr const char* kDeviceInterface = "io.rpibootd1.Device";
constexpr const char* kPrivilegedGroup = "rpiboot";

struct ErrorGuard {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    ~ErrorGuard() { sd_bus_error_free(&error); }
};

// Throws on a failed read of a reply: the daemon sent something unexpected.
void check(int r, const char* what) {
    if (r < 0) {
        throw CtlError(std::string("unexpected answer from rpibootd (") + what +
                       "): " + rpiboot::errnoText(r));
    }
}

std::string readString(sd_bus_message* m) {
    const char* s = nullptr;
    check(sd_bus_message_read(m, "s", &s), "string");
    return s != nullptr ? s : "";
}

std::vector<std::string> readStrings(sd_bus_message* m, char type) {
    std::vector<std::string> out;
    const char contents[2] = {type, '\0'};
    check(sd_bus_message_enter_container(m, 'a', contents), "array");
    const char* s = nullptr;
    const char sig[2] = {type, '\0'};
    int r = 0;
    while ((r = sd_bus_message_read(m, sig, &s)) > 0) {
        out.emplace_back(s);
    }
    check(r, "array item");
    check(sd_bus_message_exit_container(m), "array end");
    return out;
}

// Reads one property value (the message is at its variant) into `b`.
void readDeviceProperty(sd_bus_message* m, std::string_view name, BoardView& b) {
    char type = 0;
    const char* contents = nullptr;
    check(sd_bus_message_peek_type(m, &type, &contents), "variant");
    const std::string_view sig = contents != nullptr ? contents : "";
    std::string* text = name == "Port"          ? &b.port
                        : name == "Chip"        ? &b.chip
                        : name == "Serial"      ? &b.serial
                        : name == "Profile"     ? &b.profile
                        : name == "Stage"       ? &b.stage
                        : name == "CurrentFile" ? &b.currentFile
                        : name == "LastError"   ? &b.lastError
                                                : nullptr;
    std::uint64_t* wide = name == "BytesSent"      ? &b.bytesSent
                          : name == "BytesTotal"   ? &b.bytesTotal
                          : name == "BytesWritten" ? &b.bytesWritten
                          : name == "BytesToWrite" ? &b.bytesToWrite
                          : name == "StartedUsec"  ? &b.startedUsec
                          : name == "FinishedUsec" ? &b.finishedUsec
                                                   : nullptr;
    std::uint32_t* narrow = name == "FilesServed" ? &b.filesServed
                            : name == "BootCount" ? &b.bootCount
                                                  : nullptr;
    if (text != nullptr && sig == "s") {
        const char* s = nullptr;
        check(sd_bus_message_read(m, "v", "s", &s), name.data());
        *text = s != nullptr ? s : "";
    } else if (wide != nullptr && sig == "t") {
        check(sd_bus_message_read(m, "v", "t", wide), name.data());
    } else if (narrow != nullptr && sig == "u") {
        check(sd_bus_message_read(m, "v", "u", narrow), name.data());
    } else if (name == "Metadata" && sig == "a{ss}") {
        b.metadata.clear();
        check(sd_bus_message_enter_container(m, 'v', "a{ss}"), "Metadata");
        check(sd_bus_message_enter_container(m, 'a', "{ss}"), "Metadata");
        const char* key = nullptr;
        const char* value = nullptr;
        int r = 0;
        while ((r = sd_bus_message_read(m, "{ss}", &key, &value)) > 0) {
            b.metadata[key] = value;
        }
        check(r, "Metadata entry");
        check(sd_bus_message_exit_container(m), "Metadata");
        check(sd_bus_message_exit_container(m), "Metadata");
    } else {
        check(sd_bus_message_skip(m, "v"), "unknown property");
    }
}

// Reads an a{sv} of Device properties; returns the names read.
std::vector<std::string> readDeviceProperties(sd_bus_message* m, BoardView& b) {
    std::vector<std::string> names;
    check(sd_bus_message_enter_container(m, 'a', "{sv}"), "properties");
    int r = 0;
    while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
        names.push_back(readString(m));
        readDeviceProperty(m, names.back(), b);
        check(sd_bus_message_exit_container(m), "property");
    }
    check(r, "property");
    check(sd_bus_message_exit_container(m), "properties");
    return names;
}

void readManagerProperties(sd_bus_message* m, StationView& station) {
    check(sd_bus_message_enter_container(m, 'a', "{sv}"), "manager properties");
    int r = 0;
    while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
        const std::string name = readString(m);
        if (name == "Version") {
            const char* s = nullptr;
            check(sd_bus_message_read(m, "v", "s", &s), "Version");
            station.daemonVersion = s;
        } else if (name == "HeldPorts") {
            check(sd_bus_message_enter_container(m, 'v', "as"), "HeldPorts");
            station.heldPorts = readStrings(m, 's');
            check(sd_bus_message_exit_container(m), "HeldPorts");
        } else {
            check(sd_bus_message_skip(m, "v"), name.c_str());
        }
        check(sd_bus_message_exit_container(m), "manager property");
    }
    check(r, "manager property");
    check(sd_bus_message_exit_container(m), "manager properties");
}

// Reads a{sa{sv}} (interfaces and their properties) of one object.
bool readInterfaces(sd_bus_message* m, BoardView& b) {
    bool device = false;
    check(sd_bus_message_enter_container(m, 'a', "{sa{sv}}"), "interfaces");
    int r = 0;
    while ((r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
        if (readString(m) == kDeviceInterface) {
            readDeviceProperties(m, b);
            device = true;
        } else {
            check(sd_bus_message_skip(m, "a{sv}"), "interface");
        }
        check(sd_bus_message_exit_container(m), "interface");
    }
    check(r, "interface");
    check(sd_bus_message_exit_container(m), "interfaces");
    return device;
}

void sortBoards(StationView& station) {
    std::sort(station.boards.begin(), station.boards.end(),
              [](const BoardView& a, const BoardView& b) { return a.port < b.port; });
}

BoardView* findPath(StationView& station, const std::string& path) {
    for (auto& b : station.boards) {
        if (b.path == path) {
            return &b;
        }
    }
    return nullptr;
}

std::string userName() {
    if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr) {
        return pw->pw_name;
    }
    return "USER";
}

bool isConnectionErrno(int r) {
    return r == -ENOENT || r == -ECONNREFUSED || r == -ENOTCONN || r == -ECONNRESET ||
           r == -EHOSTDOWN || r == -ENOMEDIUM;
}

}  // namespace

StationClient::StationClient(const std::string& bus) : busName_(bus) {
    sd_bus* raw = nullptr;
    int r = 0;
    if (bus == "system") {
        r = sd_bus_open_system(&raw);
    } else if (bus == "session") {
        r = sd_bus_open_user(&raw);
    } else {
        r = sd_bus_new(&raw);
        if (r >= 0) {
            bus_.reset(raw);
            r = sd_bus_set_address(raw, bus.c_str());
            if (r >= 0) {
                r = sd_bus_set_bus_client(raw, 1);
            }
            if (r >= 0) {
                r = sd_bus_start(raw);
            }
            raw = bus_.release();
        }
    }
    if (r < 0) {
        if (raw != nullptr) {
            sd_bus_unref(raw);
        }
        throw CtlError("cannot connect to the " + bus + " D-Bus: " + rpiboot::errnoText(r) +
                           (bus == "system" ? " (is dbus running?)" : ""),
                       kExitNoDaemon);
    }
    bus_.reset(raw);
}

void StationClient::fail(int r, const sd_bus_error& error, const std::string& what,
                         const char* verb) {
    const std::string name = error.name != nullptr ? error.name : "";
    const std::string message =
        error.message != nullptr ? std::string(error.message) : rpiboot::errnoText(r);
    if (name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
        name == "org.freedesktop.DBus.Error.NameHasNoOwner" ||
        (name.empty() && isConnectionErrno(r))) {
        throw CtlError("rpibootd is not running (nobody owns " + std::string(kService) +
                           " on the " + busName_ +
                           " bus). Start it with: sudo systemctl start rpibootd",
                       kExitNoDaemon);
    }
    if (name == "org.freedesktop.DBus.Error.AccessDenied" || r == -EACCES || r == -EPERM) {
        throw CtlError("permission denied: only root and members of group " +
                       std::string(kPrivilegedGroup) + " may " +
                       (verb != nullptr ? verb : "do that") +
                       ". Ask an administrator to run: sudo usermod -aG " + kPrivilegedGroup + " " +
                       userName() + " (then log in again). rpibootd said: " + message);
    }
    throw CtlError(what + ": " + message);
}

StationView StationClient::snapshot() {
    StationView station;
    ErrorGuard e;
    sd_bus_message* raw = nullptr;
    int r =
        sd_bus_call_method(bus_.get(), kService, kManagerPath, "org.freedesktop.DBus.Properties",
                           "GetAll", &e.error, &raw, "s", kManagerInterface);
    if (r < 0) {
        fail(r, e.error, "cannot read rpibootd's manager object");
    }
    MessagePtr manager(raw);
    readManagerProperties(manager.get(), station);

    raw = nullptr;
    r = sd_bus_call_method(bus_.get(), kService, kManagerPath, "org.freedesktop.DBus.ObjectManager",
                           "GetManagedObjects", &e.error, &raw, "");
    if (r < 0) {
        fail(r, e.error, "cannot list rpibootd's boards");
    }
    MessagePtr objects(raw);
    sd_bus_message* m = objects.get();
    check(sd_bus_message_enter_container(m, 'a', "{oa{sa{sv}}}"), "objects");
    while ((r = sd_bus_message_enter_container(m, 'e', "oa{sa{sv}}")) > 0) {
        const char* path = nullptr;
        check(sd_bus_message_read(m, "o", &path), "object path");
        BoardView board;
        board.path = path;
        if (readInterfaces(m, board)) {
            station.boards.push_back(std::move(board));
        }
        check(sd_bus_message_exit_container(m), "object");
    }
    check(r, "object");
    sortBoards(station);
    return station;
}

BoardView StationClient::board(const std::string& port) {
    StationView station = snapshot();
    for (auto& b : station.boards) {
        if (b.port == port) {
            return b;
        }
    }
    std::string known;
    for (const auto& b : station.boards) {
        known += (known.empty() ? "" : ", ") + b.port;
    }
    throw CtlError(
        "no board on port \"" + port + "\"; " +
        (known.empty() ? "rpibootd knows no boards right now" : "known ports: " + known));
}

void StationClient::callBoard(const std::string& port, const char* member, const char* verb) {
    const BoardView target = board(port);
    ErrorGuard e;
    sd_bus_message* reply = nullptr;
    const int r = sd_bus_call_method(bus_.get(), kService, target.path.c_str(), kDeviceInterface,
                                     member, &e.error, &reply, "");
    MessagePtr owned(reply);
    if (r < 0) {
        fail(r, e.error, std::string("cannot ") + verb + " " + port, verb);
    }
}

void StationClient::callManager(const char* member, const std::string& argument, const char* verb) {
    ErrorGuard e;
    sd_bus_message* reply = nullptr;
    const int r = member == std::string_view("Reload")
                      ? sd_bus_call_method(bus_.get(), kService, kManagerPath, kManagerInterface,
                                           member, &e.error, &reply, "")
                      : sd_bus_call_method(bus_.get(), kService, kManagerPath, kManagerInterface,
                                           member, &e.error, &reply, "s", argument.c_str());
    MessagePtr owned(reply);
    if (r < 0) {
        fail(r, e.error, std::string("cannot ") + verb, verb);
    }
}

void StationClient::goLive(sd_event* event, StationView& station,
                           std::function<void(const StationEvent&)> onEvent) {
    int r = sd_bus_attach_event(bus_.get(), event, SD_EVENT_PRIORITY_NORMAL);
    check(r, "attach to the event loop");
    sd_bus_slot* slot = nullptr;
    r = sd_bus_add_match(bus_.get(), &slot, "type='signal',path_namespace='/io/rpibootd1'",
                         &StationClient::onSignal, this);
    if (r < 0) {
        throw CtlError(std::string("cannot subscribe to rpibootd's signals: ") +
                       rpiboot::errnoText(r));
    }
    match_.reset(slot);
    slot = nullptr;
    r = sd_bus_add_match(bus_.get(), &slot,
                         "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',"
                         "arg0='io.rpibootd1'",
                         &StationClient::onSignal, this);
    if (r < 0) {
        throw CtlError(std::string("cannot subscribe to rpibootd's signals: ") +
                       rpiboot::errnoText(r));
    }
    ownerMatch_.reset(slot);
    station = snapshot();
    live_ = &station;
    onEvent_ = std::move(onEvent);
}

int StationClient::onSignal(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<StationClient*>(userdata);
    try {
        self->handleSignal(m);
    } catch (const CtlError&) {
        // A signal we cannot read is skipped; the next one carries the state.
    }
    return 0;
}

void StationClient::handleSignal(sd_bus_message* m) {
    if (live_ == nullptr) {
        return;
    }
    const std::string_view member = sd_bus_message_get_member(m);
    const char* pathText = sd_bus_message_get_path(m);
    const std::string path = pathText != nullptr ? pathText : "";
    StationEvent ev;
    if (member == "NameOwnerChanged") {
        const std::string name = readString(m);
        readString(m);
        if (name == kService && readString(m).empty()) {
            ev.kind = StationEvent::Kind::DaemonGone;
            onEvent_(ev);
        }
        return;
    }
    if (member == "PropertiesChanged") {
        const std::string interface = readString(m);
        if (interface == kManagerInterface) {
            readManagerProperties(m, *live_);
            ev.kind = StationEvent::Kind::HeldChanged;
            onEvent_(ev);
            return;
        }
        BoardView* board = findPath(*live_, path);
        if (interface != kDeviceInterface || board == nullptr) {
            return;
        }
        const auto names = readDeviceProperties(m, *board);
        ev.kind = StationEvent::Kind::BoardChanged;
        ev.path = path;
        ev.stageOrFileChanged = std::any_of(names.begin(), names.end(), [](const std::string& n) {
            return n == "Stage" || n == "CurrentFile" || n == "LastError";
        });
        onEvent_(ev);
        return;
    }
    if (member == "InterfacesAdded") {
        const char* object = nullptr;
        check(sd_bus_message_read(m, "o", &object), "InterfacesAdded");
        BoardView board;
        board.path = object;
        if (!readInterfaces(m, board) || findPath(*live_, board.path) != nullptr) {
            return;
        }
        live_->boards.push_back(std::move(board));
        sortBoards(*live_);
        ev.kind = StationEvent::Kind::BoardAdded;
        ev.path = object;
        onEvent_(ev);
        return;
    }
    if (member == "InterfacesRemoved") {
        const char* object = nullptr;
        check(sd_bus_message_read(m, "o", &object), "InterfacesRemoved");
        const auto interfaces = readStrings(m, 's');
        if (std::find(interfaces.begin(), interfaces.end(), kDeviceInterface) == interfaces.end()) {
            return;
        }
        auto& boards = live_->boards;
        boards.erase(std::remove_if(boards.begin(), boards.end(),
                                    [&](const BoardView& b) { return b.path == object; }),
                     boards.end());
        ev.kind = StationEvent::Kind::BoardRemoved;
        ev.path = object;
        onEvent_(ev);
        return;
    }
    if (member == "BootFinished") {
        const char* object = nullptr;
        int success = 0;
        const char* message = nullptr;
        check(sd_bus_message_read(m, "obs", &object, &success, &message), "BootFinished");
        ev.kind = StationEvent::Kind::BootFinished;
        ev.path = object;
        ev.success = success != 0;
        ev.message = message;
        onEvent_(ev);
    }
}

}  // namespace rpibootctl
