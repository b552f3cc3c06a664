// Waiting for boot-mode boards with libusb: hotplug events where the
// platform has them (no polling), a bus scan every -m microseconds where not.
#pragma once

#include <deque>
#include <set>
#include <utility>

#include "rpiboot/usb/libusb_transport.hpp"
#include "runner.hpp"

struct libusb_device;

namespace rpiboot::cli {

class LibusbWaiter final : public DeviceWaiter {
  public:
    LibusbWaiter(int logLevel, long pollDelayUsec);
    ~LibusbWaiter() override;
    LibusbWaiter(const LibusbWaiter&) = delete;
    LibusbWaiter& operator=(const LibusbWaiter&) = delete;

    std::optional<CandidateDevice> next() override;
    bool usesHotplug() const noexcept { return hotplug_; }

    // Called by libusb's hotplug callback (same thread as next()).
    void arrived(libusb_device* device);

  private:
    void scanBus();

    LibusbContext context_;
    long pollDelayUsec_;
    bool hotplug_ = false;
    int callbackHandle_ = 0;
    std::deque<libusb_device*> arrivals_;  // each holds a libusb reference
    std::set<std::pair<int, int>> seen_;   // (bus, address) already reported, scan mode
};

}  // namespace rpiboot::cli
