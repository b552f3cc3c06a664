#include "rpiboot/storage/writer.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "digest.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/core/unique_fd.hpp"
#include "rpiboot/storage/bmap.hpp"
#include "rpiboot/storage/image_source.hpp"

namespace rpiboot::storage {
namespace {

constexpr std::size_t kAlign = 4096;  // covers 512- and 4096-byte logical blocks
using Clock = std::chrono::steady_clock;

struct FreeDeleter {
    void operator()(std::uint8_t* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<std::uint8_t[], FreeDeleter>;

AlignedBuffer allocAligned(std::size_t size) {
    void* p = std::aligned_alloc(kAlign, (size + kAlign - 1) / kAlign * kAlign);
    if (p == nullptr) {
        throw Error(Errc::Io, "cannot allocate a " + std::to_string(size) + "-byte buffer");
    }
    return AlignedBuffer(static_cast<std::uint8_t*>(p));
}

// A piece of a buffer to write at an offset of the target (the whole buffer,
// or with a bmap the parts of mapped ranges).
struct Piece {
    std::size_t at;  // in the buffer
    std::size_t length;
    std::uint64_t offset;   // in the image and on the target
    std::size_t endsRange;  // with a bmap: the index of the range this piece completes, or npos
};
constexpr std::size_t npos = static_cast<std::size_t>(-1);

struct Buffer {
    AlignedBuffer data;
    std::size_t len = 0;
    std::uint64_t offset = 0;  // in the uncompressed image
    std::vector<Piece> pieces;
    bool end = false;
    std::exception_ptr error;
    int refs = 0;  // consumers still holding it (Pipeline::share)
};

// The bounded queue between the decoder thread and the writer.
class Pipeline {
  public:
    Pipeline(std::size_t depth, std::size_t size) : size_(size) {
        for (std::size_t i = 0; i < depth; ++i) {
            buffers_.push_back(std::make_unique<Buffer>());
            buffers_.back()->data = allocAligned(size);
            free_.push_back(buffers_.back().get());
        }
    }
    std::size_t bufferSize() const { return size_; }
    Buffer* takeFree() { return take(free_); }
    Buffer* takeFull() { return take(full_); }
    void putFree(Buffer* b) { put(free_, b); }
    void putFull(Buffer* b) { put(full_, b); }
    // The write pipeline: each buffer goes both to the writer and the hasher
    // and is free again once both released it.
    Buffer* takeHash() { return take(hash_); }
    void share(Buffer* b) {
        std::lock_guard lock(m_);
        b->refs = 2;
        full_.push_back(b);
        hash_.push_back(b);
        cv_.notify_all();
    }
    void release(Buffer* b) {
        std::lock_guard lock(m_);
        if (--b->refs == 0) {
            free_.push_back(b);
            cv_.notify_all();
        }
    }
    void stop() {
        std::lock_guard lock(m_);
        stopped_ = true;
        cv_.notify_all();
    }

  private:
    Buffer* take(std::deque<Buffer*>& q) {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return stopped_ || !q.empty(); });
        if (stopped_) {
            return nullptr;
        }
        Buffer* b = q.front();
        q.pop_front();
        return b;
    }
    void put(std::deque<Buffer*>& q, Buffer* b) {
        std::lock_guard lock(m_);
        q.push_back(b);
        cv_.notify_all();
    }

