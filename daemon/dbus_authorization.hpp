// Who may call the privileged methods of io.rpibootd1 (Reload, HoldPort,
// ReleasePort, and Retry, Forget, Hold, Release on a board).
//
// They change what boards are served: only root or a member of the
// privileged group may ask. The bus policy says the same on the system
// bus; this check also holds on session and private buses. It asks the bus
// driver who the sender is (GetConnectionCredentials: from the socket, so it
// holds under ProtectProc=) and falls back to what sd-bus can find out. It
// only answers yes or no; it never changes anything.
#pragma once

#include <systemd/sd-bus.h>

#include <string>

namespace rpibootd {

// 0 when the sender of `call` is root or in `privilegedGroup`; otherwise a
// negative errno with `error` set to org.freedesktop.DBus.Error.AccessDenied
// and a message naming the method, the user and the group ("Retry refused:
// user 65534 is neither root nor in group 'rpiboot'").
int checkCallerAllowed(sd_bus_message* call, const std::string& privilegedGroup,
                       sd_bus_error* error);

}  // namespace rpibootd
