#include "rpiboot/usb/libusb_transport.hpp"

#include <fcntl.h>
#include <libusb.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <limits>
#include <string>

#include "rpiboot/core/error.hpp"

namespace rpiboot {
namespace {

// docs/protocol.md §3: vendor requests, recipient device, bRequest 0.
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

// How long cancelBulkOut() waits for the kernel to give a cancelled transfer
// back before it gives up on its buffer (and leaks the transfer rather than
// free memory the kernel may still write to).
constexpr auto kCancelWait = std::chrono::seconds(10);

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

// One queued bulk OUT transfer. `done` is libusb's "completed" flag: set by
// the callback on whichever thread handles events, read by libusb under its
// event-waiters lock (libusb_handle_events_timeout_completed).
struct LibusbTransport::Slot {
    libusb_transfer* transfer = nullptr;
    int done = 1;
    bool timedOut = false;
    bool leaked = false;  // the kernel never gave it back: never free it
    Slot() : transfer(libusb_alloc_transfer(0)) {
        if (transfer == nullptr) {
            throw Error(Errc::Io, "cannot allocate a libusb transfer");
        }
    }
    ~Slot() {
        if (!leaked) {
            libusb_free_transfer(transfer);
        }
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
};

namespace {
extern "C" void LIBUSB_CALL onBulkOutDone(libusb_transfer* transfer) {
    static_cast<int*>(transfer->user_data)[0] = 1;
}
}  // namespace

LibusbTransport::LibusbTransport(libusb_device_handle* handle, int fd, libusb_context* context)
    : handle_(handle), fd_(fd), context_(context) {}

std::unique_ptr<LibusbTransport> LibusbTransport::open(libusb_device* device,
                                                       libusb_context* context) {
    libusb_device_handle* handle = nullptr;
    const int rc = libusb_open(device, &handle);
    if (rc != 0) {
        fail(rc, "cannot open USB device " + portPathOf(device));
    }
    return std::unique_ptr<LibusbTransport>(new LibusbTransport(handle, -1, context));
}

std::unique_ptr<LibusbTransport> LibusbTransport::openNode(LibusbContext& context,
                                                           const std::string& devnode) {
    UniqueFd fd(::open(devnode.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) {
        const int err = errno;
        throw Error(err == ENOENT || err == ENODEV  ? Errc::DeviceGone
                    : err == EACCES || err == EPERM ? Errc::Refused
                                                    : Errc::Io,
                    "cannot open " + devnode + ": " + errnoText(err));
    }
    libusb_device_handle* handle = nullptr;
    const int rc = libusb_wrap_sys_device(context.get(), static_cast<intptr_t>(fd.get()), &handle);
    if (rc != 0) {
        fail(rc, "cannot use " + devnode);
    }
    return std::unique_ptr<LibusbTransport>(
        new LibusbTransport(handle, fd.release(), context.get()));
}

LibusbTransport::~LibusbTransport() {
    cancelBulkOut();
    slots_.clear();
    if (claimed_ >= 0) {
        libusb_release_interface(handle_, claimed_);
    }
    libusb_close(handle_);
    // fd_ (when we opened the node) closes after this, once libusb is done with it.
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
    // docs/protocol.md §14.3: on two-interface devices usb-storage may own
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

std::size_t LibusbTransport::bulkOutSlots() const noexcept {
    return context_ != nullptr ? kMaxQueuedTransfers : 1;
}

void LibusbTransport::submitBulkOut(std::span<const std::uint8_t> chunk) {
    if (context_ == nullptr || pending_ >= kMaxQueuedTransfers) {
        throw Error(
            Errc::InvalidArgument,
            "bulk OUT queue is " + std::string(context_ == nullptr ? "unavailable" : "full"));
    }
    if (slots_.empty()) {
        slots_.resize(kMaxQueuedTransfers);
    }
    auto& owner = slots_[(head_ + pending_) % slots_.size()];
    if (!owner) {
        owner = std::make_unique<Slot>();
    }
    Slot& slot = *owner;
    // No libusb timeout: reapBulkOut() times the oldest transfer itself, from
    // when the one before it completed (the per-chunk timeout of bulkOut()).
    libusb_fill_bulk_transfer(slot.transfer, handle_, outEndpoint_,
                              const_cast<std::uint8_t*>(chunk.data()),
                              static_cast<int>(chunk.size()), onBulkOutDone, &slot.done, 0);
    slot.done = 0;
    slot.timedOut = false;
    const int rc = libusb_submit_transfer(slot.transfer);
    if (rc != 0) {
        slot.done = 1;
        fail(rc, "bulk OUT of " + std::to_string(chunk.size()) + " bytes could not be queued");
    }
    ++pending_;
}

bool LibusbTransport::waitFor(Slot& slot, std::chrono::steady_clock::time_point until) {
    while (slot.done == 0) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= until) {
            return false;
        }
        const auto left = std::chrono::duration_cast<std::chrono::microseconds>(until - now);
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(left.count() / 1000000);
        tv.tv_usec = static_cast<suseconds_t>(left.count() % 1000000);
        // Takes the event lock if no other thread holds it, else waits for
        // that thread's round; either way returns when `done` is set, an
        // event round ended or the time is up.
        libusb_handle_events_timeout_completed(context_, &tv, &slot.done);
    }
    return true;
}

void LibusbTransport::reapBulkOut(Milliseconds timeout) {
    if (pending_ == 0) {
        throw Error(Errc::InvalidArgument, "no queued bulk OUT transfer to wait for");
    }
    Slot& slot = *slots_[head_];
    const auto until = std::chrono::steady_clock::now() + Milliseconds(timeoutMs(timeout));
    bool cancelledLater = false;
    if (!waitFor(slot, until)) {
        cancelledLater = pending_ > 1;
        // Newest first, so the controller never sends a later chunk in the
        // gap left by an earlier one.
        for (std::size_t i = pending_; i-- > 1;) {
            Slot& later = *slots_[(head_ + i) % slots_.size()];
            if (later.done == 0) {
                libusb_cancel_transfer(later.transfer);
            }
        }
        libusb_cancel_transfer(slot.transfer);
        slot.timedOut = true;
        if (!waitFor(slot, std::chrono::steady_clock::now() + kCancelWait)) {
            slot.leaked = true;
            static_cast<void>(slots_[head_].release());
        }
    }
    head_ = (head_ + 1) % slots_.size();
    --pending_;
    const libusb_transfer* t = slot.leaked ? nullptr : slot.transfer;
    const int length = t != nullptr ? t->length : 0;
    const int accepted = t != nullptr ? t->actual_length : 0;
    const libusb_transfer_status status = t != nullptr ? t->status : LIBUSB_TRANSFER_CANCELLED;
    if (status == LIBUSB_TRANSFER_COMPLETED && accepted == length && !cancelledLater) {
        return;  // also when it completed just as it was being cancelled
    }
    const std::string what = "bulk OUT of " + std::to_string(length) + " bytes (" +
                             std::to_string(accepted) + " accepted)";
    if (slot.timedOut || status == LIBUSB_TRANSFER_TIMED_OUT) {
        throw Error(Errc::Timeout, what + " timed out");
    }
    switch (status) {
        case LIBUSB_TRANSFER_STALL:
            throw Error(Errc::Stall, what + " failed: the device stalled");
        case LIBUSB_TRANSFER_NO_DEVICE:
            throw Error(Errc::DeviceGone, what + " failed: the device left the bus");
        case LIBUSB_TRANSFER_CANCELLED:
            throw Error(Errc::Io, what + " was cancelled");
        case LIBUSB_TRANSFER_COMPLETED:
            throw Error(Errc::Io, "bulk OUT accepted " + std::to_string(accepted) + " of " +
                                      std::to_string(length) + " bytes");
        default:
            throw Error(Errc::Io, what + " failed: transfer error (status " +
                                      std::to_string(static_cast<int>(status)) + ")");
    }
}

void LibusbTransport::cancelBulkOut() noexcept {
    if (pending_ == 0) {
        return;
    }
    for (std::size_t i = pending_; i-- > 0;) {
        Slot& slot = *slots_[(head_ + i) % slots_.size()];
        if (slot.done == 0) {
            libusb_cancel_transfer(slot.transfer);
        }
    }
    const auto until = std::chrono::steady_clock::now() + kCancelWait;
    for (std::size_t i = 0; i < pending_; ++i) {
        auto& owner = slots_[(head_ + i) % slots_.size()];
        if (!waitFor(*owner, until)) {
            owner->leaked = true;
            static_cast<void>(owner.release());
        }
    }
    head_ = (head_ + pending_) % slots_.size();
    pending_ = 0;
}

}  // namespace rpiboot