    std::size_t size_;
    std::vector<std::unique_ptr<Buffer>> buffers_;
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<Buffer*> free_, full_, hash_;
    bool stopped_ = false;
};

struct Extent {
    std::uint64_t offset;
    std::uint64_t length;
};

std::string hex(std::uint64_t v) {
    char b[32];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

std::string at(std::uint64_t offset) {
    return "offset " + std::to_string(offset) + " (" + hex(offset) + ")";
}

class Target {
  public:
    Target(const std::filesystem::path& path, bool direct) : path_(path) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            const int e = errno;
            throw Error(e == ENOENT ? Errc::NotFound : Errc::Io,
                        "cannot write to " + path.string() + ": stat: " + errnoText(e));
        }
        block_ = S_ISBLK(st.st_mode);
        if (!block_ && !S_ISREG(st.st_mode)) {
            throw Error(Errc::Refused, "refusing to write to " + path.string() +
                                           ": neither a block device nor a regular file");
        }
        // O_EXCL on a block device: fails with EBUSY when mounted or held open exclusively.
        const int flags = O_RDWR | O_CLOEXEC | (block_ ? O_EXCL : 0);
        fd_.reset(direct ? ::open(path.c_str(), flags | O_DIRECT) : -1);
        direct_ = fd_.valid();
        if (!fd_) {
            fd_.reset(::open(path.c_str(), flags));
        }
        if (!fd_) {
            const int e = errno;
            throw Error(e == EBUSY ? Errc::Refused : Errc::Io,
                        "cannot open " + path.string() + " for writing (open" +
                            (block_ ? " O_EXCL" : "") + "): " + errnoText(e));
        }
        if (block_) {
            std::uint64_t bytes = 0;
            if (::ioctl(fd_.get(), BLKGETSIZE64, &bytes) != 0) {
                const int e = errno;
                throw Error(Errc::Io,
                            "ioctl BLKGETSIZE64 on " + path.string() + ": " + errnoText(e));
            }
            capacity_ = bytes;
        }
    }
    Target(const Target&) = delete;
    Target& operator=(const Target&) = delete;

    bool direct() const { return direct_; }
    std::optional<std::uint64_t> capacity() const { return capacity_; }
    void limit(std::uint64_t bytes) {
        if (!capacity_ || bytes < *capacity_) {
            capacity_ = bytes;
        }
    }
    const std::filesystem::path& path() const { return path_; }

    void write(const std::uint8_t* data, std::size_t len, std::uint64_t offset) {
        if (capacity_ && offset + len > *capacity_) {
            throw Error(Errc::TooLarge, "the image does not fit on " + path_.string() + " (" +
                                            std::to_string(*capacity_) + " bytes): it goes on at " +
                                            at(offset + len));
        }
        io(true, const_cast<std::uint8_t*>(data), len, offset);
    }
    // Reads exactly `len` bytes; returns the failing call's message, or nothing.
    // `data` must hold `len` rounded up to 4096 bytes: an unaligned tail is
    // read whole with O_DIRECT so that it too comes from the disk.
    std::optional<std::string> read(std::uint8_t* data, std::size_t len, std::uint64_t offset) {
        if (direct_ && len % kAlign != 0 && offset % kAlign == 0 &&
            reinterpret_cast<std::uintptr_t>(data) % kAlign == 0) {
            const std::size_t rounded = (len + kAlign - 1) / kAlign * kAlign;
            std::size_t done = 0;
            while (done < len) {
                const ssize_t n = ::pread(fd_.get(), data + done, rounded - done,
                                          static_cast<off_t>(offset + done));
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                if (n <= 0) {
                    break;  // the end of the device: the buffered path below
                }
                done += static_cast<std::size_t>(n);
                if (done < len && done % kAlign != 0) {
                    break;
                }
            }
            if (done >= len) {
                return std::nullopt;
            }
        }
        try {
            io(false, data, len, offset);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::nullopt;
    }
    void sync() {
        if (::fsync(fd_.get()) != 0) {
            throw Error(Errc::Io, "fsync " + path_.string() + ": " + errnoText(errno));
        }
        // Drop cached pages (all of them with buffered I/O, an unaligned tail
        // with O_DIRECT) so that the read-back comes from the disk.
        ::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_DONTNEED);
    }
    std::string fallbackNote() const { return note_; }

