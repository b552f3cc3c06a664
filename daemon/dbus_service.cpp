// D-Bus adapter of rpibootd on raw sd-bus. See dbus_service.hpp and docs/dbus-api.md.
#include "dbus_service.hpp"

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <map>
#include <memory>
#include <rpiboot/core/error.hpp>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "dbus_authorization.hpp"
#include "handles.hpp"

namespace rpibootd {
namespace {

using rpiboot::errnoText;

// What PropertiesChanged may name (Port never changes).
constexpr std::uint32_t kAnnouncedFields = fieldsThatEmit(Emits::OnChange);

// One appender and one signature per C++ type a BoardStatus member may have.
int append(sd_bus_message* reply, const std::string& value) {
    return sd_bus_message_append(reply, "s", value.c_str());
}
int append(sd_bus_message* reply, std::uint64_t value) {
    return sd_bus_message_append(reply, "t", value);
}
int append(sd_bus_message* reply, std::uint32_t value) {
    return sd_bus_message_append(reply, "u", value);
}
int append(sd_bus_message* reply, const std::map<std::string, std::string>& metadata) {
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

int append(sd_bus_message* reply, const std::vector<DiskEntry>& disks) {
    int r = sd_bus_message_open_container(reply, 'a', "(sst)");
    for (auto it = disks.begin(); r >= 0 && it != disks.end(); ++it) {
        r = sd_bus_message_append(reply, "(sst)", it->node.c_str(), it->model.c_str(),
                                  it->sizeBytes);
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
}

constexpr const char* signatureOf(std::string BoardStatus::*) {
    return "s";
}
constexpr const char* signatureOf(std::uint64_t BoardStatus::*) {
    return "t";
}
constexpr const char* signatureOf(std::uint32_t BoardStatus::*) {
    return "u";
}
constexpr const char* signatureOf(std::map<std::string, std::string> BoardStatus::*) {
    return "a{ss}";
}
constexpr const char* signatureOf(std::vector<DiskEntry> BoardStatus::*) {
    return "a(sst)";
}

const BoardProperty* findProperty(std::string_view name) {
    for (const auto& property : kBoardProperties) {
        if (name == property.name) {
            return &property;
        }
    }
    return nullptr;
}

// A board as published: its last status and its object.
// What only a transfer changes: announced at most once per kAnnounceInterval
// per board. A board asking for many small files would otherwise cost a
// PropertiesChanged (and a dbus-daemon wake-up) per file while its next
// request waits. Get/GetAll always read the current values; any other change
// goes out at once, carrying what was held back with it.
constexpr std::uint32_t kTransferFields =
    kFieldCurrentFile | kFieldBytesSent | kFieldBytesTotal | kFieldFilesServed;
constexpr auto kAnnounceInterval = std::chrono::milliseconds(100);
constexpr bool transferOnly(std::uint32_t fields) {
    return (fields & ~kTransferFields) == 0;
}

struct PublishedBoard {
    BoardStatus status;
    std::string path;
    BusSlotPtr vtable;
    DbusService::Impl* owner = nullptr;  // for the board's methods
    std::uint32_t heldBack = 0;          // transfer fields changed but not yet announced
    std::unique_ptr<Timer> window;       // armed: transfer changes are being held back
};

// Retry, Forget, Hold, Release on a board (after the caller check).
int boardControl(sd_bus_message* call, void* userdata, sd_bus_error* error);

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

int deviceProperty(sd_bus*, const char*, const char*, const char* name, sd_bus_message* reply,
                   void* userdata, sd_bus_error* error) {
    const BoardStatus& status = static_cast<const PublishedBoard*>(userdata)->status;
    const BoardProperty* property = findProperty(name);
    if (property == nullptr) {
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "No property %s", name);
    }
    return std::visit([&](auto member) { return append(reply, status.*member); }, property->member);
}

// The io.rpibootd1.Device vtable: one SD_BUS_PROPERTY per kBoardProperties
// row, then the operator's methods (UNPRIVILEGED only lifts sd-bus's
// CAP_SYS_ADMIN default; boardControl() checks the caller like Reload).
const sd_bus_vtable* deviceVtable() {
    static const std::vector<sd_bus_vtable> vtable = [] {
        std::vector<sd_bus_vtable> v{SD_BUS_VTABLE_START(0)};
        for (const auto& p : kBoardProperties) {
            const char* type = dbusSignature(p);
            // Two spellings: the flags field is a bit-field that takes constants.
            v.push_back(p.emits == Emits::Never
                            ? sd_bus_vtable SD_BUS_PROPERTY(p.name, type, deviceProperty, 0,
                                                            SD_BUS_VTABLE_PROPERTY_CONST)
                            : sd_bus_vtable SD_BUS_PROPERTY(p.name, type, deviceProperty, 0,
                                                            SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE));
        }
        for (const char* method : {"Retry", "Forget", "Hold", "Release"}) {
            v.push_back(sd_bus_vtable SD_BUS_METHOD(method, "", "", boardControl,
                                                    SD_BUS_VTABLE_UNPRIVILEGED));
        }
        v.push_back(SD_BUS_VTABLE_END);
        return v;
    }();
    return vtable.data();
}

// Throws rpiboot::Error(Io) saying `what` failed when `r` is an error.
void check(int r, const std::string& what) {
    if (r < 0) {
        throw rpiboot::Error(rpiboot::Errc::Io, what + ": " + errnoText(r));
    }
}

// A started connection to `spec`: "system", "session"/"user" or an address.
BusPtr openBus(const std::string& spec) {
    sd_bus* raw = nullptr;
    const std::string what = "Cannot connect to the D-Bus " + spec + " bus";
    if (spec == "system" || spec == "session" || spec == "user") {
        check(spec == "system" ? sd_bus_open_system(&raw) : sd_bus_open_user(&raw), what);
        return BusPtr(raw);
    }
    check(sd_bus_new(&raw), what);
    BusPtr bus(raw);
    check(sd_bus_set_address(bus.get(), spec.c_str()), what);
    check(sd_bus_set_bus_client(bus.get(), 1), what);
    check(sd_bus_start(bus.get()), what);
    return bus;
}

}  // namespace

const char* dbusSignature(const BoardProperty& property) {
    return std::visit([](auto member) { return signatureOf(member); }, property.member);
}

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
    Impl(EventLoop& eventLoop, DbusOptions opts, ManagerControl& ctl, Logger& logger)
        : loop(eventLoop), options(std::move(opts)), control(ctl), log(logger) {}

