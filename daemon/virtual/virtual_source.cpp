#include "virtual/virtual_source.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <nlohmann/json.hpp>
#include <system_error>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/unique_fd.hpp"
#include "virtualpi/builtin_scenarios.hpp"
#include "virtualpi/scenario.hpp"

namespace rpibootd {

namespace {

constexpr unsigned kMaxBoardsPerItem = 256;
constexpr std::string_view kIdPrefix = "virtual:";

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        const std::size_t end = text.find(separator, start);
        parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
        if (end == std::string_view::npos) {
            return parts;
        }
        start = end + 1;
    }
}

// "\"TEXT\"", built by appending: `"\"" + std::string(...)` trips GCC 12's
// bogus -Wrestrict at -O3 (GCC bug 105329).
std::string quoted(std::string_view text) {
    std::string q(1, '"');
    q += text;
    q += '"';
    return q;
}

[[noreturn]] void bad(std::string_view item, const std::string& why) {
    throw rpiboot::Error(rpiboot::Errc::InvalidArgument,
                         "--virtual item \"" + std::string(item) + "\": " + why);
}

unsigned parseCount(std::string_view item, std::string_view text) {
    unsigned count = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
    if (ec != std::errc() || end != text.data() + text.size() || count == 0 ||
        count > kMaxBoardsPerItem) {
        bad(item,
            quoted(text) + " is not a board count from 1 to " + std::to_string(kMaxBoardsPerItem));
    }
    return count;
}

bool endsWith(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

void addScenarioFile(std::string_view item, std::vector<virtualpi::BoardSpec>& out) {
    std::string_view path = item;
    unsigned count = 1;
    if (const auto colon = item.rfind(':');
        colon != std::string_view::npos && endsWith(item.substr(0, colon), ".json")) {
        path = item.substr(0, colon);
        count = parseCount(item, item.substr(colon + 1));
    }
    virtualpi::Scenario scenario;
    try {
        scenario = virtualpi::loadScenario(std::string(path));
    } catch (const rpiboot::Error& e) {
        bad(item, e.what());
    }
    for (unsigned i = 0; i < count; ++i) {
        out.push_back(virtualpi::BoardSpec{scenario, {}, {}});
    }
}

void addBuiltin(std::string_view item, std::vector<virtualpi::BoardSpec>& out) {
    const auto fields = split(item, ':');
    if (fields.size() > 3) {
        bad(item, "expected CHIP[:COUNT[:PROFILE]]");
    }
    const auto chip = rpiboot::parseChip(fields[0]);
    if (!chip) {
        bad(item, quoted(fields[0]) +
                      " is not a chip (2835, 2837, 2711, 2712) or a scenario file (.json)");
    }
    const unsigned count = fields.size() > 1 ? parseCount(item, fields[1]) : 1;
    virtualpi::Profile profile = *chip == rpiboot::Chip::Bcm2712
                                     ? virtualpi::Profile::MassStorageGadget
                                     : virtualpi::Profile::Msd;
    if (fields.size() > 2) {
        const auto named = virtualpi::parseProfile(fields[2]);
        if (!named) {
            bad(item, quoted(fields[2]) + " is not msd, mass-storage-gadget or recovery");
        }
        profile = *named;
    }
    virtualpi::Scenario scenario;
    try {
        scenario = virtualpi::builtinScenario(*chip, profile);
    } catch (const rpiboot::Error& e) {
        bad(item, e.what());
    }
    for (unsigned i = 0; i < count; ++i) {
        out.push_back(virtualpi::BoardSpec{scenario, {}, {}});
    }
}

}  // namespace

std::vector<virtualpi::BoardSpec> parseVirtualSpec(std::string_view spec) {
    std::vector<virtualpi::BoardSpec> boards;
    for (std::string_view item : split(spec, ',')) {
        if (item.empty()) {
            bad(item, "empty item (stray comma?)");
        }
        const bool looksLikeFile = item.find('/') != std::string_view::npos ||
                                   item.find(".json") != std::string_view::npos;
        if (looksLikeFile) {
            addScenarioFile(item, boards);
        } else {
            addBuiltin(item, boards);
        }
    }
    return boards;
}