  private:
    void setDirect(bool on) {
        const int fl = ::fcntl(fd_.get(), F_GETFL);
        if (fl < 0 || ::fcntl(fd_.get(), F_SETFL, on ? (fl | O_DIRECT) : (fl & ~O_DIRECT)) != 0) {
            throw Error(Errc::Io, "fcntl O_DIRECT on " + path_.string() + ": " + errnoText(errno));
        }
    }
    void io(bool writing, std::uint8_t* data, std::size_t len, std::uint64_t offset) {
        const bool aligned = offset % kAlign == 0 && len % kAlign == 0 &&
                             reinterpret_cast<std::uintptr_t>(data) % kAlign == 0;
        const bool toggle = direct_ && !aligned;  // an unaligned tail or block
        if (toggle) {
            setDirect(false);
        }
        std::size_t done = 0;
        while (done < len) {
            const ssize_t n = writing ? ::pwrite(fd_.get(), data + done, len - done,
                                                 static_cast<off_t>(offset + done))
                                      : ::pread(fd_.get(), data + done, len - done,
                                                static_cast<off_t>(offset + done));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && errno == EINVAL && direct_ && !toggle && done == 0) {
                // The file system takes O_DIRECT at open but not at I/O: go buffered.
                setDirect(false);
                direct_ = false;
                note_ = "O_DIRECT refused by the file system; buffered I/O used";
                continue;
            }
            if (n <= 0) {
                const std::string call = writing ? "pwrite" : "pread";
                const std::string why = n == 0 ? "unexpected end of file" : errnoText(errno);
                if (toggle) {
                    ::fcntl(fd_.get(), F_SETFL, ::fcntl(fd_.get(), F_GETFL) | O_DIRECT);
                }
                throw Error(Errc::Io,
                            call + " " + path_.string() + " at " + at(offset + done) + ": " + why);
            }
            done += static_cast<std::size_t>(n);
        }
        if (toggle) {
            setDirect(true);
        }
    }

    std::filesystem::path path_;
    UniqueFd fd_;
    bool block_ = false;
    bool direct_ = false;
    std::optional<std::uint64_t> capacity_;
    std::string note_;
};

// The first byte of the written extents that differs between the target and
// the image: re-reads both, only after the digests disagreed.
std::optional<std::uint64_t> firstDifference(const std::filesystem::path& image, Target& target,
                                             const std::vector<Extent>& extents,
                                             std::size_t bufferSize) {
    auto src = openImage(image);
    std::vector<std::uint8_t> want(bufferSize);
    AlignedBuffer got = allocAligned(bufferSize);
    std::uint64_t pos = 0;
    for (const Extent& e : extents) {
        while (pos < e.offset) {  // skip what was not written
            const std::size_t n = src->read(
                want.data(),
                static_cast<std::size_t>(std::min<std::uint64_t>(want.size(), e.offset - pos)));
            if (n == 0) {
                return e.offset;
            }
            pos += n;
        }
        for (std::uint64_t done = 0; done < e.length;) {
            const std::size_t n =
                static_cast<std::size_t>(std::min<std::uint64_t>(bufferSize, e.length - done));
            const std::size_t have = src->read(want.data(), n);
            if (target.read(got.get(), n, e.offset + done)) {
                return e.offset + done;
            }
            for (std::size_t i = 0; i < n; ++i) {
                if (i >= have || want[i] != got.get()[i]) {
                    return e.offset + done + i;
                }
            }
            done += n;
            pos += n;
        }
    }
    return std::nullopt;
}

}  // namespace

std::string_view toString(WriteOutcome outcome) noexcept {
    switch (outcome) {
        case WriteOutcome::Verified:
            return "verified";
        case WriteOutcome::Written:
            return "written";
        case WriteOutcome::VerifyFailed:
            return "verify-failed";
        case WriteOutcome::Cancelled:
            return "cancelled";
    }
    return "unknown";
}