    EventLoop& loop;
    DbusOptions options;
    ManagerControl& control;
    Logger& log;
    // Declared before the slots and boards so that those go first.
    BusPtr bus;
    BusSlotPtr managerVtable;
    BusSlotPtr objectManager;
    std::map<std::string, std::unique_ptr<PublishedBoard>> boards;  // by port

    static const sd_bus_vtable kManagerVtable[];

    void connect();
    // Problems while publishing are not fatal for the boards: say so and go on.
    void warn(const std::string& what, int negativeErrno) {
        log.warning("D-Bus: " + what + ": " + errnoText(negativeErrno));
    }
    void publish(const BoardStatus& status, bool announce);
    void emitFields(PublishedBoard& board, std::uint32_t fields);
    // Announces `fields` (and what was held back) now; after a transfer-only
    // change, holds further transfer-only changes back for kAnnounceInterval.
    void announce(PublishedBoard& board, std::uint32_t fields);
    void emitManagerProperty(const char* name);
    void emitSignal(const char* member, const char* types, ...);
    PublishedBoard* find(const std::string& port);

    static int version(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply,
                       void* userdata, sd_bus_error*);
    static int devices(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply,
                       void* userdata, sd_bus_error*);
    static int profiles(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply,
                        void* userdata, sd_bus_error* error);
    static int heldPorts(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply,
                         void* userdata, sd_bus_error* error);
    static int portControl(sd_bus_message* call, void* userdata, sd_bus_error* error);
    static int listDevices(sd_bus_message* call, void* userdata, sd_bus_error* error);
    static int listDevicesEx(sd_bus_message* call, void* userdata, sd_bus_error* error);
    static int reload(sd_bus_message* call, void* userdata, sd_bus_error* error);
};

// clang-format off
const sd_bus_vtable DbusService::Impl::kManagerVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Version", "s", version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Devices", "ao", devices, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Profiles", "as", profiles, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("HeldPorts", "as", heldPorts, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_METHOD_WITH_NAMES("ListDevices", "", "", "a(ossss)", SD_BUS_PARAM(devices),
                             listDevices, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListDevicesEx", "", "", "a(osssssa(sst))", SD_BUS_PARAM(devices),
                             listDevicesEx, SD_BUS_VTABLE_UNPRIVILEGED),
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
// clang-format on

