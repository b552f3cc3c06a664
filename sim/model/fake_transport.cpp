#include "virtualpi/fake_transport.hpp"

#include "rpiboot/core/error.hpp"

namespace virtualpi {
namespace {

using rpiboot::Errc;
using rpiboot::Error;

// Like libusb, a timeout of 0 means "wait for ever".
Deadline until(rpiboot::Milliseconds timeout) {
    return timeout.count() <= 0 ? Deadline::max() : deadlineAfter(timeout);
}

class FakeTransport final : public rpiboot::Transport {
  public:
    FakeTransport(std::shared_ptr<UsbDevice> device, std::string name)
        : device_(std::move(device)), name_(std::move(name)) {
        if (name_.empty()) {
            name_ = "virtual device";
        }
        // The host's rule (protocol.md §1): one interface -> EP 1, else the
        // vendor interface's EP 3. The fake takes it from the descriptors.
        outEndpoint_ = device_->descriptors().vendorBulkOutEndpoint();
    }

    void controlOutLength(std::uint32_t length, rpiboot::Milliseconds timeout) override {
        SetupPacket setup;
        setup.requestType = kVendorOut;
        setup.value = static_cast<std::uint16_t>(length & 0xffff);
        setup.index = static_cast<std::uint16_t>(length >> 16);
        const auto r = device_->control(setup, {}, until(timeout));
        check(r, "control OUT (length " + std::to_string(length) + ")");
    }

    std::size_t controlIn(std::span<std::uint8_t> buffer, rpiboot::Milliseconds timeout) override {
        if (buffer.size() > 0xffff) {
            throw Error(Errc::InvalidArgument, name_ + ": a control IN cannot read " +
                                                   std::to_string(buffer.size()) + " bytes");
        }
        SetupPacket setup;
        setup.requestType = kVendorIn;
        setup.value = static_cast<std::uint16_t>(buffer.size());
        setup.index = 0;
        setup.length = static_cast<std::uint16_t>(buffer.size());
        const auto r = device_->control(setup, buffer, until(timeout));
        check(r, "control IN (" + std::to_string(buffer.size()) + " bytes)");
        return r.length;
    }

    void bulkOut(std::span<const std::uint8_t> chunk, rpiboot::Milliseconds timeout) override {
        if (outEndpoint_ == 0) {
            throw Error(Errc::Io, name_ + ": the device has no vendor bulk OUT endpoint");
        }
        const auto r = device_->bulkOut(outEndpoint_, chunk, until(timeout));
        check(r, "bulk OUT of " + std::to_string(chunk.size()) + " bytes (" +
                     std::to_string(r.length) + " accepted)");
        if (r.length != chunk.size()) {
            throw Error(Errc::Io, name_ + ": bulk OUT accepted " + std::to_string(r.length) +
                                      " of " + std::to_string(chunk.size()) + " bytes");
        }
    }

  private:
    void check(const TransferResult& r, const std::string& what) const {
        switch (r.status) {
            case UsbStatus::Ok:
                return;
            case UsbStatus::Disconnected:
                throw Error(Errc::DeviceGone,
                            name_ + ": " + what + " failed: the device left the bus");
            case UsbStatus::Stall:
                throw Error(Errc::Stall, name_ + ": " + what + " failed: the device stalled");
            case UsbStatus::Timeout:
                throw Error(Errc::Timeout, name_ + ": " + what + " timed out");
            case UsbStatus::Cancelled:
                throw Error(Errc::Io, name_ + ": " + what + " was cancelled");
        }
    }

    std::shared_ptr<UsbDevice> device_;
    std::string name_;
    std::uint8_t outEndpoint_ = 0;
};

}  // namespace

std::unique_ptr<rpiboot::Transport> makeFakeTransport(std::shared_ptr<UsbDevice> device,
                                                      std::string name) {
    if (!device) {
        throw Error(Errc::DeviceGone, (name.empty() ? std::string("virtual device") : name) +
                                          ": the device is not on the bus");
    }
    return std::make_unique<FakeTransport>(std::move(device), std::move(name));
}

}  // namespace virtualpi
