// D-Bus adapter of rpibootd on raw sd-bus. See dbus_service.hpp and docs/dbus-api.md.
#include "dbus_service.hpp"

#include <grp.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <exception>
#include <map>
#include <rpiboot/core/error.hpp>
#include <string_view>
#include <system_error>
#include <vector>

namespace rpibootd {
namespace {

struct BusClose {
    void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
struct SlotUnref {
    void operator()(sd_bus_slot* slot) const { sd_bus_slot_unref(slot); }
};
struct SourceUnref {
    void operator()(sd_event_source* source) const { sd_event_source_disable_unref(source); }
};
struct MessageUnref {
    void operator()(sd_bus_message* message) const { sd_bus_message_unref(message); }
};
struct CredsUnref {
    void operator()(sd_bus_creds* creds) const { sd_bus_creds_unref(creds); }
};
using BusPtr = std::unique_ptr<sd_bus, BusClose>;
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotUnref>;
using SourcePtr = std::unique_ptr<sd_event_source, SourceUnref>;
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;
using CredsPtr = std::unique_ptr<sd_bus_creds, CredsUnref>;

std::string errnoText(int negativeErrno) {
    return std::error_code(-negativeErrno, std::generic_category()).message();
}

struct FieldName {
    std::uint32_t field;
    const char* name;
};

// Port is constant for the life of an object, so it never appears in
// PropertiesChanged.
constexpr FieldName kChangeableFields[] = {
    {kFieldChip, "Chip"},
    {kFieldSerial, "Serial"},
    {kFieldProfile, "Profile"},
    {kFieldStage, "Stage"},
    {kFieldCurrentFile, "CurrentFile"},
    {kFieldBytesSent, "BytesSent"},
    {kFieldBytesTotal, "BytesTotal"},
    {kFieldFilesServed, "FilesServed"},
    {kFieldBootCount, "BootCount"},
    {kFieldLastError, "LastError"},
    {kFieldStartedUsec, "StartedUsec"},
    {kFieldFinishedUsec, "FinishedUsec"},
    {kFieldMetadata, "Metadata"},
};

constexpr std::uint32_t kAllChangeableFields = [] {
    std::uint32_t all = 0;
    for (const auto& f : kChangeableFields) {
        all |= f.field;
    }
    return all;
}();

// Only these are rate-limited; every other field goes out at once.
constexpr std::uint32_t kProgressFields = kFieldBytesSent;

bool lookupGroup(const std::string& name, gid_t& gid) {
    group entry{};
    group* found = nullptr;
    std::vector<char> buffer(4096);
    while (getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) == ERANGE) {
        buffer.resize(buffer.size() * 2);
    }
    if (found == nullptr) {
        return false;
    }
    gid = found->gr_gid;
    return true;
}

// Who sent a method call, as far as Reload cares.
struct Caller {
    bool uidKnown = false;
    uid_t uid = 0;
    bool groupsKnown = false;
    std::vector<gid_t> groups;  // primary and supplementary
};

int readCredential(sd_bus_message* reply, Caller& caller) {
    const char* key = nullptr;
    int r = sd_bus_message_read(reply, "s", &key);
    if (r < 0) {
        return r;
    }
    const std::string_view name = key;
    if (name == "UnixUserID") {
        std::uint32_t uid = 0;
        r = sd_bus_message_read(reply, "v", "u", &uid);
        caller.uid = uid;
        caller.uidKnown = r >= 0;
        return r;
    }
    if (name != "UnixGroupIDs") {
        return sd_bus_message_skip(reply, "v");
    }
    r = sd_bus_message_enter_container(reply, 'v', "au");
    const void* data = nullptr;
    std::size_t size = 0;
    if (r >= 0) {
        r = sd_bus_message_read_array(reply, 'u', &data, &size);
    }
    if (r < 0) {
        return r;
    }
    const auto* gids = static_cast<const std::uint32_t*>(data);
    caller.groups.assign(gids, gids + size / sizeof(std::uint32_t));
    caller.groupsKnown = true;
    return sd_bus_message_exit_container(reply);
}

// The bus driver's own record of the sender (GetConnectionCredentials): it
// comes from the socket, not from /proc, so it holds under ProtectProc=.
int askBusDriver(sd_bus_message* call, Caller& caller) {
    const char* sender = sd_bus_message_get_sender(call);
    if (sender == nullptr) {
        return -ENXIO;  // a direct connection: no driver to ask
    }
    sd_bus_message* raw = nullptr;
    int r = sd_bus_call_method(sd_bus_message_get_bus(call), "org.freedesktop.DBus",
                               "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetConnectionCredentials", nullptr, &raw, "s", sender);
    if (r < 0) {
        return r;
    }
    MessagePtr reply(raw);
    r = sd_bus_message_enter_container(reply.get(), 'a', "{sv}");
    while (r >= 0 && (r = sd_bus_message_enter_container(reply.get(), 'e', "sv")) > 0) {
        r = readCredential(reply.get(), caller);
        if (r >= 0) {
            r = sd_bus_message_exit_container(reply.get());
        }
    }
    return r;
}

// What sd-bus can find out otherwise (peer credentials, /proc).
void askSdBus(sd_bus_message* call, Caller& caller) {
    sd_bus_creds* raw = nullptr;
    const std::uint64_t mask = SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID |
                               SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT;
    if (sd_bus_query_sender_creds(call, mask, &raw) < 0) {
        return;
    }
    CredsPtr creds(raw);
    uid_t uid = 0;
    if (!caller.uidKnown && sd_bus_creds_get_euid(creds.get(), &uid) >= 0) {
        caller.uid = uid;
        caller.uidKnown = true;
    }
    if (caller.groupsKnown) {
        return;
    }
    gid_t gid = 0;
    if (sd_bus_creds_get_egid(creds.get(), &gid) >= 0) {
        caller.groups.push_back(gid);
    }
    const gid_t* groups = nullptr;
    const int count = sd_bus_creds_get_supplementary_gids(creds.get(), &groups);
    if (count >= 0) {
        caller.groups.insert(caller.groups.end(), groups, groups + count);
        caller.groupsKnown = true;
    }
}

// Reload and the control methods change what boards get: only root or a
// member of `privilegedGroup` may ask. The bus policy says the same on the
// system bus; this check also holds on session and private buses.
int checkCallerAllowed(sd_bus_message* call, const std::string& privilegedGroup,
                       sd_bus_error* error) {
    const char* member = sd_bus_message_get_member(call);
    const std::string what = member != nullptr ? member : "the call";
    Caller caller;
    askBusDriver(call, caller);
    if (!caller.uidKnown || !caller.groupsKnown) {
        askSdBus(call, caller);
    }
    if (!caller.uidKnown) {
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "%s refused: the bus did not tell who the caller is",
                                 what.c_str());
    }
    if (caller.uid == 0) {
        return 0;
    }
    gid_t privileged = 0;
    if (lookupGroup(privilegedGroup, privileged) &&
        std::find(caller.groups.begin(), caller.groups.end(), privileged) != caller.groups.end()) {
        return 0;
    }
    return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                             "%s refused: user %u is neither root nor in group '%s'", what.c_str(),
                             static_cast<unsigned>(caller.uid), privilegedGroup.c_str());
}

