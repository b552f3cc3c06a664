// Connected socket pairs for a USB/IP connection: one end for the board
// server, the other for the kernel (or a test standing in for it). Each end is
// a rpiboot::UniqueFd, closed when its owner goes.
#pragma once

#include <utility>

#include "rpiboot/core/unique_fd.hpp"

namespace usbip {

using rpiboot::UniqueFd;

// A connected pair of stream sockets (AF_UNIX, close-on-exec). Throws
// rpiboot::Error(Io) when the kernel refuses.
std::pair<UniqueFd, UniqueFd> streamSocketPair();
// A connected pair over TCP on 127.0.0.1 (for kernels that want TCP).
std::pair<UniqueFd, UniqueFd> loopbackTcpPair();

}  // namespace usbip
