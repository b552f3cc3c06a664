// Writes an OS image to a disk (a block device, or a regular file in tests and
// benchmarks) and verifies it by reading it back.
//
// One decoder thread fills a bounded queue of aligned buffers (4 MiB by
// default) while the calling thread writes them with O_DIRECT, so
// decompression overlaps the writes. Where the file system refuses O_DIRECT
// (tmpfs, some FUSE), the writer falls back to buffered writes and says so in
// the result. With a bmap only the mapped ranges are written and each range's
// checksum is checked as it goes. After fsync, every written extent is read
// back bypassing the page cache and its SHA-256 compared with what was
// written; a mismatch names the exact byte offset.
//
// Failures (I/O, corrupt image, bmap checksum, image larger than the target)
// throw rpiboot::Error whose message names the image, the offset and the
// failing call. A cancelled write and a failed verification are results, not
// exceptions.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>

namespace rpiboot::storage {

struct WriteProgress {
    std::uint64_t bytesWritten = 0;
    std::uint64_t bytesToWrite = 0;  // 0 while unknown (a gzip image without bmap)
};

struct WriteOptions {
    std::filesystem::path image;
    std::optional<std::filesystem::path> bmap;  // write only the ranges it maps
    std::filesystem::path target;               // must exist; never created
    std::size_t bufferSize = 4u << 20;          // a multiple of 4096
    std::size_t queueDepth = 4;                 // buffers between decoder and writer
    bool verify = true;
    bool direct = true;  // try O_DIRECT (falls back when refused)
    // Capacity of the target in bytes; block devices report theirs
    // (BLKGETSIZE64), for regular files this is the limit if set.
    std::optional<std::uint64_t> targetCapacity;
    // Called after each buffer from the writing thread; rate-limit in the callback.
    std::function<void(const WriteProgress&)> progress;
    // Checked between buffers; when set (or stop requested on `stop`, e.g. a
    // worker's std::jthread token) the write stops and reports Cancelled.
    const std::atomic<bool>* cancel = nullptr;
    std::stop_token stop;
    // Called after the write is flushed, before verifying (tests inject faults here).
    std::function<void()> beforeVerify;
};

enum class WriteOutcome {
    Verified,      // written, flushed, read back equal
    Written,       // written and flushed, verification not asked for
    VerifyFailed,  // written, but the read-back differs or cannot be read (see message)
    Cancelled,     // stopped at the caller's request (see bytesWritten)
};

std::string_view toString(WriteOutcome outcome) noexcept;  // "verified", "written", ...

struct WriteResult {
    std::string imageName;           // file name of the image
    std::string imageFormat;         // "raw", "xz", "zstd", "gzip"
    std::string imageSha256;         // of the whole uncompressed image (empty if cancelled)
    std::string readBackSha256;      // of what verification read back (the written extents)
    std::uint64_t imageSize = 0;     // uncompressed bytes read from the image
    std::uint64_t bytesWritten = 0;  // bytes written to the target
    std::uint64_t bytesVerified = 0;
    std::chrono::milliseconds writeDuration{0};
    std::chrono::milliseconds verifyDuration{0};
    bool directIo = false;  // false: O_DIRECT was refused, buffered I/O was used
    bool bmapUsed = false;
    WriteOutcome outcome = WriteOutcome::Written;
    std::string message;  // the cause when VerifyFailed / Cancelled, and the fallback note
};

WriteResult writeImage(const WriteOptions& options);

// Wraps a progress callback so that it runs at most once per `interval`, and
// always for the last buffer (bytesWritten == bytesToWrite) so the final
// figure is never lost.
std::function<void(const WriteProgress&)> rateLimited(
    std::chrono::milliseconds interval, std::function<void(const WriteProgress&)> callback);

}  // namespace rpiboot::storage