void DbusService::Impl::connect() {
    bus = openBus(options.bus);
    // Without its bus the daemon cannot be watched or controlled; the service
    // manager restarts it, so let the loop end.
    sd_bus_set_exit_on_disconnect(bus.get(), 1);
    check(sd_bus_attach_event(bus.get(), loop.get(), SD_EVENT_PRIORITY_NORMAL),
          "Cannot attach the D-Bus connection to the event loop");
}

PublishedBoard* DbusService::Impl::find(const std::string& port) {
    const auto it = boards.find(port);
    return it == boards.end() ? nullptr : it->second.get();
}

void DbusService::Impl::publish(const BoardStatus& status, bool announce) {
    auto board = std::make_unique<PublishedBoard>();
    board->status = status;
    board->path = devicePath(status.port);
    board->owner = this;
    sd_bus_slot* slot = nullptr;
    int r = sd_bus_add_object_vtable(bus.get(), &slot, board->path.c_str(), kDeviceInterface,
                                     deviceVtable(), board.get());
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
    BusMessagePtr message;
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

void DbusService::Impl::announce(PublishedBoard& board, std::uint32_t fields) {
    const bool onlyTransfer = transferOnly(fields);
    fields |= std::exchange(board.heldBack, 0);
    emitFields(board, fields);
    if (!onlyTransfer) {
        board.window.reset();  // a stage change: the next transfer change goes out at once
        return;
    }
    board.window = loop.after(kAnnounceInterval, [this, port = board.status.port] {
        PublishedBoard* known = find(port);
        if (known == nullptr) {
            return;
        }
        if (known->heldBack != 0) {
            announce(*known, 0);  // re-arms: changes keep coming
        } else {
            known->window.reset();
        }
    });
}

void DbusService::Impl::emitFields(PublishedBoard& board, std::uint32_t fields) {
    fields &= kAnnouncedFields;
    std::vector<char*> names;
    for (std::size_t i = 0; i < std::size(kBoardProperties); ++i) {
        if ((fields & (1U << i)) != 0) {
            names.push_back(const_cast<char*>(kBoardProperties[i].name));
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

int DbusService::Impl::version(sd_bus*, const char*, const char*, const char*,
                               sd_bus_message* reply, void* userdata, sd_bus_error*) {
    return sd_bus_message_append(reply, "s", static_cast<Impl*>(userdata)->options.version.c_str());
}

int DbusService::Impl::devices(sd_bus*, const char*, const char*, const char*,
                               sd_bus_message* reply, void* userdata, sd_bus_error*) {
    const auto& self = *static_cast<Impl*>(userdata);
    int r = sd_bus_message_open_container(reply, 'a', "o");
    for (auto it = self.boards.begin(); r >= 0 && it != self.boards.end(); ++it) {
        r = sd_bus_message_append(reply, "o", it->second->path.c_str());
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
}

int DbusService::Impl::profiles(sd_bus*, const char*, const char*, const char*,
                                sd_bus_message* reply, void* userdata, sd_bus_error* error) {
    std::vector<std::string> names;
    try {
        names = static_cast<Impl*>(userdata)->control.profileNames();
    } catch (const std::exception& e) {
        return sd_bus_error_set(error, SD_BUS_ERROR_FAILED, e.what());
    }
    int r = sd_bus_message_open_container(reply, 'a', "s");
    for (auto it = names.begin(); r >= 0 && it != names.end(); ++it) {
        r = sd_bus_message_append(reply, "s", it->c_str());
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
}

// Replies to `call` with an array of one `row` per board, in port order;
// `appendRow` appends one board's row (a struct of that signature).
template <typename AppendRow>
int replyWithBoards(sd_bus_message* call,
                    const std::map<std::string, std::unique_ptr<PublishedBoard>>& boards,
                    const char* row, AppendRow appendRow) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(call, &raw);
    if (r < 0) {
        return r;
    }
    BusMessagePtr reply(raw);
    r = sd_bus_message_open_container(reply.get(), 'a', row);
    for (auto it = boards.begin(); r >= 0 && it != boards.end(); ++it) {
        r = appendRow(reply.get(), *it->second);
    }
    if (r >= 0) {
        r = sd_bus_message_close_container(reply.get());
    }
    return r < 0 ? r : sd_bus_send(nullptr, reply.get(), nullptr);
}

int DbusService::Impl::listDevices(sd_bus_message* call, void* userdata, sd_bus_error*) {
    const auto& self = *static_cast<Impl*>(userdata);
    return replyWithBoards(
        call, self.boards, "(ossss)", [](sd_bus_message* reply, const PublishedBoard& b) {
            return sd_bus_message_append(reply, "(ossss)", b.path.c_str(), b.status.port.c_str(),
                                         b.status.chip.c_str(), b.status.stage.c_str(),
                                         b.status.profile.c_str());
        });
}

// ListDevices plus what each board became after its boot (AfterBoot) and the
// disks seen under it (Disks). A new method rather than a longer ListDevices:
// clients of v1 read a(ossss) and would fail on any other signature.
int DbusService::Impl::listDevicesEx(sd_bus_message* call, void* userdata, sd_bus_error*) {
    const auto& self = *static_cast<Impl*>(userdata);
    return replyWithBoards(
        call, self.boards, "(osssssa(sst))", [](sd_bus_message* reply, const PublishedBoard& b) {
            int r = sd_bus_message_open_container(reply, 'r', "osssssa(sst)");
            if (r >= 0) {
                r = sd_bus_message_append(reply, "osssss", b.path.c_str(), b.status.port.c_str(),
                                          b.status.chip.c_str(), b.status.stage.c_str(),
                                          b.status.profile.c_str(), b.status.afterBoot.c_str());
            }
            if (r >= 0) {
                r = append(reply, b.status.disks);
            }
            return r < 0 ? r : sd_bus_message_close_container(reply);
        });
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

int DbusService::Impl::heldPorts(sd_bus*, const char*, const char*, const char*,
                                 sd_bus_message* reply, void* userdata, sd_bus_error* error) {
    std::vector<std::string> globs;
    try {
        globs = static_cast<Impl*>(userdata)->control.heldPorts();
    } catch (const std::exception& e) {
        return sd_bus_error_set(error, SD_BUS_ERROR_FAILED, e.what());
    }
    int r = sd_bus_message_open_container(reply, 'a', "s");
    for (auto it = globs.begin(); r >= 0 && it != globs.end(); ++it) {
        r = sd_bus_message_append(reply, "s", it->c_str());
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
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

namespace {

int boardControl(sd_bus_message* call, void* userdata, sd_bus_error* error) {
    auto& board = *static_cast<PublishedBoard*>(userdata);
    DbusService::Impl& self = *board.owner;
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

}  // namespace

DbusService::DbusService(EventLoop& loop, const DbusOptions& options, ManagerControl& control,
                         Logger& log)
    : impl_(std::make_unique<Impl>(loop, options, control, log)) {
    Impl& self = *impl_;
    self.connect();
    sd_bus_slot* slot = nullptr;
    check(sd_bus_add_object_vtable(self.bus.get(), &slot, kManagerPath, kManagerInterface,
                                   Impl::kManagerVtable, &self),
          std::string("Cannot publish ") + kManagerPath);
    self.managerVtable.reset(slot);
    check(sd_bus_add_object_manager(self.bus.get(), &slot, kManagerPath),
          std::string("Cannot add the object manager at ") + kManagerPath);
    self.objectManager.reset(slot);
    for (const BoardStatus& board : control.boards()) {
        self.publish(board, false);
    }
    const int r = sd_bus_request_name(self.bus.get(), kBusName, 0);
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
    check(r, std::string("Cannot take the bus name ") + kBusName);
}

DbusService::~DbusService() = default;

void DbusService::boardAdded(const BoardStatus& board) {
    if (PublishedBoard* known = impl_->find(board.port)) {
        known->status = board;
        impl_->emitFields(*known, kAnnouncedFields);
        return;
    }
    impl_->publish(board, true);
}

void DbusService::boardChanged(const BoardStatus& board, std::uint32_t changedFields) {
    PublishedBoard* known = impl_->find(board.port);
    if (known == nullptr) {
        impl_->publish(board, true);
        return;
    }
    known->status = board;
    if (transferOnly(changedFields) && known->window) {
        known->heldBack |= changedFields;
        return;
    }
    impl_->announce(*known, changedFields);
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
    if (PublishedBoard* known = impl_->find(port)) {
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
