// The D-Bus face of rpibootd: bus name io.rpibootd1, one manager object and
// one object per board (docs/dbus-api.md is the contract).
//
// DbusService mirrors what the registry publishes through StatusSink into
// D-Bus objects, properties and signals (the Device properties are the table
// kBoardProperties in board_status.hpp), and forwards the few client requests
// (ListDevices, Reload) to ManagerControl. Together with dbus_authorization it
// is the only code that knows sd-bus; it runs on the daemon's event loop and
// must never be called from another thread, never block on a client, and
// never drive a board itself.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "board_status.hpp"
#include "event_loop.hpp"
#include "journal.hpp"

namespace rpibootd {

inline constexpr const char* kBusName = "io.rpibootd1";
inline constexpr const char* kManagerPath = "/io/rpibootd1";
inline constexpr const char* kDevicePathPrefix = "/io/rpibootd1/device";
inline constexpr const char* kManagerInterface = "io.rpibootd1.Manager";
inline constexpr const char* kDeviceInterface = "io.rpibootd1.Device";
inline constexpr const char* kErrorReloadFailed = "io.rpibootd1.Error.ReloadFailed";
inline constexpr const char* kErrorUnknownPort = "io.rpibootd1.Error.UnknownPort";
inline constexpr const char* kErrorBusy = "io.rpibootd1.Error.Busy";
inline constexpr const char* kErrorHeld = "io.rpibootd1.Error.Held";
inline constexpr const char* kErrorNotHeld = "io.rpibootd1.Error.NotHeld";
inline constexpr const char* kPrivilegedGroup = "rpiboot";

// The object path of the board on USB port path `port`: kDevicePathPrefix
// plus the port escaped as sd_bus_path_encode does it (every byte that is not
// [A-Za-z0-9], and a leading digit, becomes _XX in lower-case hex):
// "1-1.3" -> "/io/rpibootd1/device/_31_2d1_2e3".
std::string devicePath(const std::string& port);

// The D-Bus type of a Device property ("s", "t", "u", "a{ss}").
const char* dbusSignature(const BoardProperty& property);

struct DbusOptions {
    // "system", "session", or a D-Bus address ("unix:path=/run/x/bus").
    std::string bus = "system";
    std::string version;
    // Members of this group may call Reload besides root.
    std::string privilegedGroup = kPrivilegedGroup;
};

class DbusService final : public StatusSink {
  public:
    // Connects to the bus, attaches to `loop`, publishes the objects of the
    // boards `control` already knows and takes the bus name. Throws
    // rpiboot::Error when the bus cannot be reached or the name is taken.
    // When the bus connection drops later, the event loop is told to exit.
    // Problems while publishing later are not fatal: they go to `log` as
    // warnings.
    DbusService(EventLoop& loop, const DbusOptions& options, ManagerControl& control, Logger& log);
    ~DbusService() override;

    DbusService(const DbusService&) = delete;
    DbusService& operator=(const DbusService&) = delete;

    void boardAdded(const BoardStatus& board) override;
    void boardChanged(const BoardStatus& board, std::uint32_t changedFields) override;
    void boardRemoved(const std::string& port) override;
    void bootFinished(const std::string& port, bool success, const std::string& message) override;
    void heldPortsChanged() override;

    // The unique name of our connection (":1.42"), for logs and tests.
    std::string uniqueName() const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace rpibootd
