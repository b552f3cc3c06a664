// The checks that come before a disk is opened for writing: pure functions
// over a sysfs tree and a mountinfo file, so tests run them on fake trees.
//
// A disk may be written only if: the profile has a storage section; it is a
// whole-disk block device (not a partition) under <sysfs>/class/block; its
// sysfs device path lies under the USB device of the board's port; it is not
// read-only; neither it nor any of its partitions is mounted or held by
// another block device (device-mapper, md); the image fits. The writer then
// opens it with O_EXCL, which the kernel refuses while anything else holds it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace rpiboot::storage {

struct TargetCheck {
    bool hasStorageSection = false;  // the board's profile asks for a write
    std::string disk;                // kernel name of the block device: "sdb"
    // The board's USB device as a sysfs path: absolute ("/sys/devices/.../1-1.3",
    // the leading /sys is taken as the sysfs root) or relative to the root.
    std::filesystem::path usbDevice;
    std::optional<std::uint64_t> imageSize;  // bytes to fit on the disk, if known
    std::filesystem::path sysfsRoot = "/sys";
    std::filesystem::path mountInfo = "/proc/self/mountinfo";
};

// Why the disk must not be written, or nothing when it may be.
std::optional<std::string> checkTarget(const TargetCheck& check);

// The size of a block device from sysfs (`size`, in 512-byte sectors).
std::optional<std::uint64_t> diskSizeBytes(const std::filesystem::path& sysfsRoot,
                                           const std::string& disk);

}  // namespace rpiboot::storage