VirtualSource::VirtualSource(EventLoop& loop, Logger& log, std::vector<virtualpi::BoardSpec> boards)
    : loop_(loop), log_(log), specs_(std::move(boards)) {}

VirtualSource::~VirtualSource() {
    unplugAll();
    bus_.reset();
    if (!diskDir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(diskDir_, ec);
    }
}

std::optional<DeviceInfo> VirtualSource::toDeviceInfo(const virtualpi::SimDeviceInfo& device) {
    const auto identity = rpiboot::identifyDevice(device.summary);
    if (!identity) {
        return std::nullopt;
    }
    DeviceInfo info;
    info.id = std::string(kIdPrefix) + std::to_string(device.deviceId);
    info.port = device.portPath;
    info.identity = *identity;
    info.serial = device.serial;
    info.source = this;
    return info;
}

std::vector<DiskInfo> VirtualSource::createDisks(const virtualpi::SimDeviceInfo& device) {
    const auto board = bus_->board(device.portPath);
    // Final identities with mass-storage interfaces: the gadget and the USB disk.
    const virtualpi::FinalIdentity& became =
        board ? board->scenario().final : virtualpi::FinalIdentity{};
    if (!board || (became.kind != virtualpi::FinalKind::MassStorageGadget &&
                   became.kind != virtualpi::FinalKind::UsbDisk)) {
        return {};
    }
    // A gadget disk is known by its device name (its inquiry string), a plain
    // USB disk by its product string.
    const bool gadget = became.kind == virtualpi::FinalKind::MassStorageGadget;
    std::vector<DiskInfo> disks;
    for (const auto& name : became.disks) {
        std::uint64_t n = 0;
        {
            std::lock_guard lock(disksMutex_);
            n = ++nextDisk_;
        }
        std::string port = device.portPath;
        std::replace(port.begin(), port.end(), '.', '_');
        const std::filesystem::path file =
            diskDir_ / (port + "-" + name + "-" + std::to_string(n) + ".img");
        rpiboot::UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(diskSize_)) != 0) {
            log_.warning("cannot create the virtual disk " + file.string() + ": " +
                             std::generic_category().message(errno),
                         portFields(device.portPath));
            continue;
        }
        DiskInfo disk;
        disk.id = "virtual-disk:" + std::to_string(n);
        disk.port = device.portPath;
        disk.disk.node = file.string();
        disk.disk.model = gadget ? name : became.product;
        disk.disk.sizeBytes = diskSize_;
        disks.push_back(std::move(disk));
    }
    return disks;
}

void VirtualSource::report(const virtualpi::DeviceEvent& event, DeviceEvents& events,
                           const std::function<void(std::function<void()>)>& deliver) {
    const bool added = event.kind == virtualpi::DeviceEventKind::Added;
    if (auto info = toDeviceInfo(event.device)) {
        if (added) {
            deliver([&events, info = std::move(*info)] { events.deviceAdded(info); });
        } else {
            deliver([&events, id = std::move(info->id)] { events.deviceRemoved(id); });
        }
        return;
    }
    // What a board became after its boot.
    const virtualpi::SimDeviceInfo& d = event.device;
    const std::string id = std::string(kIdPrefix) + std::to_string(d.deviceId);
    if (added) {
        UsbDeviceInfo info;
        info.id = id;
        info.port = d.portPath;
        info.vendorId = d.summary.vendorId;
        info.productId = d.summary.productId;
        info.serial = d.serial;
        info.kind = classifyUsbDevice(info.vendorId, info.productId);
        info.simulated = true;
        auto disks = createDisks(d);
        {
            std::lock_guard lock(disksMutex_);
            disksOf_[d.deviceId] = disks;
        }
        deliver([&events, info = std::move(info)] { events.usbDeviceAdded(info); });
        for (auto& disk : disks) {
            deliver([&events, disk = std::move(disk)] { events.diskAdded(disk); });
        }
        return;
    }
    std::vector<DiskInfo> disks;
    {
        std::lock_guard lock(disksMutex_);
        if (const auto it = disksOf_.find(d.deviceId); it != disksOf_.end()) {
            disks = std::move(it->second);
            disksOf_.erase(it);
        }
    }
    for (const auto& disk : disks) {
        // A storage job that has it open keeps its data until it closes it.
        std::error_code ec;
        std::filesystem::remove(disk.disk.node, ec);
        deliver([&events, diskId = disk.id] { events.diskRemoved(diskId); });
    }
    deliver([&events, id] { events.usbDeviceRemoved(id); });
}

