#include "storage_job.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <chrono>
#include <exception>
#include <fstream>
#include <new>

#include "rpiboot/core/error.hpp"
#include "rpiboot/storage/bmap.hpp"
#include "rpiboot/storage/image_source.hpp"
#include "rpiboot/storage/record.hpp"
#include "rpiboot/storage/safety.hpp"

namespace rpibootd {

namespace {

namespace fs = std::filesystem;
namespace storage = rpiboot::storage;

// A failure of the job, with the message the station operator reads.
struct JobFailure {
    std::string message;
};

std::string describeDisk(const BoardDisk& disk) {
    std::string out =
        disk.node + " (model \"" + disk.model + "\", " + std::to_string(disk.sizeBytes) + " bytes";
    if (!disk.byPath.empty()) {
        out += ", " + disk.byPath;
    }
    return out + ")";
}

std::string describeDisks(const std::vector<BoardDisk>& disks) {
    std::string out;
    for (const auto& d : disks) {
        out += (out.empty() ? "" : ", ") + describeDisk(d);
    }
    return out;
}

const BoardDisk& chooseDisk(const StorageJobInput& input) {
    const auto& disks = input.disks;
    const std::string where = "the board on port " + input.port;
    if (disks.empty()) {
        throw JobFailure{
            "no disk appeared under " + where +
            (input.usbDeviceSysfs.empty() ? std::string() : " (" + input.usbDeviceSysfs + ")")};
    }
    const std::string& wanted = input.storage.disk;
    if (wanted.empty()) {
        if (disks.size() != 1) {
            throw JobFailure{"the profile names no disk (storage.disk) and " + where + " has " +
                             std::to_string(disks.size()) + " disks: " + describeDisks(disks) +
                             "; set storage.disk to the model of the one to write"};
        }
        return disks.front();
    }
    const BoardDisk* found = nullptr;
    std::size_t matches = 0;
    for (const auto& d : disks) {
        if (d.model == wanted) {
            found = &d;
            ++matches;
        }
    }
    if (matches == 0) {
        throw JobFailure{"no disk with model \"" + wanted + "\" under " + where +
                         "; disks seen: " + describeDisks(disks)};
    }
    if (matches > 1) {
        throw JobFailure{std::to_string(matches) + " disks with model \"" + wanted + "\" under " +
                         where + ": " + describeDisks(disks) + "; refusing to guess"};
    }
    return *found;
}

// How many bytes of the target the image covers: with a bmap, up to the end
// of its last mapped range (what the writer touches); otherwise the image's
// uncompressed size when its format records it.
std::optional<std::uint64_t> imageExtent(const rpiboot::ProfileStorage& s) {
    if (s.bmap) {
        const storage::Bmap bmap = storage::loadBmap(*s.bmap);
        if (bmap.ranges.empty()) {
            return 0;
        }
        return bmap.rangeOffset(bmap.ranges.back()) + bmap.rangeLength(bmap.ranges.back());
    }
    return storage::openImage(s.image)->uncompressedSize();
}

std::string readFirstLine(const fs::path& file) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' ')) {
        line.pop_back();
    }
    return line;
}

// The kernel name of the disk ("sdb"): from its sysfs path, else its node.
std::string kernelName(const BoardDisk& disk) {
    const fs::path from = disk.sysfsPath.empty() ? fs::path(disk.node) : fs::path(disk.sysfsPath);
    std::string name = from.filename().string();
    if (name.empty()) {
        name = from.parent_path().filename().string();  // a trailing separator
    }
    return name;
}

// A real disk: the sysfs ancestry and mount checks, then the node must be the
// block device that sysfs entry describes (same device number), so a stale
// node name can never lead to another disk.
void checkRealTarget(const StorageJobInput& input, const BoardDisk& disk,
                     std::optional<std::uint64_t> extent) {
    const std::string name = kernelName(disk);
    if (!disk.sysfsPath.empty() && fs::path(disk.node).filename() != name) {
        throw JobFailure{"refusing to write " + describeDisk(disk) +
                         ": its node does not match "
                         "its sysfs entry " +
                         disk.sysfsPath};
    }
    storage::TargetCheck check;
    check.hasStorageSection = true;
    check.disk = name;
    check.usbDevice = input.usbDeviceSysfs;
    check.imageSize = extent;
    check.sysfsRoot = input.sysfsRoot;
    check.mountInfo = input.mountInfo;
    if (auto refused = storage::checkTarget(check)) {
        throw JobFailure{"refusing to write " + describeDisk(disk) + ": " + *refused};
    }
    struct stat st {};
    if (::stat(disk.node.c_str(), &st) != 0) {
        const int e = errno;
        throw JobFailure{"refusing to write " + describeDisk(disk) + ": stat " + disk.node + ": " +
                         rpiboot::errnoText(e)};
    }
    if (!S_ISBLK(st.st_mode)) {
        throw JobFailure{"refusing to write " + describeDisk(disk) + ": " + disk.node +
                         " is not a block device"};
    }
    const fs::path devFile = input.sysfsRoot / "class/block" / name / "dev";
    const std::string expected = readFirstLine(devFile);
    const std::string actual =
        std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
    if (expected != actual) {
        throw JobFailure{"refusing to write " + describeDisk(disk) + ": " + disk.node +
                         " is device " + actual + " but " + devFile.string() + " says \"" +
                         expected + "\" (the disk changed)"};
    }
}