// A refused control request as a D-Bus error.
int controlError(const ControlResult& result, sd_bus_error* error) {
    const char* name = SD_BUS_ERROR_FAILED;
    switch (result.outcome) {
        case ControlOutcome::Ok:
            return 0;
        case ControlOutcome::UnknownPort:
            name = kErrorUnknownPort;
            break;
        case ControlOutcome::Busy:
            name = kErrorBusy;
            break;
        case ControlOutcome::Held:
            name = kErrorHeld;
            break;
        case ControlOutcome::NotHeld:
            name = kErrorNotHeld;
            break;
        case ControlOutcome::InvalidGlob:
            name = SD_BUS_ERROR_INVALID_ARGS;
            break;
    }
    return sd_bus_error_set(error, name, result.message.c_str());
}

int appendMetadata(sd_bus_message* reply, const std::map<std::string, std::string>& metadata) {
    int r = sd_bus_message_open_container(reply, 'a', "{ss}");
    if (r < 0) {
        return r;
    }
    for (const auto& [key, value] : metadata) {
        r = sd_bus_message_append(reply, "{ss}", key.c_str(), value.c_str());
        if (r < 0) {
            return r;
        }
    }
    return sd_bus_message_close_container(reply);
}

}  // namespace

std::string devicePath(const std::string& port) {
    char* path = nullptr;
    const int r = sd_bus_path_encode(kDevicePathPrefix, port.c_str(), &path);
    if (r < 0) {
        throw rpiboot::Error(
            rpiboot::Errc::InvalidArgument,
            "Cannot make a D-Bus object path for port '" + port + "': " + errnoText(r));
    }
    std::string result(path);
    std::free(path);
    return result;
}

