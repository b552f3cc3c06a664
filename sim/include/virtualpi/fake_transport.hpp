// The in-process fake attachment: rpiboot::Transport on top of a UsbDevice.
//
// It issues the vendor requests of docs/protocol.md §3 on endpoint 0 and bulk OUT
// on the vendor interface's endpoint (0x01, or 0x03 with two interfaces),
// honours each call's timeout, and maps the device's answers to
// rpiboot::Error: Disconnected -> DeviceGone, Stall -> Stall, NAK until the
// timeout -> Timeout. As with libusb, a timeout of 0 waits for ever. It
// never retries and never interprets the bytes.
//
// Like a host controller it can keep several bulk OUT transfers queued
// (submitBulkOut/reapBulkOut): a controller thread of the transport feeds
// them to the device in order while the caller waits for the oldest. Every
// transfer's completion reaches the caller `completionLatency` after the
// device took its last byte (interrupt, kernel and wake-up time on real
// hardware); with one transfer in flight the bus idles for that long between
// transfers, with several it does not.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "rpiboot/core/transport.hpp"
#include "virtualpi/usb_device.hpp"

namespace virtualpi {

struct FakeTransportOptions {
    // Added to every transfer (control and bulk) between the device's last
    // byte and the caller seeing the completion. 0: none.
    std::chrono::microseconds completionLatency{0};
    // Bulk OUT transfers that may be queued at once (bulkOutSlots()).
    std::size_t bulkOutSlots = 16;
};

// `name` appears in error messages (e.g. the port path).
std::unique_ptr<rpiboot::Transport> makeFakeTransport(std::shared_ptr<UsbDevice> device,
                                                      std::string name = {},
                                                      FakeTransportOptions options = {});

}  // namespace virtualpi