// A virtual board's backing file: a regular file the image fits in. Returns
// the capacity to hold the writer to.
std::uint64_t checkVirtualTarget(const BoardDisk& disk, std::optional<std::uint64_t> extent) {
    struct stat st {};
    if (::stat(disk.node.c_str(), &st) != 0) {
        const int e = errno;
        throw JobFailure{"refusing to write " + describeDisk(disk) + ": stat " + disk.node + ": " +
                         rpiboot::errnoText(e)};
    }
    if (!S_ISREG(st.st_mode)) {
        throw JobFailure{"refusing to write " + describeDisk(disk) +
                         ": a virtual board's disk must be a regular file"};
    }
    const std::uint64_t capacity =
        disk.sizeBytes != 0 ? disk.sizeBytes : static_cast<std::uint64_t>(st.st_size);
    if (extent && *extent > capacity) {
        throw JobFailure{"refusing to write " + describeDisk(disk) + ": the image (" +
                         std::to_string(*extent) + " bytes) is larger than the disk (" +
                         std::to_string(capacity) + " bytes)"};
    }
    return capacity;
}

std::int64_t unixNow() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

StorageJobResult runStorageJob(const StorageJobInput& input, const StorageJobCallbacks& callbacks,
                               std::stop_token stop) {
    StorageJobResult result;
    try {
        const rpiboot::ProfileStorage& s = input.storage;
        if (s.image.empty()) {
            throw JobFailure{"the profile has no storage image: nothing is written"};
        }
        const BoardDisk& disk = chooseDisk(input);
        result.disk = disk;
        if (stop.stop_requested()) {
            throw JobFailure{"cancelled before writing to " + describeDisk(disk)};
        }

        std::optional<std::uint64_t> extent;
        try {
            extent = imageExtent(s);
        } catch (const rpiboot::Error& e) {
            throw JobFailure{std::string("cannot read the image for ") + disk.node + ": " +
                             e.what()};
        }

        storage::WriteOptions options;
        options.image = s.image;
        options.bmap = s.bmap;
        options.target = disk.node;
        options.verify = s.verify;
        options.stop = stop;
        if (input.virtualTarget) {
            options.targetCapacity = checkVirtualTarget(disk, extent);
        } else {
            checkRealTarget(input, disk, extent);
            if (disk.sizeBytes != 0) {
                options.targetCapacity = disk.sizeBytes;  // the writer also asks the kernel
            }
        }

        // Progress: rate-limited, monotone, and always ending on the final figure.
        std::optional<storage::WriteProgress> lastSent;
        auto send = [&](const storage::WriteProgress& p) {
            lastSent = p;
            if (callbacks.progress) {
                callbacks.progress(p.bytesWritten, p.bytesToWrite);
            }
        };
        options.progress = storage::rateLimited(std::chrono::milliseconds(100), send);
        options.beforeVerify = [&] {
            if (callbacks.stage) {
                callbacks.stage("verifying");
            }
        };

        if (callbacks.stage) {
            callbacks.stage("writing");
        }
        storage::WriteResult written;
        try {
            written = storage::writeImage(options);
        } catch (const rpiboot::Error& e) {
            throw JobFailure{"writing " + s.image.filename().string() + " to " +
                             describeDisk(disk) + " failed: " + e.what()};
        }
        result.write = written;
        switch (written.outcome) {
            case storage::WriteOutcome::Verified:
            case storage::WriteOutcome::Written: {
                // The image's size may only be known at its end (gzip): the
                // last figure says so.
                const std::uint64_t total = lastSent && lastSent->bytesToWrite != 0
                                                ? lastSent->bytesToWrite
                                                : written.bytesWritten;
                if (!lastSent || lastSent->bytesWritten != written.bytesWritten ||
                    lastSent->bytesToWrite != total) {
                    send({written.bytesWritten, total});
                }
                result.ok = true;
                break;
            }
            case storage::WriteOutcome::VerifyFailed:
                throw JobFailure{"verifying " + s.image.filename().string() + " on " +
                                 describeDisk(disk) + " failed: " + written.message};
            case storage::WriteOutcome::Cancelled:
                throw JobFailure{written.message.empty()
                                     ? "cancelled while writing to " + describeDisk(disk)
                                     : written.message};
        }
    } catch (const JobFailure& f) {
        result.ok = false;
        result.error = f.message;
    } catch (const std::bad_alloc&) {
        result.ok = false;
        result.error = "out of memory while writing the image " + input.storage.image.string();
    } catch (const std::exception& e) {
        result.ok = false;
        result.error = "writing the image " + input.storage.image.string() + ": " + e.what();
    } catch (...) {
        result.ok = false;
        result.error = "writing the image " + input.storage.image.string() + ": unknown error";
    }

    if (input.recordDir.empty()) {
        return result;
    }
    try {
        storage::BootRecord record;
        record.board = input.serial.empty() ? input.port : input.serial;
        record.port = input.port;
        record.profile = input.profile;
        record.startedAt = input.startedAt;
        record.finishedAt = unixNow();
        record.outcome = result.ok ? "done" : "failed";
        record.error = result.error;
        record.metadata = input.metadata;
        record.write = result.write;
        fs::create_directories(input.recordDir);  // as the metadata files do
        result.record = storage::writeBootRecord(input.recordDir, record);
    } catch (const std::exception& e) {
        // A station relies on one record per boot: a board without one is not done.
        if (result.ok) {
            result.ok = false;
            result.error =
                "the image was written, but the boot record was not: " + std::string(e.what());
        } else {
            result.error += "; the boot record was not written either: " + std::string(e.what());
        }
    } catch (...) {
        result.ok = false;
        result.error += std::string(result.error.empty() ? "" : "; ") +
                        "the boot record was not written: unknown error";
    }
    return result;
}

}  // namespace rpibootd