void VirtualSource::start(DeviceEvents& events) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "rpibootd-virtual-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw rpiboot::Error(rpiboot::Errc::Io,
                             "cannot create a directory for the virtual disks in " +
                                 std::filesystem::temp_directory_path().string() + ": " +
                                 std::generic_category().message(errno));
    }
    diskDir_ = pattern;
    bus_ = std::make_unique<virtualpi::VirtualBus>();
    std::vector<virtualpi::SimDeviceInfo> existing;
    // The bus's event thread only posts; the registry sees events in order
    // on the main loop.
    listener_ = bus_->addListener(
        [this, &events](const virtualpi::DeviceEvent& event) {
            report(event, events,
                   [this](std::function<void()> work) { loop_.post(std::move(work)); });
        },
        &existing);
    for (const auto& device : existing) {
        report(virtualpi::DeviceEvent{virtualpi::DeviceEventKind::Added, device}, events,
               [](std::function<void()> work) { work(); });
    }
    for (auto& spec : specs_) {
        plugOne(spec);
    }
}

std::string VirtualSource::plugOne(virtualpi::BoardSpec spec) {
    const std::string chip(rpiboot::chipName(spec.scenario.chip));
    const std::string scenario = spec.scenario.name;
    std::string port = bus_->plug(std::move(spec));
    log_.info("plugged in a virtual " + chip + " (scenario " + scenario + ")", portFields(port));
    return port;
}

std::vector<std::string> VirtualSource::plug(std::vector<virtualpi::BoardSpec> boards) {
    if (!bus_) {
        throw rpiboot::Error(rpiboot::Errc::InvalidArgument, "the virtual bus is not running");
    }
    std::vector<std::string> ports;
    ports.reserve(boards.size());
    for (auto& spec : boards) {
        ports.push_back(plugOne(std::move(spec)));
    }
    return ports;
}

void VirtualSource::unplug(const std::string& port) {
    if (!bus_) {
        throw rpiboot::Error(rpiboot::Errc::NotFound, "the virtual bus is not running");
    }
    bus_->unplug(port);
    log_.info("unplugged the virtual board", portFields(port));
}

std::vector<std::string> VirtualSource::ports() const {
    if (!bus_) {
        return {};
    }
    auto ports = bus_->ports();
    std::sort(ports.begin(), ports.end());
    return ports;
}

std::string VirtualSource::record(const std::string& port) const {
    const auto board = bus_ ? bus_->board(port) : nullptr;
    if (!board) {
        throw rpiboot::Error(rpiboot::Errc::NotFound, "no virtual board at port " + port);
    }
    return virtualpi::recordToJson(board->record()).dump();
}

OpenedDevice VirtualSource::open(const DeviceInfo& device) {
    if (!bus_ || device.id.rfind(kIdPrefix, 0) != 0) {
        throw rpiboot::Error(rpiboot::Errc::NotFound, device.id + " is not a virtual device");
    }
    const std::uint64_t id = std::stoull(device.id.substr(kIdPrefix.size()));
    const auto present = bus_->device(id);
    if (!present) {
        throw rpiboot::Error(rpiboot::Errc::DeviceGone, device.id + " has left the virtual bus");
    }
    return OpenedDevice{bus_->open(id), device.identity};
}

void VirtualSource::unplugAll() {
    if (!bus_) {
        return;
    }
    if (listener_ != 0) {
        bus_->removeListener(listener_);
        listener_ = 0;
    }
    for (const auto& port : bus_->ports()) {
        try {
            bus_->unplug(port);
        } catch (const rpiboot::Error&) {
            // Already gone: nothing to unplug.
        }
    }
}

}  // namespace rpibootd
