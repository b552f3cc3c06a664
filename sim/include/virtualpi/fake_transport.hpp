// The in-process fake attachment: rpiboot::Transport on top of a UsbDevice.
//
// It issues the vendor requests of protocol.md §2 on endpoint 0 and bulk OUT
// on the vendor interface's endpoint (0x01, or 0x03 with two interfaces),
// honours each call's timeout, and maps the device's answers to
// rpiboot::Error: Disconnected -> DeviceGone, Stall -> Stall, NAK until the
// timeout -> Timeout. As with libusb, a timeout of 0 waits for ever. It
// never retries and never interprets the bytes.
#pragma once

#include <memory>
#include <string>

#include "rpiboot/core/transport.hpp"
#include "virtualpi/usb_device.hpp"

namespace virtualpi {

// `name` appears in error messages (e.g. the port path).
std::unique_ptr<rpiboot::Transport> makeFakeTransport(std::shared_ptr<UsbDevice> device,
                                                      std::string name = {});

}  // namespace virtualpi
