// Test support: an sd-bus client on the test's event loop that records the
// signals rpibootd sends and makes method calls without blocking the loop
// (so an in-process DbusService keeps answering while the client waits).
//
// Used by the D-Bus tests only; everything runs on the thread that owns the
// sd_event loop.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rpiboot::test {

struct EventUnref {
    void operator()(sd_event* e) const { sd_event_unref(e); }
};
struct ClientBusClose {
    void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};
struct ClientSlotUnref {
    void operator()(sd_bus_slot* s) const { sd_bus_slot_unref(s); }
};
struct ClientMessageUnref {
    void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using EventPtr = std::unique_ptr<sd_event, EventUnref>;
using ClientBusPtr = std::unique_ptr<sd_bus, ClientBusClose>;
using ClientSlotPtr = std::unique_ptr<sd_bus_slot, ClientSlotUnref>;
using ClientMessagePtr = std::unique_ptr<sd_bus_message, ClientMessageUnref>;

EventPtr newEventLoop();

// Runs the loop until `done()` or `timeout`; false on timeout.
bool pumpUntil(sd_event* event, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = std::chrono::seconds(30));

// One signal under /io/rpibootd1 as the client saw it.
struct SeenSignal {
    std::string member;  // "DeviceAdded", "PropertiesChanged", "InterfacesAdded", ...
    std::string path;    // object that sent it
    // DeviceAdded/DeviceRemoved/BootFinished/Interfaces*: the object path argument.
    std::string object;
    bool success = false;  // BootFinished
    std::string message;   // BootFinished
    // PropertiesChanged: interface, and changed property -> value as text
    // (strings as is, numbers in decimal, other types as "?").
    std::string interface;
    std::map<std::string, std::string> changed;
};

struct CallResult {
    ClientMessagePtr reply;  // null on error
    std::string errorName;
    std::string errorMessage;
    bool ok() const { return reply != nullptr; }
};

class BusClient {
  public:
    BusClient(sd_event* event, const std::string& address);

    // Records every signal whose path is in /io/rpibootd1's namespace.
    void recordSignals();
    const std::vector<SeenSignal>& signals() const { return signals_; }
    // Hands over the signals recorded so far and forgets them (long runs).
    std::vector<SeenSignal> takeSignals() { return std::exchange(signals_, {}); }
    // Waits until a recorded signal satisfies `match`.
    bool waitForSignal(const std::function<bool(const SeenSignal&)>& match,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // Waits until `count` recorded signals satisfy `match`.
    bool waitForSignals(std::size_t count, const std::function<bool(const SeenSignal&)>& match,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

    // Calls a method on io.rpibootd1 and runs the loop until it answers.
    CallResult call(const std::string& path, const std::string& interface,
                    const std::string& member);
    CallResult getProperty(const std::string& path, const std::string& interface,
                           const std::string& property);

    std::string getString(const std::string& path, const std::string& interface,
                          const std::string& property);
    std::uint64_t getUint64(const std::string& path, const std::string& property);
    std::uint32_t getUint32(const std::string& path, const std::string& property);
    std::vector<std::string> getStrings(const std::string& path, const std::string& interface,
                                        const std::string& property);  // "as" or "ao"
    std::map<std::string, std::string> getDict(const std::string& path,
                                               const std::string& property);  // "a{ss}"

    sd_bus* bus() const { return bus_.get(); }

  private:
    static int onSignal(sd_bus_message* m, void* userdata, sd_bus_error*);
    CallResult finish(sd_bus_message* call);

    sd_event* event_;
    ClientBusPtr bus_;
    ClientSlotPtr match_;
    std::vector<SeenSignal> signals_;
};

}  // namespace rpiboot::test
