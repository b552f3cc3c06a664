// The `rpiboot` session loop: wait for a board, run whatever stage it is in,
// repeat until a board has completed its second stage (or forever with -l).
//
// Device arrival comes from a DeviceWaiter (libusb hotplug for the real tool,
// the virtual bus in tests), so the loop itself never polls or sleeps.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "options.hpp"
#include "rpiboot/core/device.hpp"
#include "rpiboot/core/transport.hpp"
#include "rpiboot/firmware/firmware_set.hpp"
#include "rpiboot/usb/libusb_transport.hpp"

namespace rpiboot::cli {

class OpenedDevice {
  public:
    virtual ~OpenedDevice() = default;
    virtual Transport& transport() = 0;
    virtual std::string serialString() = 0;
    virtual void claim(const BulkInterface& iface) = 0;
};

struct CandidateDevice {
    UsbDeviceInfo info;
    std::function<std::unique_ptr<OpenedDevice>()> open;
};

class DeviceWaiter {
  public:
    virtual ~DeviceWaiter() = default;
    // Blocks until a Broadcom boot-mode device arrives (devices already on
    // the bus count as arriving first). nullopt when waiting was interrupted.
    virtual std::optional<CandidateDevice> next() = 0;
};

class Runner {
  public:
    Runner(Options options, std::string defaultFirmwareDir, DeviceWaiter& waiter, std::ostream& out,
           std::ostream& err);
    ~Runner();

    // Start-up checks of -d (and -s); returns a usage error text or "".
    std::string checkDirectory() const;
    // The whole session; returns the process exit status.
    int run();

  private:
    bool accepts(const CandidateDevice& device, const std::string& serial) const;
    const FirmwareSet& firmwareFor(Chip chip);
    bool serveDevice(const CandidateDevice& device, bool& secondStageCompleted);

    Options options_;
    std::string defaultFirmwareDir_;
    DeviceWaiter& waiter_;
    std::ostream& out_;
    std::ostream& err_;
    std::shared_ptr<FileCache> cache_;
    std::map<std::string, std::unique_ptr<FirmwareSet>> sets_;
    std::string trackedPort_;  // port of a ROM we booted while filtering by serial
};

}  // namespace rpiboot::cli
