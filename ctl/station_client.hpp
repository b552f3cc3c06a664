// rpibootctl's connection to rpibootd: reads the station over D-Bus, keeps a
// copy live from the daemon's signals, and makes the control calls.
//
// The only part of rpibootctl that knows sd-bus. Every failure becomes a
// CtlError whose message tells an operator what to do (start the daemon,
// join group rpiboot, pick a known port). It never polls: a live view is
// fed by PropertiesChanged, InterfacesAdded/Removed and BootFinished.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "board_view.hpp"

namespace rpibootctl {

// Exit codes (rpibootctl(1)).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;    // a board failed, wait timed out, a call was refused
inline constexpr int kExitUsage = 2;     // bad command line
inline constexpr int kExitNoDaemon = 3;  // rpibootd cannot be reached

class CtlError : public std::runtime_error {
  public:
    CtlError(const std::string& message, int exitCode = kExitFailed)
        : std::runtime_error(message), exitCode_(exitCode) {}
    int exitCode() const noexcept { return exitCode_; }

  private:
    int exitCode_;
};

struct BusDeleter {
    void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
struct SlotDeleter {
    void operator()(sd_bus_slot* slot) const { sd_bus_slot_unref(slot); }
};
struct MessageDeleter {
    void operator()(sd_bus_message* message) const { sd_bus_message_unref(message); }
};
using BusPtr = std::unique_ptr<sd_bus, BusDeleter>;
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotDeleter>;
using MessagePtr = std::unique_ptr<sd_bus_message, MessageDeleter>;

// What changed in a live view.
struct StationEvent {
    enum class Kind {
        BoardAdded,
        BoardChanged,
        BoardRemoved,
        BootFinished,
        HeldChanged,
        DaemonGone
    };
    Kind kind = Kind::BoardChanged;
    std::string path;                 // the board's object
    bool success = false;             // BootFinished
    std::string message;              // BootFinished
    bool stageOrFileChanged = false;  // BoardChanged: more than progress
};

class StationClient {
  public:
    // "system" (default), "session" or a D-Bus address. Throws CtlError.
    explicit StationClient(const std::string& bus);

    StationView snapshot();
    // The board on `port`; throws CtlError naming the known ports.
    BoardView board(const std::string& port);

    // io.rpibootd1.Device.<member>() on the board at `port`.
    void callBoard(const std::string& port, const char* member, const char* verb);
    // io.rpibootd1.Manager.<member>(argument) ("" = no argument).
    void callManager(const char* member, const std::string& argument, const char* verb);

    // Subscribes to the daemon's signals on `event`, then takes a snapshot
    // into `station` (subscribing first, so nothing is missed in between).
    // `onEvent` runs for every change after `station` was updated.
    void goLive(sd_event* event, StationView& station,
                std::function<void(const StationEvent&)> onEvent);

  private:
    static int onSignal(sd_bus_message* m, void* userdata, sd_bus_error* error);
    void handleSignal(sd_bus_message* m);
    [[noreturn]] void fail(int r, const sd_bus_error& error, const std::string& what,
                           const char* verb = nullptr);

    std::string busName_;
    BusPtr bus_;
    SlotPtr match_;
    SlotPtr ownerMatch_;
    StationView* live_ = nullptr;
    std::function<void(const StationEvent&)> onEvent_;
};

}  // namespace rpibootctl
