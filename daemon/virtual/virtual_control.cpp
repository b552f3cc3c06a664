#include "virtual/virtual_control.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "rpiboot/core/error.hpp"

namespace rpibootd {

namespace {

// Replies waiting for a client that reads slowly; beyond this it is dropped.
constexpr std::size_t kMaxPendingOutput = 16U << 20;

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
            ++i;
        }
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') {
            ++i;
        }
        if (i > start) {
            out.push_back(line.substr(start, i - start));
        }
    }
    return out;
}

std::string joined(const std::vector<std::string>& ports) {
    std::string out = "ok";
    for (const auto& port : ports) {
        out += ' ';
        out += port;
    }
    return out;
}

std::string printable(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, 64)) {
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    return out;
}

[[noreturn]] void fail(const std::string& what) {
    throw rpiboot::Error(rpiboot::Errc::Io, what + ": " + rpiboot::errnoText(errno));
}

}  // namespace

VirtualControl::VirtualControl(EventLoop& loop, Logger& log, VirtualSource& source,
                               std::filesystem::path path)
    : loop_(loop), log_(log), source_(source), path_(std::move(path)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string text = path_.string();
    if (text.empty() || text.size() >= sizeof address.sun_path) {
        throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                             "--virtual-control: \"" + text +
                                 "\" is not a usable socket path (1 to " +
                                 std::to_string(sizeof address.sun_path - 1) + " bytes)");
    }
    std::memcpy(address.sun_path, text.c_str(), text.size() + 1);

    struct stat existing {};
    if (::lstat(text.c_str(), &existing) == 0) {
        if (!S_ISSOCK(existing.st_mode)) {
            throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                                 "--virtual-control: " + text + " exists and is not a socket");
        }
        ::unlink(text.c_str());  // left behind by an earlier run
    }

    listenFd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listenFd_) {
        fail("--virtual-control: socket");
    }
    // Only the daemon's own user may plug boards into it.
    const mode_t previous = ::umask(0077);
    const int bound =
        ::bind(listenFd_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address);
    const int bindErrno = errno;
    ::umask(previous);
    if (bound != 0 || ::listen(listenFd_.get(), static_cast<int>(kMaxClients)) != 0) {
        errno = bound != 0 ? bindErrno : errno;
        const std::string what = "--virtual-control: cannot listen at " + text;
        listenFd_.reset();
        fail(what);
    }
    listenSource_ = loop_.onReadable(listenFd_.get(), [this](std::uint32_t) { accept(); });
    log_.info("virtual board control listening at " + text);
}

VirtualControl::~VirtualControl() {
    *alive_ = false;
    clients_.clear();
    listenSource_.reset();
    if (listenFd_) {
        listenFd_.reset();
        ::unlink(path_.c_str());
    }
}

void VirtualControl::accept() {
    while (true) {
        UniqueFd accepted(
            ::accept4(listenFd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        const int fd = accepted.get();
        if (!accepted) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                log_.warning(std::string("virtual control: accept: ") + rpiboot::errnoText(errno));
            }
            return;
        }
        if (clients_.size() >= kMaxClients) {
            static constexpr std::string_view kBusy = "error too many control clients\n";
            [[maybe_unused]] const auto n =
                ::send(fd, kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            continue;
        }
        auto client = std::make_unique<Client>();
        client->fd = std::move(accepted);
        client->source = loop_.onReadable(fd, [this, fd](std::uint32_t events) {
            if ((events & EPOLLOUT) != 0U) {
                flush(fd);
            }
            if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0U) {
                readFrom(fd);
            }
        });
        clients_.emplace(fd, std::move(client));
    }
}

