#include "board_core.hpp"

#include <algorithm>
#include <cstring>

namespace virtualpi {
namespace {

constexpr std::uint8_t kTypeMask = 0x60;
constexpr std::uint8_t kTypeStandard = 0x00;
constexpr std::uint8_t kTypeClass = 0x20;
constexpr std::uint8_t kTypeVendor = 0x40;
constexpr std::uint8_t kRecipientMask = 0x1f;
constexpr std::uint8_t kRecipientInterface = 1;

// Standard requests (USB 2.0 §9.4).
constexpr std::uint8_t kGetStatus = 0;
constexpr std::uint8_t kClearFeature = 1;
constexpr std::uint8_t kSetFeature = 3;
constexpr std::uint8_t kSetAddress = 5;
constexpr std::uint8_t kGetDescriptor = 6;
constexpr std::uint8_t kGetConfiguration = 8;
constexpr std::uint8_t kSetConfiguration = 9;
constexpr std::uint8_t kGetInterface = 10;
constexpr std::uint8_t kSetInterface = 11;
constexpr std::uint8_t kDescriptorDeviceQualifier = 6;

// Bulk data is taken and paced in slices of this size at most.
constexpr std::size_t kSlice = 16 * 1024;

TransferResult answer(std::span<std::uint8_t> data, std::uint16_t wLength,
                      const std::vector<std::uint8_t>& bytes) {
    const std::size_t n = std::min({static_cast<std::size_t>(wLength), data.size(), bytes.size()});
    std::memcpy(data.data(), bytes.data(), n);
    return {UsbStatus::Ok, n};
}

}  // namespace

BoardCore::BoardCore(std::uint64_t boardBytesPerSecond, std::shared_ptr<BandwidthBudget> controller)
    : boardBudget_(boardBytesPerSecond), controllerBudget_(std::move(controller)) {}

void BoardCore::resetProtocolState() {
    controlOuts.clear();
    pendingIn.reset();
    windowOpen = false;
    windowLimit = windowReceived = windowInFlight = 0;
    windowKeep.clear();
    windowKeepMax = 0;
    controlInMode = controlOutMode = EndpointMode::Normal;
    controlOutModeOnCollect.reset();
    haltedEndpoints.clear();
    configurationValue = 0;
    dropStorage();
}

void BoardCore::dropStorage() {
    for (const auto& function : storage) {
        function->disconnect();
    }
    storage.clear();
}

std::shared_ptr<BulkOnlyStorage> BoardCore::storageFor(std::uint8_t endpoint) const {
    for (const auto& function : storage) {
        if (function->ownsEndpoint(endpoint)) {
            return function;
        }
    }
    return nullptr;
}

bool BoardCore::isCurrent(std::uint64_t gen) {
    std::lock_guard lock(mutex);
    return attached && generation == gen;
}

template <typename Pred>
UsbStatus BoardCore::waitFor(std::unique_lock<std::mutex>& lock, std::uint64_t gen,
                             Deadline deadline, const std::stop_token& cancel, Pred pred) {
    const auto gone = [&] { return !attached || generation != gen; };
    const auto done = [&] { return gone() || pred(); };
    if (deadline == Deadline::max()) {
        changed.wait(lock, cancel, done);
    } else {
        changed.wait_until(lock, cancel, deadline, done);
    }
    if (gone()) {
        return UsbStatus::Disconnected;
    }
    if (pred()) {
        return UsbStatus::Ok;
    }
    return cancel.stop_requested() ? UsbStatus::Cancelled : UsbStatus::Timeout;
}

TransferResult BoardCore::control(std::uint64_t gen, const SetupPacket& setup,
                                  std::span<std::uint8_t> data, Deadline deadline,
                                  const std::stop_token& cancel) {
    std::unique_lock lock(mutex);
    if (!attached || generation != gen) {
        return {UsbStatus::Disconnected, 0};
    }
    const std::uint8_t type = setup.requestType & kTypeMask;
    if (type == kTypeStandard) {
        return standardRequest(setup, data);
    }
    // Class requests to a mass-storage interface (Get Max LUN, reset).
    if (type == kTypeClass && (setup.requestType & kRecipientMask) == kRecipientInterface) {
        for (const auto& function : storage) {
            if (function->interfaceNumber() == (setup.index & 0xff)) {
                return function->classRequest(setup, data);
            }
        }
        return {UsbStatus::Stall, 0};
    }
    // The boot protocol: vendor, recipient device, bRequest 0 (docs/protocol.md §3).
    // The final identity (gadget) speaks no boot protocol.
    const bool bootDevice = stage == Stage::Rom || stage == Stage::SecondStage;
    if (type != kTypeVendor || setup.request != 0 || (setup.requestType & kRecipientMask) != 0 ||
        !bootDevice) {
        return {UsbStatus::Stall, 0};
    }
    if (setup.isIn()) {
        return vendorIn(lock, gen, setup, data, deadline, cancel);
    }
    return vendorOut(lock, gen, setup, deadline, cancel);
}

TransferResult BoardCore::vendorIn(std::unique_lock<std::mutex>& lock, std::uint64_t gen,
                                   const SetupPacket& setup, std::span<std::uint8_t> data,
                                   Deadline deadline, const std::stop_token& cancel) {
    // NAK until the device has something to say (docs/protocol.md §3.5).
    const UsbStatus status = waitFor(lock, gen, deadline, cancel, [&] {
        return controlInMode == EndpointMode::Stall ||
               (pendingIn.has_value() && controlInMode == EndpointMode::Normal);
    });
    if (status != UsbStatus::Ok) {
        return {status, 0};
    }
    if (controlInMode == EndpointMode::Stall) {
        return {UsbStatus::Stall, 0};
    }
    // The device returns up to wLength bytes; the rest of a longer message is
    // lost, as on a real data stage.
    const TransferResult result = answer(data, setup.length, *pendingIn);
    if (pendingIn->size() != setup.length) {
        record.log.push_back("host read " + std::to_string(setup.length) +
                             " bytes where the device had " + std::to_string(pendingIn->size()));
    }
    pendingIn.reset();
    ++inTaken;
    if (controlOutModeOnCollect) {
        controlOutMode = *controlOutModeOnCollect;
        controlOutModeOnCollect.reset();
    }
    changed.notify_all();
    return result;
}

TransferResult BoardCore::vendorOut(std::unique_lock<std::mutex>& lock, std::uint64_t gen,
                                    const SetupPacket& setup, Deadline deadline,
                                    const std::stop_token& cancel) {
    if (controlOutMode == EndpointMode::Stall) {
        return {UsbStatus::Stall, 0};
    }
    if (controlOutMode == EndpointMode::Silence) {
        // NAK the status stage until the host gives up.
        const UsbStatus status = waitFor(lock, gen, deadline, cancel, [] { return false; });
        return {status, 0};
    }
    if (setup.length != 0) {
        // The protocol's control OUT never has a data stage (docs/protocol.md §3.1).
        record.log.push_back("host sent a vendor control OUT with a " +
                             std::to_string(setup.length) + "-byte data stage; stalled");
        return {UsbStatus::Stall, 0};
    }
    controlOuts.push_back(static_cast<std::uint32_t>(setup.value) |
                          (static_cast<std::uint32_t>(setup.index) << 16));
    changed.notify_all();
    return {UsbStatus::Ok, 0};
}

TransferResult BoardCore::standardRequest(const SetupPacket& setup, std::span<std::uint8_t> data) {
    const DescriptorSet& d = *descriptors;
    const std::uint8_t recipient = setup.requestType & kRecipientMask;
    const auto endpointKnown = [&](std::uint8_t ep) {
        const auto eps = d.bulkEndpoints();
        return std::find(eps.begin(), eps.end(), ep) != eps.end();
    };
    switch (setup.request) {
        case kGetDescriptor: {
            if (!setup.isIn()) {
                break;
            }
            const auto type = static_cast<std::uint8_t>(setup.value >> 8);
            const auto index = static_cast<std::uint8_t>(setup.value & 0xff);
            if (type == kDescriptorDevice) {
                return answer(data, setup.length, d.device);
            }
            if (type == kDescriptorConfiguration && index == 0) {
                return answer(data, setup.length, d.configurationRead(setup.length));
            }
            if (type == kDescriptorString) {
                const auto bytes = d.stringDescriptor(index);
                if (!bytes.empty()) {
                    return answer(data, setup.length, bytes);
                }
            }
            if (type == kDescriptorDeviceQualifier) {
                // A high-speed device that could also run at full speed.
                return answer(data, setup.length, {10, 6, 0x00, 0x02, 0, 0, 0, 64, 1, 0});
            }
            break;
        }
        case kSetAddress:
            return {UsbStatus::Ok, 0};
        case kSetConfiguration:
            if (setup.value <= 1) {
                configurationValue = static_cast<std::uint8_t>(setup.value);
                return {UsbStatus::Ok, 0};
            }
            break;
        case kGetConfiguration:
            return answer(data, setup.length, {configurationValue});
        case kGetInterface:
            return answer(data, setup.length, {0});
        case kSetInterface:
            if (setup.value == 0) {
                return {UsbStatus::Ok, 0};
            }
            break;
        case kGetStatus: {
            if (recipient == 2) {
                const auto ep = static_cast<std::uint8_t>(setup.index);
                if (const auto function = storageFor(ep)) {
                    return answer(data, setup.length,
                                  {static_cast<std::uint8_t>(function->halted(ep) ? 1 : 0), 0});
                }
                if (!endpointKnown(ep)) {
                    break;
                }
                const std::uint8_t halted = haltedEndpoints.count(ep) != 0 ? 1 : 0;
                return answer(data, setup.length, {halted, 0});
            }
            const bool selfPowered = d.configuration.size() > 7 && (d.configuration[7] & 0x40);
            return answer(data, setup.length,
                          {static_cast<std::uint8_t>(recipient == 0 && selfPowered ? 1 : 0), 0});
        }
        case kClearFeature:
        case kSetFeature:
            if (recipient == 2 && setup.value == 0) {  // ENDPOINT_HALT
                const auto ep = static_cast<std::uint8_t>(setup.index);
                if (!endpointKnown(ep)) {
                    break;
                }
                if (const auto function = storageFor(ep)) {
                    if (setup.request == kClearFeature) {
                        function->clearHalt(ep);
                    } else {
                        function->setHalt(ep);
                    }
                    return {UsbStatus::Ok, 0};
                }
                if (setup.request == kClearFeature) {
                    haltedEndpoints.erase(ep);
                } else {
                    haltedEndpoints.insert(ep);
                }
                changed.notify_all();
                return {UsbStatus::Ok, 0};
            }
            if (recipient == 0) {
                return {UsbStatus::Ok, 0};  // remote wakeup, test mode: accepted, ignored
            }
            break;
        default:
            break;
    }
    return {UsbStatus::Stall, 0};
}

TransferResult BoardCore::bulkOut(std::uint64_t gen, std::uint8_t endpoint,
                                  std::span<const std::uint8_t> data, Deadline deadline,
                                  const std::stop_token& cancel) {
    std::unique_lock lock(mutex);
    if (!attached || generation != gen) {
        return {UsbStatus::Disconnected, 0};
    }
    const auto eps = descriptors->bulkEndpoints();
    if ((endpoint & 0x80) != 0 || std::find(eps.begin(), eps.end(), endpoint) == eps.end()) {
        return {UsbStatus::Stall, 0};
    }
    if (const auto function = storageFor(endpoint)) {
        lock.unlock();
        return function->bulkOut(data, deadline, cancel);
    }
    // Only the vendor interface carries the protocol; the others NAK.
    const bool vendorEndpoint = endpoint == descriptors->vendorBulkOutEndpoint() &&
                                (stage == Stage::Rom || stage == Stage::SecondStage);
    std::size_t done = 0;
    while (done < data.size()) {
        const UsbStatus status = waitFor(lock, gen, deadline, cancel, [&] {
            return haltedEndpoints.count(endpoint) != 0 ||
                   (vendorEndpoint && windowOpen && windowReceived + windowInFlight < windowLimit);
        });
        if (status != UsbStatus::Ok) {
            return {status, done};
        }
        if (haltedEndpoints.count(endpoint) != 0) {
            return {UsbStatus::Stall, done};
        }
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(
            {data.size() - done, windowLimit - windowReceived - windowInFlight, kSlice}));
        windowInFlight += n;
        // Pace the slice: the board's own cap and the controller's shared budget.
        auto through = boardBudget_.reserve(n);
        if (controllerBudget_) {
            through = std::max(through, controllerBudget_->reserve(n));
        }
        if (through > Clock::now()) {
            const UsbStatus paced =
                waitFor(lock, gen, std::min(deadline, through), cancel, [] { return false; });
            if (paced != UsbStatus::Timeout || Clock::now() < through) {
                windowInFlight -= n;
                changed.notify_all();
                return {paced == UsbStatus::Ok ? UsbStatus::Timeout : paced, done};
            }
        }
        const auto bytes = data.subspan(done, n);
        windowHash.update(bytes);
        if (windowKeep.size() < windowKeepMax) {
            const std::size_t keep = std::min(n, windowKeepMax - windowKeep.size());
            windowKeep.insert(windowKeep.end(), bytes.begin(), bytes.begin() + keep);
        }
        windowInFlight -= n;
        windowReceived += n;
        windowLastByte = Clock::now();
        done += n;
        changed.notify_all();
    }
    return {UsbStatus::Ok, done};
}

TransferResult BoardCore::bulkIn(std::uint64_t gen, std::uint8_t endpoint,
                                 std::span<std::uint8_t> buffer, Deadline deadline,
                                 const std::stop_token& cancel) {
    std::unique_lock lock(mutex);
    if (!attached || generation != gen) {
        return {UsbStatus::Disconnected, 0};
    }
    const auto eps = descriptors->bulkEndpoints();
    if ((endpoint & 0x80) == 0 || std::find(eps.begin(), eps.end(), endpoint) == eps.end()) {
        return {UsbStatus::Stall, 0};
    }
    if (const auto function = storageFor(endpoint)) {
        lock.unlock();
        return function->bulkIn(buffer, deadline, cancel);
    }
    // Nothing is ever sent on bulk IN (docs/protocol.md §2.3): NAK.
    const UsbStatus status =
        waitFor(lock, gen, deadline, cancel, [&] { return haltedEndpoints.count(endpoint) != 0; });
    return {status == UsbStatus::Ok ? UsbStatus::Stall : status, 0};
}

}  // namespace virtualpi
