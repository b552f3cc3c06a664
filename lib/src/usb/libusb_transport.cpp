#include "rpiboot/usb/libusb_transport.hpp"

#include <fcntl.h>
#include <libusb.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>

#include "rpiboot/core/error.hpp"

namespace rpiboot {
namespace {

// protocol.md §2: vendor requests, recipient device, bRequest 0.
constexpr std::uint8_t kVendorOut =
    0x40;  // LIBUSB_REQUEST_TYPE_VENDOR | RECIPIENT_DEVICE | ENDPOINT_OUT
constexpr std::uint8_t kVendorIn =
    0xC0;  // LIBUSB_REQUEST_TYPE_VENDOR | RECIPIENT_DEVICE | ENDPOINT_IN

Errc errcOf(int rc) {
    switch (rc) {
        case LIBUSB_ERROR_NO_DEVICE:
            return Errc::DeviceGone;
        case LIBUSB_ERROR_TIMEOUT:
            return Errc::Timeout;
        case LIBUSB_ERROR_PIPE:
            return Errc::Stall;
        case LIBUSB_ERROR_ACCESS:
            return Errc::Refused;
        case LIBUSB_ERROR_NOT_FOUND:
            return Errc::NotFound;
        default:
            return Errc::Io;
    }
}

[[noreturn]] void fail(int rc, const std::string& what) {
    throw Error(errcOf(rc), what + ": " + libusb_strerror(static_cast<libusb_error>(rc)));
}

unsigned timeoutMs(Milliseconds timeout) {
    const auto ms = timeout.count();
    if (ms <= 0) {
        return 1;  // libusb treats 0 as "forever"; every wait here has a bound
    }
    return static_cast<unsigned>(std::min<long long>(ms, std::numeric_limits<unsigned>::max()));
}

}  // namespace

LibusbContext::LibusbContext(bool discovery, int logLevel) {
    if (!discovery) {
        // Must be set before libusb_init to take effect for the new context.
        libusb_set_option(nullptr, LIBUSB_OPTION_NO_DEVICE_DISCOVERY);
    }
    const int rc = libusb_init(&ctx_);
    if (rc != 0) {
        fail(rc, "cannot initialise libusb");
    }
    if (logLevel > 0) {
        libusb_set_option(ctx_, LIBUSB_OPTION_LOG_LEVEL, logLevel);
    }
}

LibusbContext::~LibusbContext() {
    if (ctx_ != nullptr) {
        libusb_exit(ctx_);
    }
}

std::string portPathOf(libusb_device* device) {
    std::array<std::uint8_t, 8> ports{};
    const int n = libusb_get_port_numbers(device, ports.data(), static_cast<int>(ports.size()));
    std::string path = std::to_string(libusb_get_bus_number(device));
    for (int i = 0; i < n; ++i) {
        path += (i == 0 ? '-' : '.');
        path += std::to_string(ports[static_cast<std::size_t>(i)]);
    }
    return path;
}

UsbDeviceInfo describeDevice(libusb_device* device) {
    UsbDeviceInfo info;
    info.portPath = portPathOf(device);
    info.busNumber = libusb_get_bus_number(device);
    info.deviceAddress = libusb_get_device_address(device);
    info.portNumber = libusb_get_port_number(device);
    libusb_device_descriptor desc{};
    if (libusb_get_device_descriptor(device, &desc) == 0) {
        info.descriptor.vendorId = desc.idVendor;
        info.descriptor.productId = desc.idProduct;
        info.descriptor.serialNumberIndex = desc.iSerialNumber;
    }
    libusb_config_descriptor* config = nullptr;
    if (libusb_get_active_config_descriptor(device, &config) == 0 ||
        libusb_get_config_descriptor(device, 0, &config) == 0) {
        info.descriptor.interfaceCount = config->bNumInterfaces;
        libusb_free_config_descriptor(config);
    }
    return info;
}

std::unique_ptr<LibusbTransport> LibusbTransport::open(libusb_device* device) {
    libusb_device_handle* handle = nullptr;
    const int rc = libusb_open(device, &handle);
    if (rc != 0) {
        fail(rc, "cannot open USB device " + portPathOf(device));
    }
    return std::unique_ptr<LibusbTransport>(new LibusbTransport(handle, -1));
}

std::unique_ptr<LibusbTransport> LibusbTransport::openNode(LibusbContext& context,
                                                           const std::string& devnode) {
    const int fd = ::open(devnode.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        throw Error(err == ENOENT || err == ENODEV  ? Errc::DeviceGone
                    : err == EACCES || err == EPERM ? Errc::Refused
                                                    : Errc::Io,
                    "cannot open " + devnode + ": " + std::strerror(err));
    }
    libusb_device_handle* handle = nullptr;
    const int rc = libusb_wrap_sys_device(context.get(), static_cast<intptr_t>(fd), &handle);
    if (rc != 0) {
        ::close(fd);
        fail(rc, "cannot use " + devnode);
    }
    return std::unique_ptr<LibusbTransport>(new LibusbTransport(handle, fd));
}

LibusbTransport::~LibusbTransport() {
    if (claimed_ >= 0) {
        libusb_release_interface(handle_, claimed_);
    }
    libusb_close(handle_);
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

UsbDescriptorSummary LibusbTransport::summary() {
    libusb_device* device = libusb_get_device(handle_);
    return describeDevice(device).descriptor;
}

std::string LibusbTransport::serialString() {
    libusb_device_descriptor desc{};
    if (libusb_get_device_descriptor(libusb_get_device(handle_), &desc) != 0 ||
        desc.iSerialNumber == 0) {
        return {};
    }
    std::array<unsigned char, 256> buf{};
    const int n = libusb_get_string_descriptor_ascii(handle_, desc.iSerialNumber, buf.data(),
                                                     static_cast<int>(buf.size()));
    if (n <= 0) {
        return {};
    }
    return std::string(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n));
}

void LibusbTransport::claim(const BulkInterface& iface) {
    // protocol-details W10: on two-interface devices usb-storage may own
    // interface 0; let libusb detach whatever holds the one we need.
    libusb_set_auto_detach_kernel_driver(handle_, 1);
    const int rc = libusb_claim_interface(handle_, iface.interfaceNumber);
    if (rc != 0) {
        fail(rc, "cannot claim interface " + std::to_string(iface.interfaceNumber));
    }
    claimed_ = iface.interfaceNumber;
    outEndpoint_ = iface.outEndpoint;
}

void LibusbTransport::controlOutLength(std::uint32_t length, Milliseconds timeout) {
    const int rc = libusb_control_transfer(
        handle_, kVendorOut, 0, static_cast<std::uint16_t>(length & 0xffffU),
        static_cast<std::uint16_t>(length >> 16), nullptr, 0, timeoutMs(timeout));
    if (rc < 0) {
        fail(rc, "control OUT (length " + std::to_string(length) + ") failed");
    }
}

std::size_t LibusbTransport::controlIn(std::span<std::uint8_t> buffer, Milliseconds timeout) {
    if (buffer.size() > 0xffff) {
        throw Error(Errc::TooLarge, "control IN of more than 65535 bytes");
    }
    const auto len = static_cast<std::uint16_t>(buffer.size());
    const int rc = libusb_control_transfer(handle_, kVendorIn, 0, len, 0, buffer.data(), len,
                                           timeoutMs(timeout));
    if (rc < 0) {
        fail(rc, "control IN (" + std::to_string(len) + " bytes) failed");
    }
    return static_cast<std::size_t>(rc);
}

void LibusbTransport::bulkOut(std::span<const std::uint8_t> chunk, Milliseconds timeout) {
    int transferred = 0;
    const int rc =
        libusb_bulk_transfer(handle_, outEndpoint_, const_cast<std::uint8_t*>(chunk.data()),
                             static_cast<int>(chunk.size()), &transferred, timeoutMs(timeout));
    if (rc != 0) {
        fail(rc, "bulk OUT of " + std::to_string(chunk.size()) + " bytes failed after " +
                     std::to_string(transferred));
    }
    if (static_cast<std::size_t>(transferred) != chunk.size()) {
        throw Error(Errc::Io, "bulk OUT accepted " + std::to_string(transferred) + " of " +
                                  std::to_string(chunk.size()) + " bytes");
    }
}

}  // namespace rpiboot
