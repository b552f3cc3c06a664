#include "rpiboot_test/bus_client.hpp"

#include <stdexcept>
#include <system_error>

namespace rpiboot::test {
namespace {

constexpr const char* kService = "io.rpibootd1";
constexpr std::uint64_t kCallTimeoutUsec = 10'000'000;

void check(int r, const std::string& what) {
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), what);
    }
}

std::string readVariantAsText(sd_bus_message* m) {
    char type = 0;
    const char* contents = nullptr;
    check(sd_bus_message_peek_type(m, &type, &contents), "peek variant");
    check(sd_bus_message_enter_container(m, 'v', contents), "enter variant");
    std::string text = "?";
    const std::string sig = contents;
    if (sig == "s" || sig == "o") {
        const char* s = nullptr;
        check(sd_bus_message_read_basic(m, sig[0], &s), "read string");
        text = s;
    } else if (sig == "t") {
        std::uint64_t v = 0;
        check(sd_bus_message_read_basic(m, 't', &v), "read t");
        text = std::to_string(v);
    } else if (sig == "u") {
        std::uint32_t v = 0;
        check(sd_bus_message_read_basic(m, 'u', &v), "read u");
        text = std::to_string(v);
    } else {
        check(sd_bus_message_skip(m, contents), "skip variant");
    }
    check(sd_bus_message_exit_container(m), "exit variant");
    return text;
}

void readPropertiesChanged(sd_bus_message* m, SeenSignal& seen) {
    const char* interface = nullptr;
    check(sd_bus_message_read(m, "s", &interface), "read interface");
    seen.interface = interface;
    check(sd_bus_message_enter_container(m, 'a', "{sv}"), "enter changed");
    while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
        const char* name = nullptr;
        check(sd_bus_message_read(m, "s", &name), "read name");
        seen.changed[name] = readVariantAsText(m);
        check(sd_bus_message_exit_container(m), "exit entry");
    }
    check(sd_bus_message_exit_container(m), "exit changed");
}

struct Pending {
    bool done = false;
    CallResult result;
};

int onReply(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto& pending = *static_cast<Pending*>(userdata);
    pending.done = true;
    if (sd_bus_message_is_method_error(m, nullptr)) {
        const sd_bus_error* e = sd_bus_message_get_error(m);
        pending.result.errorName = e->name != nullptr ? e->name : "";
        pending.result.errorMessage = e->message != nullptr ? e->message : "";
        return 0;
    }
    pending.result.reply.reset(sd_bus_message_ref(m));
    return 0;
}

}  // namespace

EventPtr newEventLoop() {
    sd_event* raw = nullptr;
    check(sd_event_new(&raw), "sd_event_new");
    return EventPtr(raw);
}

