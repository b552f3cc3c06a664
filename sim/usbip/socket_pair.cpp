#include "socket_pair.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "rpiboot/core/error.hpp"

namespace usbip {
namespace {

[[noreturn]] void fail(const std::string& what) {
    throw rpiboot::Error(rpiboot::Errc::Io, what + ": " + rpiboot::errnoText(errno));
}

}  // namespace

std::pair<UniqueFd, UniqueFd> streamSocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        fail("cannot create a socket pair for a USB/IP connection");
    }
    return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::pair<UniqueFd, UniqueFd> loopbackTcpPair() {
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener.valid()) {
        fail("cannot create a TCP socket for a USB/IP connection");
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener.get(), 1) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        fail("cannot listen on 127.0.0.1 for a USB/IP connection");
    }
    UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!client.valid() ||
        ::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        fail("cannot connect to 127.0.0.1 for a USB/IP connection");
    }
    UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!server.valid()) {
        fail("cannot accept the loopback USB/IP connection");
    }
    const int one = 1;
    ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(server.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return {std::move(server), std::move(client)};
}

}  // namespace usbip