void VirtualControl::readFrom(int fd) {
    const auto it = clients_.find(fd);
    if (it == clients_.end() || it->second->closing) {
        return;
    }
    Client& client = *it->second;
    char buffer[4096];
    while (true) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n == 0) {
            drop(fd, "");
            return;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                drop(fd, std::string("read failed: ") + rpiboot::errnoText(errno));
            }
            return;
        }
        client.input.append(buffer, static_cast<std::size_t>(n));
        std::size_t newline;
        while ((newline = client.input.find('\n')) != std::string::npos) {
            std::string_view line(client.input.data(), newline);
            if (!line.empty() && line.back() == '\r') {
                line.remove_suffix(1);
            }
            const std::string answer = execute(line);
            client.input.erase(0, newline + 1);
            if (!reply(client, answer)) {
                return;
            }
        }
        if (client.input.size() > kMaxLine) {
            reply(client, "error line longer than " + std::to_string(kMaxLine) + " bytes");
            drop(fd, "sent a line longer than " + std::to_string(kMaxLine) + " bytes");
            return;
        }
    }
}

bool VirtualControl::reply(Client& client, const std::string& text) {
    client.output += text;
    client.output += '\n';
    if (client.output.size() > kMaxPendingOutput) {
        drop(client.fd.get(), "does not read its replies");
        return false;
    }
    return flush(client.fd.get());
}

bool VirtualControl::flush(int fd) {
    const auto it = clients_.find(fd);
    if (it == clients_.end() || it->second->closing) {
        return false;
    }
    Client& client = *it->second;
    while (!client.output.empty()) {
        const ssize_t n =
            ::send(fd, client.output.data(), client.output.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            drop(fd, std::string("write failed: ") + rpiboot::errnoText(errno));
            return false;
        }
        client.output.erase(0, static_cast<std::size_t>(n));
    }
    // Wake for writability only while replies are waiting.
    sd_event_source_set_io_events(client.source.get(),
                                  client.output.empty() ? EPOLLIN : (EPOLLIN | EPOLLOUT));
    return true;
}

void VirtualControl::drop(int fd, const std::string& why) {
    const auto it = clients_.find(fd);
    if (it == clients_.end() || it->second->closing) {
        return;
    }
    if (!why.empty()) {
        log_.warning("virtual control: client disconnected: " + why);
    }
    it->second->closing = true;
    sd_event_source_set_enabled(it->second->source.get(), SD_EVENT_OFF);
    // Not here: this may run inside the client's own event callback.
    loop_.post([this, fd, alive = std::weak_ptr<bool>(alive_)] {
        if (const auto still = alive.lock(); still && *still) {
            clients_.erase(fd);
        }
    });
}

std::string VirtualControl::execute(std::string_view line) {
    const auto args = words(line);
    if (args.empty()) {
        return "error empty command (try help)";
    }
    const std::string_view command = args[0];
    try {
        if (command == "help" && args.size() == 1) {
            return "ok plug unplug ports record help";
        }
        if (command == "ports" && args.size() == 1) {
            return joined(source_.ports());
        }
        if (command == "plug" && (args.size() == 2 || args.size() == 3)) {
            auto boards = parseVirtualSpec(args[1]);
            if (args.size() == 3) {
                if (boards.size() != 1) {
                    return "error a PORT takes exactly one board, \"" + std::string(args[1]) +
                           "\" is " + std::to_string(boards.size());
                }
                boards.front().portPath = std::string(args[2]);
            }
            return joined(source_.plug(std::move(boards)));
        }
        if (command == "unplug" && args.size() == 2) {
            std::vector<std::string> ports;
            if (args[1] == "all") {
                ports = source_.ports();
            } else {
                ports.emplace_back(args[1]);
            }
            for (const auto& port : ports) {
                source_.unplug(port);
            }
            return joined(ports);
        }
        if (command == "record" && args.size() == 2) {
            return "ok " + source_.record(std::string(args[1]));
        }
    } catch (const std::exception& e) {
        return std::string("error ") + e.what();
    }
    if (command == "plug" || command == "unplug" || command == "ports" || command == "record" ||
        command == "help") {
        return "error usage: plug ITEM [PORT] | unplug PORT|all | ports | record PORT | help";
    }
    return "error unknown command \"" + printable(command) + "\" (try help)";
}

}  // namespace rpibootd
