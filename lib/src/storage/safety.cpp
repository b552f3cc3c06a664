#include "rpiboot/storage/safety.hpp"

#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

namespace rpiboot::storage {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> readLine(const fs::path& file) {
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line)) {
        return std::nullopt;
    }
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ' || line.back() == '\r')) {
        line.pop_back();
    }
    return line;
}

// `inner` equals `outer` or lies below it, compared by whole path components.
bool within(const fs::path& inner, const fs::path& outer) {
    auto i = inner.begin();
    for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
        if (o->empty()) {
            continue;  // a trailing separator
        }
        if (i == inner.end() || *i != *o) {
            return false;
        }
    }
    return true;
}

bool plainName(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

}  // namespace

std::optional<std::uint64_t> diskSizeBytes(const fs::path& sysfsRoot, const std::string& disk) {
    const auto v = readLine(sysfsRoot / "class/block" / disk / "size");
    if (!v) {
        return std::nullopt;
    }
    try {
        std::size_t used = 0;
        const std::uint64_t sectors = std::stoull(*v, &used);
        if (used != v->size()) {
            return std::nullopt;
        }
        return sectors * 512;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::optional<std::string> checkTarget(const TargetCheck& c) {
    if (!c.hasStorageSection) {
        return "the profile has no storage section: nothing is written";
    }
    if (!plainName(c.disk)) {
        return "\"" + c.disk + "\" is not a block device name";
    }
    std::error_code ec;
    const fs::path link = c.sysfsRoot / "class/block" / c.disk;
    const fs::path dev = fs::canonical(link, ec);
    if (ec) {
        return "no block device " + c.disk + " in " + (c.sysfsRoot / "class/block").string();
    }
    if (fs::exists(dev / "partition")) {
        return c.disk + " is a partition, not a whole disk";
    }
    fs::path usb = c.usbDevice;
    if (usb.is_absolute()) {
        const fs::path rel = usb.lexically_relative("/sys");
        if (rel.empty() || *rel.begin() == "..") {
            return "the board's USB device " + c.usbDevice.string() + " is not a sysfs path";
        }
        usb = rel;
    }
    if (usb.empty()) {
        return "the board's USB device path is empty";
    }
    const fs::path port = fs::canonical(c.sysfsRoot / usb, ec);
    if (ec) {
        return "the board's USB device " + c.usbDevice.string() + " is not in sysfs";
    }
    const fs::path root = fs::canonical(c.sysfsRoot, ec);
    if (ec || !within(port, root / "devices") || port == root / "devices") {
        return "the board's USB device " + c.usbDevice.string() + " is not a device path";
    }
    if (!within(dev, port)) {
        return c.disk + " (" + dev.lexically_relative(root).string() +
               ") is not on the board's USB device " + usb.string();
    }
    if (readLine(dev / "ro").value_or("0") != "0") {
        return c.disk + " is read-only";
    }
    // The disk and its partitions: none may be mounted or held.
    std::set<std::string> numbers;
    if (auto n = readLine(dev / "dev")) {
        numbers.insert(*n);
    } else {
        return c.disk + " has no device number in sysfs";
    }
    for (const auto& entry : fs::directory_iterator(dev, ec)) {
        if (fs::exists(entry.path() / "partition")) {
            if (auto n = readLine(entry.path() / "dev")) {
                numbers.insert(*n);
            }
            if (!fs::is_empty(entry.path() / "holders", ec) && !ec) {
                return "partition " + entry.path().filename().string() + " of " + c.disk +
                       " is held by another block device (" +
                       fs::directory_iterator(entry.path() / "holders")
                           ->path()
                           .filename()
                           .string() +
                       ")";
            }
        }
    }
    if (fs::exists(dev / "holders") && !fs::is_empty(dev / "holders", ec) && !ec) {
        return c.disk + " is held by another block device (" +
               fs::directory_iterator(dev / "holders")->path().filename().string() + ")";
    }
    std::ifstream mounts(c.mountInfo);
    if (!mounts) {
        return "cannot read " + c.mountInfo.string() + " to check that " + c.disk +
               " is not mounted";
    }
    std::string line;
    while (std::getline(mounts, line)) {
        // mount-id parent-id major:minor root mount-point ...
        std::istringstream fields(line);
        std::string id, parent, majmin, mroot, point;
        if (!(fields >> id >> parent >> majmin >> mroot >> point)) {
            continue;
        }
        if (numbers.count(majmin) != 0) {
            return c.disk + " is mounted (device " + majmin + " on " + point + ")";
        }
    }
    if (c.imageSize) {
        const auto size = diskSizeBytes(c.sysfsRoot, c.disk);
        if (!size) {
            return "the size of " + c.disk + " is unknown";
        }
        if (*c.imageSize > *size) {
            return "the image (" + std::to_string(*c.imageSize) + " bytes) is larger than " +
                   c.disk + " (" + std::to_string(*size) + " bytes)";
        }
    }
    return std::nullopt;
}

}  // namespace rpiboot::storage
