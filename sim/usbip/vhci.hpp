// The kernel's USB/IP virtual host controller (vhci-hcd) through sysfs:
// lists its ports and their state from the `status` files, attaches a
// connected stream socket to a port (`attach`: "<port> <sockfd> <devid>
// <speed>") and detaches it (`detach`: "<port>"). The kernel then enumerates
// the device on that root-hub port as if it had been plugged in.
//
// Only the controller's sysfs files are touched; the directory is a
// parameter so tests can point it at a fake tree. It never loads modules.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace usbip {

// vhci-hcd port states (enum usbip_device_status).
inline constexpr int kPortFree = 0x04;  // VDEV_ST_NULL

struct VhciPort {
    unsigned port = 0;        // the global number written to attach/detach
    unsigned controller = 0;  // N of vhci_hcd.N
    unsigned rootPort = 0;    // 0-based port of the controller's root hub
    bool highSpeed = true;    // on the USB 2.0 root hub (not the SuperSpeed one)
    int state = kPortFree;
    std::string busId;  // the kernel's name for the attached device, "1-1"
};

class Vhci {
  public:
    // `platformDir` holds vhci_hcd.0, vhci_hcd.1, ... (normally
    // /sys/devices/platform). Throws rpiboot::Error(NotFound) when there is
    // no vhci_hcd.0 (module not loaded).
    explicit Vhci(std::filesystem::path platformDir = "/sys/devices/platform");

    // Every port of every controller, as the status files say now.
    std::vector<VhciPort> ports() const;
    std::optional<VhciPort> port(unsigned number) const;
    // Free ports on USB 2.0 root hubs, lowest first.
    std::vector<unsigned> freeHighSpeedPorts() const;
    // The USB port path of a root-hub port ("3-2"): the bus number of the
    // controller's USB 2.0 root hub and the 1-based port.
    std::string portPath(unsigned number) const;

    // Hands `socketFd` (a connected stream socket of this process) to the
    // kernel on `port`. Throws rpiboot::Error(Io) with the kernel's answer
    // (EBUSY-like EINVAL when the port is still in use).
    void attach(unsigned port, int socketFd, std::uint32_t devid, unsigned speed) const;
    // Asks the kernel to disconnect `port`. False when it was not attached.
    bool detach(unsigned port) const;
    // Waits until `port` is free again (the kernel finishes a detach
    // asynchronously). Checks the status file with a short back-off; false
    // on timeout.
    bool waitUntilFree(unsigned port, std::chrono::milliseconds timeout) const;

  private:
    std::filesystem::path controllerDir(unsigned controller) const;
    unsigned controllerCount() const;

    std::filesystem::path platformDir_;
    unsigned portsPerController_ = 0;
};

// Parses one status file (either the 6.x form "hs  0000 004 000 00000000
// 000000 0-0" or the older one without the hub column) of a controller with
// `portsPerController` ports (half of them USB 2.0, half SuperSpeed).
std::vector<VhciPort> parseVhciStatus(const std::string& text, unsigned portsPerController);

}  // namespace usbip