struct DbusService::Impl {
    struct Board {
        Impl* owner = nullptr;
        BoardStatus status;
        std::string path;
        SlotPtr vtable;
        SourcePtr progressTimer;
        std::uint32_t pendingFields = 0;     // progress fields not yet announced
        std::uint64_t lastProgressUsec = 0;  // CLOCK_MONOTONIC of the last progress signal
        bool timerArmed = false;
    };

    Impl(sd_event* loop, DbusOptions opts, ManagerControl& ctl, Logger& logger)
        : event(loop), options(std::move(opts)), control(ctl), log(logger) {}

    sd_event* event;
    DbusOptions options;
    ManagerControl& control;
    Logger& log;
    // Declared before the slots and boards so that those go first.
    BusPtr bus;
    SlotPtr managerVtable;
    SlotPtr objectManager;
    std::map<std::string, std::unique_ptr<Board>> boards;  // by port

    static const sd_bus_vtable kManagerVtable[];
    static const sd_bus_vtable kDeviceVtable[];

    void connect();
    // Problems while publishing are not fatal for the boards: say so and go on.
    void warn(const std::string& what, int negativeErrno) {
        log.warning("D-Bus: " + what + ": " + errnoText(negativeErrno));
    }
    void publish(const BoardStatus& status, bool announce);
    void update(Board& board, std::uint32_t fields);
    void emitFields(Board& board, std::uint32_t fields);
    void flushProgress(Board& board);
    void armProgressTimer(Board& board, std::uint64_t when);
    void emitManagerProperty(const char* name);
    void emitSignal(const char* member, const char* types, ...);
    Board* find(const std::string& port);

    static int managerProperty(sd_bus*, const char*, const char*, const char* property,
                               sd_bus_message* reply, void* userdata, sd_bus_error* error);
    static int deviceProperty(sd_bus*, const char*, const char*, const char* property,
                              sd_bus_message* reply, void* userdata, sd_bus_error* error);
    static int listDevices(sd_bus_message* call, void* userdata, sd_bus_error* error);
    static int reload(sd_bus_message* call, void* userdata, sd_bus_error* error);
    static int portControl(sd_bus_message* call, void* userdata, sd_bus_error* error);
    static int boardControl(sd_bus_message* call, void* userdata, sd_bus_error* error);
    static int onProgressTimer(sd_event_source*, std::uint64_t, void* userdata);
};

