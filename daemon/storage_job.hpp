// The storage step of one board: after its boot the board has become a USB
// disk (legacy mass-storage firmware or the mass-storage gadget); write the
// profile's image to the chosen disk, verify it, and write the boot record.
//
// runStorageJob runs on a worker thread of its own (never on the main loop):
// it chooses the disk, checks it may be written (rpiboot::storage::checkTarget
// unless the target is a virtual board's backing file), writes and verifies
// with rpiboot::storage::writeImage, and writes one JSON boot record per boot
// to the metadata directory. Callbacks run on that thread; the caller posts
// them to its loop.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "rpiboot/profile/profile.hpp"
#include "rpiboot/storage/writer.hpp"

namespace rpibootd {

// A whole disk under the USB device a board became (D-Bus `Disks` a(sst):
// node, model, size).
struct BoardDisk {
    std::string node;    // "/dev/sdb" (virtual boards: the backing file)
    std::string byPath;  // "/dev/disk/by-path/...-usb-0:1.3:1.0-scsi-0:0:0:0", "" if none
    std::string model;   // inquiry / model string: "mmcblk0"
    std::uint64_t sizeBytes = 0;
    // "/sys/devices/.../block/sdb" ("" for virtual boards). Real disks: its last
    // component must be the node's name, and the node must be the block device
    // with the device number sysfs gives (a stale name is refused).
    std::string sysfsPath;
};

struct StorageJobInput {
    std::string port;     // "1-1.3"
    std::string serial;   // the board's serial, "" when none
    std::string profile;  // profile name
    rpiboot::ProfileStorage storage;
    // The USB device the board became, as a sysfs path ("/sys/devices/.../1-1.3").
    std::string usbDeviceSysfs;
    std::vector<BoardDisk> disks;                 // every whole disk seen under it
    std::map<std::string, std::string> metadata;  // what the board reported
    std::filesystem::path recordDir;              // empty: no boot record written
    std::int64_t startedAt = 0;                   // Unix seconds, the boot's start
    // Virtual boards: the target is a regular file owned by the simulator;
    // the sysfs ancestry check does not apply (the size check does).
    bool virtualTarget = false;
    std::filesystem::path sysfsRoot = "/sys";
    std::filesystem::path mountInfo = "/proc/self/mountinfo";
};

struct StorageJobCallbacks {
    // "writing", then "verifying" (when the profile verifies).
    std::function<void(std::string_view stage)> stage;
    // Already rate-limited (at most every 100 ms, and always the last figure);
    // `written` never goes back. When the image's size is only known at its end
    // (gzip without bmap) `toWrite` is 0 until the last call, which has
    // written == toWrite. Either callback may be empty.
    std::function<void(std::uint64_t written, std::uint64_t toWrite)> progress;
};

struct StorageJobResult {
    bool ok = false;
    std::string error;  // why not: the check that refused, the failing call, the mismatch offset
    std::optional<BoardDisk> disk;  // the disk chosen, if any
    std::optional<rpiboot::storage::WriteResult> write;
    std::filesystem::path record;  // the boot record written, if any
};

// Never throws: every failure (no or ambiguous disk, a safety check, the
// image, the write, the verification, a stop request: "cancelled ...", the
// boot record) is ok = false with the reason in `error`. The boot record is
// written for every outcome when `recordDir` is set (created if missing); a
// record that cannot be written fails the job, since a station relies on it.
StorageJobResult runStorageJob(const StorageJobInput& input, const StorageJobCallbacks& callbacks,
                               std::stop_token stop);

}  // namespace rpibootd
