#include "libusb_waiter.hpp"

#include <libusb.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "rpiboot/core/error.hpp"

namespace rpiboot::cli {
namespace {

class LibusbOpenedDevice final : public OpenedDevice {
  public:
    explicit LibusbOpenedDevice(std::unique_ptr<LibusbTransport> transport)
        : transport_(std::move(transport)) {}
    Transport& transport() override { return *transport_; }
    std::string serialString() override { return transport_->serialString(); }
    void claim(const BulkInterface& iface) override { transport_->claim(iface); }

  private:
    std::unique_ptr<LibusbTransport> transport_;
};

int LIBUSB_CALL onHotplug(libusb_context* /*ctx*/, libusb_device* device,
                          libusb_hotplug_event event, void* self) {
    if (event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED) {
        static_cast<LibusbWaiter*>(self)->arrived(device);
    }
    return 0;  // stay registered
}

bool isBoot(libusb_device* device) {
    libusb_device_descriptor desc{};
    return libusb_get_device_descriptor(device, &desc) == 0 &&
           isBootDevice(desc.idVendor, desc.idProduct);
}

}  // namespace

LibusbWaiter::LibusbWaiter(int logLevel, long pollDelayUsec)
    : context_(true, logLevel), pollDelayUsec_(pollDelayUsec) {
    hotplug_ = libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG) != 0;
    if (!hotplug_) {
        return;
    }
    libusb_hotplug_callback_handle handle = 0;
    const int rc = libusb_hotplug_register_callback(
        context_.get(), LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, LIBUSB_HOTPLUG_ENUMERATE,
        kBroadcomVendorId, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, onHotplug, this,
        &handle);
    if (rc != LIBUSB_SUCCESS) {
        hotplug_ = false;
        return;
    }
    callbackHandle_ = handle;
}

LibusbWaiter::~LibusbWaiter() {
    if (hotplug_) {
        libusb_hotplug_deregister_callback(context_.get(), callbackHandle_);
    }
    for (libusb_device* device : arrivals_) {
        libusb_unref_device(device);
    }
}

void LibusbWaiter::arrived(libusb_device* device) {
    // A device present when we registered can be reported both by the
    // enumeration and by its own arrival event: queue it once.
    if (isBoot(device) &&
        std::find(arrivals_.begin(), arrivals_.end(), device) == arrivals_.end()) {
        arrivals_.push_back(libusb_ref_device(device));
    }
}

void LibusbWaiter::scanBus() {
    libusb_device** list = nullptr;
    const ssize_t n = libusb_get_device_list(context_.get(), &list);
    if (n < 0) {
        throw Error(Errc::Io, "cannot list USB devices");
    }
    std::set<std::pair<int, int>> present;
    for (ssize_t i = 0; i < n; ++i) {
        libusb_device* device = list[i];
        if (!isBoot(device)) {
            continue;
        }
        const std::pair<int, int> key{libusb_get_bus_number(device),
                                      libusb_get_device_address(device)};
        present.insert(key);
        if (!seen_.count(key)) {
            arrivals_.push_back(libusb_ref_device(device));
        }
    }
    seen_ = std::move(present);
    libusb_free_device_list(list, 1);
}

std::optional<CandidateDevice> LibusbWaiter::next() {
    while (arrivals_.empty()) {
        if (hotplug_) {
            // Blocks in poll() until the kernel reports a device change.
            const int rc = libusb_handle_events(context_.get());
            if (rc == LIBUSB_ERROR_INTERRUPTED) {
                continue;
            }
            if (rc != 0) {
                throw Error(Errc::Io, std::string("waiting for USB events failed: ") +
                                          libusb_strerror(static_cast<libusb_error>(rc)));
            }
        } else {
            scanBus();
            if (arrivals_.empty()) {
                std::this_thread::sleep_for(std::chrono::microseconds(pollDelayUsec_));
            }
        }
    }
    libusb_device* device = arrivals_.front();
    arrivals_.pop_front();
    CandidateDevice candidate;
    candidate.info = describeDevice(device);
    // The libusb reference lives as long as the candidate's opener.
    auto holder =
        std::shared_ptr<libusb_device>(device, [](libusb_device* d) { libusb_unref_device(d); });
    candidate.open = [holder, context = context_.get()]() -> std::unique_ptr<OpenedDevice> {
        return std::make_unique<LibusbOpenedDevice>(LibusbTransport::open(holder.get(), context));
    };
    return candidate;
}

}  // namespace rpiboot::cli