WriteResult writeImage(const WriteOptions& options) {
    if (options.bufferSize == 0 || options.bufferSize % kAlign != 0 || options.queueDepth == 0) {
        throw Error(Errc::InvalidArgument, "the write buffer size must be a non-zero multiple of " +
                                               std::to_string(kAlign));
    }
    WriteResult result;
    result.imageName = options.image.filename().string();
    std::optional<Bmap> bmap;
    if (options.bmap) {
        bmap = loadBmap(*options.bmap);
        result.bmapUsed = true;
    }
    auto source = openImage(options.image);
    result.imageFormat = std::string(toString(source->format()));

    Target target(options.target, options.direct);
    if (options.targetCapacity) {
        target.limit(*options.targetCapacity);
    }
    std::optional<std::uint64_t> needed = source->uncompressedSize();
    std::uint64_t toWrite = needed.value_or(0);
    if (bmap) {
        needed = bmap->ranges.empty() ? 0
                                      : bmap->rangeOffset(bmap->ranges.back()) +
                                            bmap->rangeLength(bmap->ranges.back());
        toWrite = bmap->mappedBytes();
        if (source->uncompressedSize() && *source->uncompressedSize() != bmap->imageSize) {
            throw Error(Errc::Corrupt, "image " + options.image.string() + " has " +
                                           std::to_string(*source->uncompressedSize()) +
                                           " bytes but its bmap says " +
                                           std::to_string(bmap->imageSize));
        }
    }
    if (needed && target.capacity() && *needed > *target.capacity()) {
        throw Error(Errc::TooLarge, "refusing to write image " + options.image.string() + " (" +
                                        std::to_string(*needed) + " bytes) to " +
                                        options.target.string() + ": larger than its " +
                                        std::to_string(*target.capacity()) + " bytes");
    }

    std::uint64_t bytesToWrite = toWrite;
    const auto started = Clock::now();
    Pipeline pipe(options.queueDepth, options.bufferSize);
    std::string imageSha;    // of the whole uncompressed image
    std::string writtenSha;  // of the written bytes in order (== imageSha without a bmap)
    std::atomic<bool> hashFailed{false};

    // The decoder thread decompresses and, with a bmap, cuts each buffer into
    // the mapped pieces; the hasher thread hashes the image (and checks each
    // range's checksum) while the writing thread writes the same buffer.
    std::jthread decoder([&] {
        std::size_t range = 0;
        std::uint64_t offset = 0;
        for (;;) {
            Buffer* b = pipe.takeFree();
            if (b == nullptr) {
                return;  // stopped
            }
            try {
                b->pieces.clear();
                b->len = 0;
                b->len = source->read(b->data.get(), pipe.bufferSize());
                b->offset = offset;
                offset += b->len;
                b->end = b->len < pipe.bufferSize();
                const std::uint64_t bufEnd = b->offset + b->len;
                if (!bmap) {
                    if (b->len != 0) {
                        b->pieces.push_back({0, b->len, b->offset, npos});
                    }
                }
                while (bmap && range < bmap->ranges.size()) {
                    const BmapRange& r = bmap->ranges[range];
                    const std::uint64_t rBegin = bmap->rangeOffset(r);
                    const std::uint64_t rEnd = rBegin + bmap->rangeLength(r);
                    if (rBegin >= bufEnd) {
                        break;
                    }
                    const std::uint64_t from = std::max(rBegin, b->offset);
                    const std::uint64_t to = std::min(rEnd, bufEnd);
                    b->pieces.push_back({static_cast<std::size_t>(from - b->offset),
                                         static_cast<std::size_t>(to - from), from,
                                         to == rEnd ? range : npos});
                    if (to < rEnd) {
                        break;  // the range goes on in the next buffer
                    }
                    ++range;
                }
                if (b->end && bmap && (offset != bmap->imageSize || range != bmap->ranges.size())) {
                    throw Error(Errc::Corrupt, "image " + options.image.string() + " ends after " +
                                                   std::to_string(offset) +
                                                   " bytes; its bmap says " +
                                                   std::to_string(bmap->imageSize));
                }
            } catch (...) {
                b->pieces.clear();
                b->error = std::current_exception();
                b->end = true;
            }
            pipe.share(b);
            if (b->end) {
                return;
            }
        }
    });
    std::exception_ptr hashError;
    std::jthread hasher([&] {
        try {
            Digest sha;
            std::unique_ptr<Digest> written, rangeSum;
            if (bmap) {
                written = std::make_unique<Digest>();
                rangeSum = std::make_unique<Digest>(bmap->checksumType == ChecksumType::Sha256
                                                        ? Digest::Kind::Sha256
                                                        : Digest::Kind::Sha1);
            }
            for (;;) {
                Buffer* b = pipe.takeHash();
                if (b == nullptr) {
                    return;
                }
                const bool end = b->end;
                if (b->error) {
                    pipe.release(b);
                    return;
                }
                sha.update(b->data.get(), b->len);
                for (const Piece& p : bmap ? b->pieces : std::vector<Piece>{}) {
                    rangeSum->update(b->data.get() + p.at, p.length);
                    written->update(b->data.get() + p.at, p.length);
                    if (p.endsRange == npos) {
                        continue;
                    }
                    const BmapRange& r = bmap->ranges[p.endsRange];
                    const std::string sum = rangeSum->finishHex();
                    if (sum != r.checksum) {
                        pipe.release(b);
                        throw Error(
                            Errc::Corrupt,
                            "image " + options.image.string() + ": bmap range " +
                                std::to_string(r.first) + "-" + std::to_string(r.last) +
                                " (bytes " + std::to_string(bmap->rangeOffset(r)) + "-" +
                                std::to_string(bmap->rangeOffset(r) + bmap->rangeLength(r) - 1) +
                                ") has checksum " + sum + ", the bmap says " + r.checksum);
                    }
                }
                if (end) {
                    imageSha = sha.finishHex();
                    writtenSha = written ? written->finishHex() : imageSha;
                }
                pipe.release(b);
                if (end) {
                    return;
                }
            }
        } catch (...) {
            hashError = std::current_exception();
            hashFailed = true;
            pipe.stop();  // the writer sees the error at its next buffer
        }
    });
    auto stopDecoder = [&] {
        pipe.stop();
        if (decoder.joinable()) {
            decoder.join();
        }
        if (hasher.joinable()) {
            hasher.join();
        }
    };

    std::vector<Extent> extents;
    std::uint64_t imageBytes = 0;
    WriteProgress progress{0, bytesToWrite};
    try {
        for (;;) {
            if ((options.cancel != nullptr && options.cancel->load()) ||
                options.stop.stop_requested()) {
                stopDecoder();
                target.sync();
                result.outcome = WriteOutcome::Cancelled;
                result.bytesWritten = progress.bytesWritten;
                result.imageSize = imageBytes;
                result.directIo = target.direct();
                result.message = "cancelled after " + std::to_string(progress.bytesWritten) +
                                 " bytes written to " + options.target.string();
                result.writeDuration =
                    std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
                return result;
            }
            Buffer* b = pipe.takeFull();
            if (b == nullptr || hashFailed) {  // only the hasher stops the pipe here
                stopDecoder();
                if (!hashError) {
                    throw Error(Errc::Io, "writing " + options.image.string() +
                                              ": the hashing thread stopped");
                }
                std::rethrow_exception(hashError);
            }
            if (b->error) {
                stopDecoder();
                std::rethrow_exception(b->error);
            }
            for (const Piece& p : b->pieces) {
                target.write(b->data.get() + p.at, p.length, p.offset);
                if (!extents.empty() && extents.back().offset + extents.back().length == p.offset) {
                    extents.back().length += p.length;  // contiguous: one extent
                } else {
                    extents.push_back({p.offset, p.length});
                }
                progress.bytesWritten += p.length;
            }
            imageBytes = b->offset + b->len;
            const bool end = b->end;
            pipe.release(b);
            if (options.progress) {
                options.progress(progress);
            }
            if (end) {
                break;
            }
        }
        decoder.join();
        hasher.join();
        if (hashError) {
            std::rethrow_exception(hashError);
        }
        target.sync();
    } catch (...) {
        stopDecoder();
        throw;
    }
    result.writeDuration =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    result.imageSha256 = imageSha;
    result.imageSize = imageBytes;
    result.bytesWritten = progress.bytesWritten;
    result.directIo = target.direct();
    result.message = target.fallbackNote();
    if (!options.direct) {
        result.message = "buffered I/O (O_DIRECT not asked for)";
    } else if (!target.direct() && result.message.empty()) {
        result.message = "O_DIRECT refused by the file system; buffered I/O used";
    }

    if (!options.verify) {
        result.outcome = WriteOutcome::Written;
        return result;
    }
    if (options.beforeVerify) {
        options.beforeVerify();
    }

    // Verify: a reader thread reads back every written extent (bypassing the
    // page cache) while this thread hashes what it read.
    const auto verifyStart = Clock::now();
    auto finishVerify = [&](WriteOutcome outcome, std::string message) {
        result.verifyDuration =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - verifyStart);
        result.outcome = outcome;
        if (!message.empty()) {
            result.message = std::move(message);
        }
        return result;
    };
    Pipeline back(options.queueDepth, options.bufferSize);
    std::jthread reader([&] {
        auto send = [&](Buffer* b) {
            const bool end = b->end;
            back.putFull(b);
            return !end;
        };
        for (const Extent& e : extents) {
            for (std::uint64_t done = 0; done < e.length;) {
                Buffer* b = back.takeFree();
                if (b == nullptr) {
                    return;
                }
                b->len = static_cast<std::size_t>(
                    std::min<std::uint64_t>(options.bufferSize, e.length - done));
                b->offset = e.offset + done;
                if (auto failed = target.read(b->data.get(), b->len, b->offset)) {
                    b->error = std::make_exception_ptr(Error(Errc::Io, *failed));
                    b->end = true;
                    send(b);
                    return;
                }
                done += b->len;
                if (!send(b)) {
                    return;
                }
            }
        }
        if (Buffer* b = back.takeFree()) {
            b->len = 0;
            b->end = true;
            send(b);
        }
    });
    Digest readSha;
    for (;;) {
        Buffer* b = back.takeFull();
        if (b->error) {
            back.stop();
            reader.join();
            try {
                std::rethrow_exception(b->error);
            } catch (const Error& e) {
                return finishVerify(WriteOutcome::VerifyFailed, "verify: " + std::string(e.what()));
            }
        }
        readSha.update(b->data.get(), b->len);
        result.bytesVerified += b->len;
        const bool end = b->end;
        back.putFree(b);
        if (end) {
            break;
        }
    }
    reader.join();
    const std::string got = readSha.finishHex();
    result.readBackSha256 = got;
    if (got != writtenSha) {
        result.bytesVerified = 0;
        const auto diff = firstDifference(options.image, target, extents, options.bufferSize);
        return finishVerify(
            WriteOutcome::VerifyFailed,
            "verify: " + options.target.string() + " differs from image " + result.imageName +
                (diff ? " at " + at(*diff)
                      : std::string(" (SHA-256 ") + got + ", expected " + writtenSha + ")"));
    }
    return finishVerify(WriteOutcome::Verified, "");
}

std::function<void(const WriteProgress&)> rateLimited(
    std::chrono::milliseconds interval, std::function<void(const WriteProgress&)> callback) {
    auto last = std::make_shared<std::optional<Clock::time_point>>();
    return [interval, callback = std::move(callback), last](const WriteProgress& p) {
        const auto now = Clock::now();
        const bool final = p.bytesToWrite != 0 && p.bytesWritten >= p.bytesToWrite;
        if (final || !*last || now - **last >= interval) {
            *last = now;
            callback(p);
        }
    };
}

}  // namespace rpiboot::storage
