// Caller authorisation of rpibootd's D-Bus methods. See dbus_authorization.hpp.
#include "dbus_authorization.hpp"

#include <grp.h>
#include <systemd/sd-bus.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string_view>
#include <vector>

#include "handles.hpp"

namespace rpibootd {
namespace {

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

// Who sent a method call, as far as the privileged methods care.
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
    BusMessagePtr reply(raw);
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
    BusCredsPtr creds(raw);
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

}  // namespace

int checkCallerAllowed(sd_bus_message* call, const std::string& privilegedGroup,
                       sd_bus_error* error) {
    const char* member = sd_bus_message_get_member(call);
    const char* what = member != nullptr ? member : "the call";
    Caller caller;
    askBusDriver(call, caller);
    if (!caller.uidKnown || !caller.groupsKnown) {
        askSdBus(call, caller);
    }
    if (!caller.uidKnown) {
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "%s refused: the bus did not tell who the caller is", what);
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
                             "%s refused: user %u is neither root nor in group '%s'", what,
                             static_cast<unsigned>(caller.uid), privilegedGroup.c_str());
}

}  // namespace rpibootd