// clang-format off
const sd_bus_vtable DbusService::Impl::kManagerVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Version", "s", managerProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Devices", "ao", managerProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Profiles", "as", managerProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("HeldPorts", "as", managerProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_METHOD_WITH_NAMES("ListDevices", "", "", "a(ossss)", SD_BUS_PARAM(devices),
                             listDevices, SD_BUS_VTABLE_UNPRIVILEGED),
    // UNPRIVILEGED only lifts sd-bus's CAP_SYS_ADMIN default; reload() checks the caller.
    SD_BUS_METHOD("Reload", "", "", reload, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("HoldPort", "s", SD_BUS_PARAM(glob), "", , portControl,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ReleasePort", "s", SD_BUS_PARAM(glob), "", , portControl,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_NAMES("DeviceAdded", "o", SD_BUS_PARAM(path), 0),
    SD_BUS_SIGNAL_WITH_NAMES("DeviceRemoved", "o", SD_BUS_PARAM(path), 0),
    SD_BUS_SIGNAL_WITH_NAMES("BootFinished", "obs",
                             SD_BUS_PARAM(path) SD_BUS_PARAM(success) SD_BUS_PARAM(message), 0),
    SD_BUS_VTABLE_END,
};

const sd_bus_vtable DbusService::Impl::kDeviceVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Port", "s", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Chip", "s", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Serial", "s", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Profile", "s", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Stage", "s", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("CurrentFile", "s", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("BytesSent", "t", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("BytesTotal", "t", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("FilesServed", "u", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("BootCount", "u", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LastError", "s", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("StartedUsec", "t", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("FinishedUsec", "t", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Metadata", "a{ss}", deviceProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    // Operator control; boardControl() checks the caller like Reload.
    SD_BUS_METHOD("Retry", "", "", boardControl, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Forget", "", "", boardControl, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Hold", "", "", boardControl, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Release", "", "", boardControl, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};
// clang-format on

void DbusService::Impl::connect() {
    sd_bus* raw = nullptr;
    int r = 0;
    const std::string& spec = options.bus;
    if (spec == "system") {
        r = sd_bus_open_system(&raw);
    } else if (spec == "session" || spec == "user") {
        r = sd_bus_open_user(&raw);
    } else {
        r = sd_bus_new(&raw);
        if (r >= 0) {
            bus.reset(raw);
            raw = nullptr;
            r = sd_bus_set_address(bus.get(), spec.c_str());
        }
        if (r >= 0) {
            r = sd_bus_set_bus_client(bus.get(), 1);
        }
        if (r >= 0) {
            r = sd_bus_start(bus.get());
        }
    }
    if (raw != nullptr) {
        bus.reset(raw);
    }
    if (r < 0) {
        throw rpiboot::Error(rpiboot::Errc::Io,
                             "Cannot connect to the D-Bus " + spec + " bus: " + errnoText(r));
    }
    // Without its bus the daemon cannot be watched or controlled; the service
    // manager restarts it, so let the loop end.
    sd_bus_set_exit_on_disconnect(bus.get(), 1);
    r = sd_bus_attach_event(bus.get(), event, SD_EVENT_PRIORITY_NORMAL);
    if (r < 0) {
        throw rpiboot::Error(
            rpiboot::Errc::Io,
            "Cannot attach the D-Bus connection to the event loop: " + errnoText(r));
    }
}

DbusService::Impl::Board* DbusService::Impl::find(const std::string& port) {
    const auto it = boards.find(port);
    return it == boards.end() ? nullptr : it->second.get();
}

void DbusService::Impl::publish(const BoardStatus& status, bool announce) {
    auto board = std::make_unique<Board>();
    board->owner = this;
    board->status = status;
    board->path = devicePath(status.port);
    sd_bus_slot* slot = nullptr;
    int r = sd_bus_add_object_vtable(bus.get(), &slot, board->path.c_str(), kDeviceInterface,
                                     kDeviceVtable, board.get());
    if (r < 0) {
        warn("cannot publish " + board->path + " for port " + status.port, r);
        return;
    }
    board->vtable.reset(slot);
    const std::string path = board->path;
    boards[status.port] = std::move(board);
    if (!announce) {
        return;
    }
    r = sd_bus_emit_interfaces_added(bus.get(), path.c_str(), kDeviceInterface, nullptr);
    if (r < 0) {
        warn("cannot announce the interfaces of " + path, r);
    }
    emitSignal("DeviceAdded", "o", path.c_str());
    emitManagerProperty("Devices");
}

void DbusService::Impl::emitSignal(const char* member, const char* types, ...) {
    va_list args;
    va_start(args, types);
    MessagePtr message;
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_signal(bus.get(), &raw, kManagerPath, kManagerInterface, member);
    if (r >= 0) {
        message.reset(raw);
        r = sd_bus_message_appendv(message.get(), types, args);
    }
    va_end(args);
    if (r >= 0) {
        r = sd_bus_send(bus.get(), message.get(), nullptr);
    }
    if (r < 0) {
        warn(std::string("cannot send signal ") + member, r);
    }
}

void DbusService::Impl::emitManagerProperty(const char* name) {
    const int r =
        sd_bus_emit_properties_changed(bus.get(), kManagerPath, kManagerInterface, name, nullptr);
    if (r < 0) {
        warn(std::string("cannot announce the change of Manager.") + name, r);
    }
}

void DbusService::Impl::emitFields(Board& board, std::uint32_t fields) {
    fields &= kAllChangeableFields;
    if ((fields & kProgressFields) != 0) {
        sd_event_now(event, CLOCK_MONOTONIC, &board.lastProgressUsec);
        board.pendingFields &= ~kProgressFields;
        if (board.timerArmed) {
            sd_event_source_set_enabled(board.progressTimer.get(), SD_EVENT_OFF);
            board.timerArmed = false;
        }
    }
    std::vector<char*> names;
    for (const auto& f : kChangeableFields) {
        if ((fields & f.field) != 0) {
            names.push_back(const_cast<char*>(f.name));
        }
    }
    if (names.empty()) {
        return;
    }
    names.push_back(nullptr);
    const int r = sd_bus_emit_properties_changed_strv(bus.get(), board.path.c_str(),
                                                      kDeviceInterface, names.data());
    if (r < 0) {
        warn("cannot announce property changes of " + board.path, r);
    }
}

void DbusService::Impl::flushProgress(Board& board) {
    if (board.pendingFields != 0) {
        emitFields(board, board.pendingFields);
    }
}

void DbusService::Impl::armProgressTimer(Board& board, std::uint64_t when) {
    int r = 0;
    if (board.progressTimer) {
        r = sd_event_source_set_time(board.progressTimer.get(), when);
        if (r >= 0) {
            r = sd_event_source_set_enabled(board.progressTimer.get(), SD_EVENT_ONESHOT);
        }
    } else {
        sd_event_source* raw = nullptr;
        r = sd_event_add_time(event, &raw, CLOCK_MONOTONIC, when, 0, onProgressTimer, &board);
        if (r >= 0) {
            board.progressTimer.reset(raw);
        }
    }
    if (r < 0) {
        // Without a timer, say it now rather than never.
        warn("cannot schedule a progress update of " + board.path, r);
        flushProgress(board);
        return;
    }
    board.timerArmed = true;
}

void DbusService::Impl::update(Board& board, std::uint32_t fields) {
    const std::uint32_t progress = fields & kProgressFields;
    const std::uint32_t immediate = fields & ~kProgressFields & kAllChangeableFields;
    if (immediate != 0) {
        // Pending progress goes out in the same signal, so a client never
        // sees a Stage or file change before the bytes that led to it.
        emitFields(board, immediate | progress | board.pendingFields);
        return;
    }
    if (progress == 0) {
        return;
    }
    board.pendingFields |= progress;
    if (board.timerArmed) {
        return;
    }
    std::uint64_t now = 0;
    sd_event_now(event, CLOCK_MONOTONIC, &now);
    const std::uint64_t due = board.lastProgressUsec + options.progressIntervalUsec;
    if (board.lastProgressUsec == 0 || now >= due) {
        flushProgress(board);
        return;
    }
    armProgressTimer(board, due);
}

int DbusService::Impl::onProgressTimer(sd_event_source*, std::uint64_t, void* userdata) {
    auto& board = *static_cast<Board*>(userdata);
    board.timerArmed = false;
    board.owner->flushProgress(board);
    return 0;
}

int DbusService::Impl::managerProperty(sd_bus*, const char*, const char*, const char* property,
                                       sd_bus_message* reply, void* userdata, sd_bus_error* error) {
    auto& self = *static_cast<Impl*>(userdata);
    const std::string_view name = property;
    try {
        if (name == "Version") {
            return sd_bus_message_append(reply, "s", self.options.version.c_str());
        }
        if (name == "Devices") {
            int r = sd_bus_message_open_container(reply, 'a', "o");
            for (auto it = self.boards.begin(); r >= 0 && it != self.boards.end(); ++it) {
                r = sd_bus_message_append(reply, "o", it->second->path.c_str());
            }
            return r < 0 ? r : sd_bus_message_close_container(reply);
        }
        if (name == "Profiles" || name == "HeldPorts") {
            const std::vector<std::string> profiles =
                name == "Profiles" ? self.control.profileNames() : self.control.heldPorts();
            int r = sd_bus_message_open_container(reply, 'a', "s");
            for (auto it = profiles.begin(); r >= 0 && it != profiles.end(); ++it) {
                r = sd_bus_message_append(reply, "s", it->c_str());
            }
            return r < 0 ? r : sd_bus_message_close_container(reply);
        }
    } catch (const std::exception& e) {
        return sd_bus_error_set(error, SD_BUS_ERROR_FAILED, e.what());
    }
    return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "No property %s", property);
}

int DbusService::Impl::deviceProperty(sd_bus*, const char*, const char*, const char* property,
                                      sd_bus_message* reply, void* userdata, sd_bus_error* error) {
    const BoardStatus& s = static_cast<const Board*>(userdata)->status;
    const std::string_view name = property;
    const auto text = [reply](const std::string& value) {
        return sd_bus_message_append(reply, "s", value.c_str());
    };
    if (name == "Port")
        return text(s.port);
    if (name == "Chip")
        return text(s.chip);
    if (name == "Serial")
        return text(s.serial);
    if (name == "Profile")
        return text(s.profile);
    if (name == "Stage")
        return text(s.stage);
    if (name == "CurrentFile")
        return text(s.currentFile);
    if (name == "LastError")
        return text(s.lastError);
    if (name == "BytesSent")
        return sd_bus_message_append(reply, "t", s.bytesSent);
    if (name == "BytesTotal")
        return sd_bus_message_append(reply, "t", s.bytesTotal);
    if (name == "StartedUsec")
        return sd_bus_message_append(reply, "t", s.startedUsec);
    if (name == "FinishedUsec")
        return sd_bus_message_append(reply, "t", s.finishedUsec);
    if (name == "FilesServed")
        return sd_bus_message_append(reply, "u", s.filesServed);
    if (name == "BootCount")
        return sd_bus_message_append(reply, "u", s.bootCount);
    if (name == "Metadata")
        return appendMetadata(reply, s.metadata);
    return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "No property %s", property);
}

int DbusService::Impl::listDevices(sd_bus_message* call, void* userdata, sd_bus_error*) {
    auto& self = *static_cast<Impl*>(userdata);
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(call, &raw);
    if (r < 0) {
        return r;
    }
    MessagePtr reply(raw);
    r = sd_bus_message_open_container(reply.get(), 'a', "(ossss)");
    for (auto it = self.boards.begin(); r >= 0 && it != self.boards.end(); ++it) {
        const Board& b = *it->second;
        r = sd_bus_message_append(reply.get(), "(ossss)", b.path.c_str(), b.status.port.c_str(),
                                  b.status.chip.c_str(), b.status.stage.c_str(),
                                  b.status.profile.c_str());
    }
    if (r >= 0) {
        r = sd_bus_message_close_container(reply.get());
    }
    return r < 0 ? r : sd_bus_send(nullptr, reply.get(), nullptr);
}

int DbusService::Impl::reload(sd_bus_message* call, void* userdata, sd_bus_error* error) {
    auto& self = *static_cast<Impl*>(userdata);
    int r = checkCallerAllowed(call, self.options.privilegedGroup, error);
    if (r < 0) {
        return r;
    }
    ReloadResult result;
    try {
        result = self.control.reload();
    } catch (const std::exception& e) {
        result = ReloadResult{false, e.what()};
    }
    if (!result.ok) {
        return sd_bus_error_set(error, kErrorReloadFailed, result.message.c_str());
    }
    self.emitManagerProperty("Profiles");
    return sd_bus_reply_method_return(call, "");
}

int DbusService::Impl::portControl(sd_bus_message* call, void* userdata, sd_bus_error* error) {
    auto& self = *static_cast<Impl*>(userdata);
    int r = checkCallerAllowed(call, self.options.privilegedGroup, error);
    if (r < 0) {
        return r;
    }
    const char* glob = nullptr;
    r = sd_bus_message_read(call, "s", &glob);
    if (r < 0) {
        return r;
    }
    const bool hold = std::string_view(sd_bus_message_get_member(call)) == "HoldPort";
    ControlResult result;
    try {
        result = hold ? self.control.holdPort(glob) : self.control.releasePort(glob);
    } catch (const std::exception& e) {
        return sd_bus_error_set(error, SD_BUS_ERROR_FAILED, e.what());
    }
    if (!result.ok()) {
        return controlError(result, error);
    }
    return sd_bus_reply_method_return(call, "");
}

int DbusService::Impl::boardControl(sd_bus_message* call, void* userdata, sd_bus_error* error) {
    auto& board = *static_cast<Board*>(userdata);
    Impl& self = *board.owner;
    int r = checkCallerAllowed(call, self.options.privilegedGroup, error);
    if (r < 0) {
        return r;
    }
    const std::string_view member = sd_bus_message_get_member(call);
    const BoardAction action = member == "Retry"    ? BoardAction::Retry
                               : member == "Forget" ? BoardAction::Forget
                               : member == "Hold"   ? BoardAction::Hold
                                                    : BoardAction::Release;
    // Copied: Forget removes this object (and `board`) before it returns.
    const std::string port = board.status.port;
    ControlResult result;
    try {
        result = self.control.control(port, action);
    } catch (const std::exception& e) {
        return sd_bus_error_set(error, SD_BUS_ERROR_FAILED, e.what());
    }
    if (!result.ok()) {
        return controlError(result, error);
    }
    return sd_bus_reply_method_return(call, "");
}

DbusService::DbusService(sd_event* event, const DbusOptions& options, ManagerControl& control,
                         Logger& log)
    : impl_(std::make_unique<Impl>(event, options, control, log)) {
    Impl& self = *impl_;
    self.connect();
    sd_bus_slot* slot = nullptr;
    int r = sd_bus_add_object_vtable(self.bus.get(), &slot, kManagerPath, kManagerInterface,
                                     Impl::kManagerVtable, &self);
    if (r < 0) {
        throw rpiboot::Error(rpiboot::Errc::Io,
                             std::string("Cannot publish ") + kManagerPath + ": " + errnoText(r));
    }
    self.managerVtable.reset(slot);
    r = sd_bus_add_object_manager(self.bus.get(), &slot, kManagerPath);
    if (r < 0) {
        throw rpiboot::Error(rpiboot::Errc::Io, std::string("Cannot add the object manager at ") +
                                                    kManagerPath + ": " + errnoText(r));
    }
    self.objectManager.reset(slot);
    for (const BoardStatus& board : control.boards()) {
        self.publish(board, false);
    }
    r = sd_bus_request_name(self.bus.get(), kBusName, 0);
    if (r == -EEXIST || r == -EALREADY) {
        throw rpiboot::Error(rpiboot::Errc::Refused,
                             std::string("Another process already owns the bus name ") + kBusName +
                                 " on the " + options.bus + " bus");
    }
    if (r == -EACCES || r == -EPERM) {
        throw rpiboot::Error(rpiboot::Errc::Refused,
                             std::string("The D-Bus policy does not let us own ") + kBusName +
                                 " on the " + options.bus +
                                 " bus: is io.rpibootd1.conf installed in "
                                 "/usr/share/dbus-1/system.d?");
    }
    if (r < 0) {
        throw rpiboot::Error(rpiboot::Errc::Io, std::string("Cannot take the bus name ") +
                                                    kBusName + ": " + errnoText(r));
    }
}

DbusService::~DbusService() = default;

void DbusService::boardAdded(const BoardStatus& board) {
    if (Impl::Board* known = impl_->find(board.port)) {
        known->status = board;
        impl_->update(*known, kAllChangeableFields);
        return;
    }
    impl_->publish(board, true);
}

void DbusService::boardChanged(const BoardStatus& board, std::uint32_t changedFields) {
    Impl::Board* known = impl_->find(board.port);
    if (known == nullptr) {
        impl_->publish(board, true);
        return;
    }
    known->status = board;
    impl_->update(*known, changedFields);
}

void DbusService::boardRemoved(const std::string& port) {
    const auto it = impl_->boards.find(port);
    if (it == impl_->boards.end()) {
        return;
    }
    const std::string path = it->second->path;
    impl_->emitSignal("DeviceRemoved", "o", path.c_str());
    const int r =
        sd_bus_emit_interfaces_removed(impl_->bus.get(), path.c_str(), kDeviceInterface, nullptr);
    if (r < 0) {
        impl_->warn("cannot announce the removal of " + path, r);
    }
    impl_->boards.erase(it);
    impl_->emitManagerProperty("Devices");
}

void DbusService::bootFinished(const std::string& port, bool success, const std::string& message) {
    std::string path;
    if (Impl::Board* known = impl_->find(port)) {
        impl_->flushProgress(*known);
        path = known->path;
    } else {
        path = devicePath(port);
    }
    impl_->emitSignal("BootFinished", "obs", path.c_str(), static_cast<int>(success),
                      message.c_str());
}

void DbusService::heldPortsChanged() {
    impl_->emitManagerProperty("HeldPorts");
}

std::string DbusService::uniqueName() const {
    const char* name = nullptr;
    if (sd_bus_get_unique_name(impl_->bus.get(), &name) < 0 || name == nullptr) {
        return {};
    }
    return name;
}

}  // namespace rpibootd
