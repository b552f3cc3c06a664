// The real USB transport: libusb on Linux usbfs.
//
// Owns a libusb context and device handles through RAII types; maps libusb
// errors onto rpiboot::Errc (LIBUSB_ERROR_NO_DEVICE -> DeviceGone). Knows the
// boot protocol's transfer shapes (transport.hpp) and nothing more. Device
// discovery lives with the callers (libusb hotplug in the CLI, udev in the
// daemon); both describe devices with UsbDeviceInfo.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rpiboot/core/device.hpp"
#include "rpiboot/core/transport.hpp"
#include "rpiboot/core/unique_fd.hpp"

struct libusb_context;
struct libusb_device;
struct libusb_device_handle;

namespace rpiboot {

struct UsbDeviceInfo {
    std::string portPath;  // "<bus>-<port>[.<port>...]" (docs/protocol.md §2.5)
    std::uint8_t busNumber = 0;
    std::uint8_t deviceAddress = 0;
    std::uint8_t portNumber = 0;  // port on the parent hub (upstream -0..-98)
    UsbDescriptorSummary descriptor;
};

class LibusbContext {
  public:
    // `discovery` false: libusb does not scan the bus (for callers that get
    // device nodes from udev and wrap them).
    explicit LibusbContext(bool discovery = true, int logLevel = 0);
    ~LibusbContext();
    LibusbContext(const LibusbContext&) = delete;
    LibusbContext& operator=(const LibusbContext&) = delete;
    libusb_context* get() const noexcept { return ctx_; }

  private:
    libusb_context* ctx_ = nullptr;
};

// Port path of a libusb device, e.g. "1-1.3.2"; "1" for a root hub.
std::string portPathOf(libusb_device* device);
// Reads the descriptors libusb has cached for `device` (no I/O to the device).
UsbDeviceInfo describeDevice(libusb_device* device);

class LibusbTransport final : public Transport {
  public:
    // Opens `device` (from a libusb device list or hotplug callback of
    // `context`). Throws Errc::DeviceGone, Errc::Refused (permission) or
    // Errc::Io. Without the context, bulk OUT is one transfer at a time.
    static std::unique_ptr<LibusbTransport> open(libusb_device* device,
                                                 libusb_context* context = nullptr);
    // Wraps a usbfs node (/dev/bus/usb/BBB/DDD) reported by udev.
    static std::unique_ptr<LibusbTransport> openNode(LibusbContext& context,
                                                     const std::string& devnode);
    ~LibusbTransport() override;
    LibusbTransport(const LibusbTransport&) = delete;
    LibusbTransport& operator=(const LibusbTransport&) = delete;

    // VID/PID and iSerialNumber index from the device descriptor; interface
    // count from the active configuration as libusb parsed it (docs/protocol.md §2).
    UsbDescriptorSummary summary();
    // The string at iSerialNumber, "" when the index is 0 or unreadable.
    std::string serialString();
    // Claims the protocol interface, detaching a kernel driver if one is bound.
    void claim(const BulkInterface& iface);

    void controlOutLength(std::uint32_t length, Milliseconds timeout) override;
    std::size_t controlIn(std::span<std::uint8_t> buffer, Milliseconds timeout) override;
    void bulkOut(std::span<const std::uint8_t> chunk, Milliseconds timeout) override;

    // Queued bulk OUT: libusb asynchronous transfers, whose completions are
    // handled on the calling (worker) thread with
    // libusb_handle_events_timeout_completed, which takes libusb's event lock
    // in turn with every other thread handling events on the same context.
    std::size_t bulkOutSlots() const noexcept override;
    void submitBulkOut(std::span<const std::uint8_t> chunk) override;
    void reapBulkOut(Milliseconds timeout) override;
    void cancelBulkOut() noexcept override;

    // Transfers allocated for the queue (the most bulkOutSlots() allows).
    static constexpr std::size_t kMaxQueuedTransfers = 16;

  private:
    struct Slot;
    LibusbTransport(libusb_device_handle* handle, int fd, libusb_context* context);
    // Handles events until `slot` completed or `until` passed; false on timeout.
    bool waitFor(Slot& slot, std::chrono::steady_clock::time_point until);
    libusb_device_handle* handle_ = nullptr;
    UniqueFd fd_;  // set when we opened the node ourselves
    int claimed_ = -1;
    std::uint8_t outEndpoint_ = 0x01;
    libusb_context* context_ = nullptr;  // for event handling; null: no queue
    std::vector<std::unique_ptr<Slot>> slots_;
    std::size_t head_ = 0;     // oldest pending slot
    std::size_t pending_ = 0;  // slots submitted and not yet reaped
};

}  // namespace rpiboot
