// rpibootd --virtual-control PATH: plug and unplug virtual boards while the
// daemon runs.
//
// A Unix stream socket (mode 0600) on the main loop. A client writes one
// command per line and reads one reply line per command, "ok ..." or
// "error <why>":
//
//   plug ITEM [PORT]   ITEM as one --virtual item (2711, 2712:2,
//                      2711:1:recovery, scenario.json[:N]); PORT plugs the
//                      (single) board there, e.g. to reconnect it where it
//                      was. Reply: "ok" and the ports plugged.
//   unplug PORT|all    pulls the board(s) out. Reply: "ok" and the ports.
//   ports              Reply: "ok" and the occupied ports.
//   record PORT        Reply: "ok" and what the board has received so far,
//                      as one line of JSON (files, sizes, SHA-256, outcome).
//   help               Reply: "ok" and the command names.
//
// This is how tests reconnect boards, run plug storms and soaks through the
// real daemon process, and how a person tries hotplug without hardware
// (`socat - UNIX-CONNECT:PATH`). Lines are at most 4096 bytes; a client
// that sends a longer one, or stops reading its replies, is disconnected.
// At most 16 clients at once.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "event_loop.hpp"
#include "handles.hpp"
#include "journal.hpp"
#include "virtual/virtual_source.hpp"

namespace rpibootd {

class VirtualControl {
  public:
    static constexpr std::size_t kMaxLine = 4096;
    static constexpr std::size_t kMaxClients = 16;

    // Binds and listens at `path` (a stale socket there is replaced; any
    // other file is not). Throws rpiboot::Error(Io/InvalidArgument).
    VirtualControl(EventLoop& loop, Logger& log, VirtualSource& source, std::filesystem::path path);
    // Disconnects every client, closes the socket and removes its path.
    ~VirtualControl();
    VirtualControl(const VirtualControl&) = delete;
    VirtualControl& operator=(const VirtualControl&) = delete;

    // One command line (without its newline) -> its reply (without newline).
    // On the loop thread; never throws.
    std::string execute(std::string_view line);

    const std::filesystem::path& path() const noexcept { return path_; }
    std::size_t clientCount() const noexcept { return clients_.size(); }

  private:
    struct Client {
        UniqueFd fd;  // closed after `source` is gone
        std::string input;
        std::string output;  // replies the socket did not take yet
        EventSource source;
        bool closing = false;
    };

    void accept();
    void readFrom(int fd);
    // Queues a reply and writes what the socket takes; false when the
    // client had to be dropped.
    bool reply(Client& client, const std::string& text);
    bool flush(int fd);
    // Closes a client later (it may be inside its own event callback).
    void drop(int fd, const std::string& why);

    EventLoop& loop_;
    Logger& log_;
    VirtualSource& source_;
    std::filesystem::path path_;
    UniqueFd listenFd_;
    EventSource listenSource_;
    std::map<int, std::unique_ptr<Client>> clients_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rpibootd