bool pumpUntil(sd_event* event, const std::function<bool()>& done,
               std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        check(sd_event_run(event, 10'000), "sd_event_run");
    }
    return true;
}

BusClient::BusClient(sd_event* event, const std::string& address) : event_(event) {
    sd_bus* raw = nullptr;
    check(sd_bus_new(&raw), "sd_bus_new");
    bus_.reset(raw);
    check(sd_bus_set_address(raw, address.c_str()), "set address " + address);
    check(sd_bus_set_bus_client(raw, 1), "bus client");
    check(sd_bus_start(raw), "connect to " + address);
    check(sd_bus_attach_event(raw, event, SD_EVENT_PRIORITY_NORMAL), "attach client");
}

void BusClient::recordSignals() {
    sd_bus_slot* slot = nullptr;
    check(sd_bus_add_match(bus_.get(), &slot, "type='signal',path_namespace='/io/rpibootd1'",
                           onSignal, this),
          "add match");
    match_.reset(slot);
}

int BusClient::onSignal(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto& self = *static_cast<BusClient*>(userdata);
    SeenSignal seen;
    seen.member = sd_bus_message_get_member(m);
    seen.path = sd_bus_message_get_path(m);
    try {
        if (seen.member == "PropertiesChanged") {
            readPropertiesChanged(m, seen);
        } else if (seen.member == "BootFinished") {
            const char* path = nullptr;
            const char* message = nullptr;
            int success = 0;
            check(sd_bus_message_read(m, "obs", &path, &success, &message), "BootFinished");
            seen.object = path;
            seen.success = success != 0;
            seen.message = message;
        } else {
            // DeviceAdded, DeviceRemoved, InterfacesAdded, InterfacesRemoved: "o..."
            const char* path = nullptr;
            if (sd_bus_message_read(m, "o", &path) > 0) {
                seen.object = path;
            }
        }
    } catch (const std::exception& e) {
        seen.message = std::string("unreadable: ") + e.what();
    }
    self.signals_.push_back(std::move(seen));
    return 0;
}

bool BusClient::waitForSignal(const std::function<bool(const SeenSignal&)>& match,
                              std::chrono::milliseconds timeout) {
    return waitForSignals(1, match, timeout);
}

bool BusClient::waitForSignals(std::size_t count,
                               const std::function<bool(const SeenSignal&)>& match,
                               std::chrono::milliseconds timeout) {
    std::size_t checked = 0;
    std::size_t matched = 0;
    return pumpUntil(
        event_,
        [&] {
            for (; checked < signals_.size(); ++checked) {
                matched += match(signals_[checked]) ? 1 : 0;
            }
            return matched >= count;
        },
        timeout);
}

CallResult BusClient::finish(sd_bus_message* call) {
    ClientMessagePtr owned(call);
    Pending pending;
    sd_bus_slot* slot = nullptr;
    check(sd_bus_call_async(bus_.get(), &slot, call, onReply, &pending, kCallTimeoutUsec), "call");
    ClientSlotPtr keep(slot);
    if (!pumpUntil(event_, [&] { return pending.done; })) {
        throw std::runtime_error("no answer from io.rpibootd1");
    }
    return std::move(pending.result);
}

CallResult BusClient::call(const std::string& path, const std::string& interface,
                           const std::string& member) {
    sd_bus_message* m = nullptr;
    check(sd_bus_message_new_method_call(bus_.get(), &m, kService, path.c_str(), interface.c_str(),
                                         member.c_str()),
          "new call");
    return finish(m);
}

CallResult BusClient::getProperty(const std::string& path, const std::string& interface,
                                  const std::string& property) {
    sd_bus_message* m = nullptr;
    check(sd_bus_message_new_method_call(bus_.get(), &m, kService, path.c_str(),
                                         "org.freedesktop.DBus.Properties", "Get"),
          "new Get");
    ClientMessagePtr owned(m);
    check(sd_bus_message_append(m, "ss", interface.c_str(), property.c_str()), "append");
    return finish(owned.release());
}

namespace {

sd_bus_message* enterValue(const CallResult& r, const std::string& property, const char* type) {
    if (!r.ok()) {
        throw std::runtime_error("Get " + property + " failed: " + r.errorName + ": " +
                                 r.errorMessage);
    }
    check(sd_bus_message_enter_container(r.reply.get(), 'v', type), "variant of " + property);
    return r.reply.get();
}

}  // namespace

std::string BusClient::getString(const std::string& path, const std::string& interface,
                                 const std::string& property) {
    const CallResult r = getProperty(path, interface, property);
    const char* s = nullptr;
    check(sd_bus_message_read(enterValue(r, property, "s"), "s", &s), property);
    return s;
}

std::uint64_t BusClient::getUint64(const std::string& path, const std::string& property) {
    const CallResult r = getProperty(path, "io.rpibootd1.Device", property);
    std::uint64_t v = 0;
    check(sd_bus_message_read(enterValue(r, property, "t"), "t", &v), property);
    return v;
}

std::uint32_t BusClient::getUint32(const std::string& path, const std::string& property) {
    const CallResult r = getProperty(path, "io.rpibootd1.Device", property);
    std::uint32_t v = 0;
    check(sd_bus_message_read(enterValue(r, property, "u"), "u", &v), property);
    return v;
}

std::vector<std::string> BusClient::getStrings(const std::string& path,
                                               const std::string& interface,
                                               const std::string& property) {
    const CallResult r = getProperty(path, interface, property);
    if (!r.ok()) {
        throw std::runtime_error("Get " + property + " failed: " + r.errorMessage);
    }
    char type = 0;
    const char* contents = nullptr;
    check(sd_bus_message_peek_type(r.reply.get(), &type, &contents), "peek");
    const std::string sig = contents;  // "as" or "ao"
    check(sd_bus_message_enter_container(r.reply.get(), 'v', sig.c_str()), "variant");
    check(sd_bus_message_enter_container(r.reply.get(), 'a', sig.c_str() + 1), "array");
    std::vector<std::string> out;
    const char* s = nullptr;
    while (sd_bus_message_read_basic(r.reply.get(), sig[1], &s) > 0) {
        out.emplace_back(s);
    }
    return out;
}

std::map<std::string, std::string> BusClient::getDict(const std::string& path,
                                                      const std::string& property) {
    const CallResult r = getProperty(path, "io.rpibootd1.Device", property);
    sd_bus_message* m = enterValue(r, property, "a{ss}");
    check(sd_bus_message_enter_container(m, 'a', "{ss}"), "array");
    std::map<std::string, std::string> out;
    const char* key = nullptr;
    const char* value = nullptr;
    while (sd_bus_message_read(m, "{ss}", &key, &value) > 0) {
        out[key] = value;
    }
    return out;
}

}  // namespace rpiboot::test
