#include "rpiboot/firmware/file_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/unique_fd.hpp"

namespace rpiboot {
namespace {

std::int64_t nanoseconds(const struct timespec& time) {
    return static_cast<std::int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

struct stat statOf(int fd, std::string_view label) {
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        const int error = errno;
        throw Error(Errc::Io, "cannot stat " + std::string(label) + ": " + errnoText(error));
    }
    return info;
}

// Reads exactly `size` bytes from offset 0. False when the file ended early
// (it shrank while being read).
bool readExactly(int fd, std::string_view label, std::uint8_t* out, std::uint64_t size) {
    std::uint64_t done = 0;
    while (done < size) {
        const ssize_t got = ::pread(fd, out + done, size - done, static_cast<off_t>(done));
        if (got < 0) {
            const int error = errno;
            if (error == EINTR) {
                continue;
            }
            throw Error(Errc::Io, "cannot read " + std::string(label) + ": " + errnoText(error));
        }
        if (got == 0) {
            return false;
        }
        done += static_cast<std::uint64_t>(got);
    }
    return true;
}

}  // namespace

std::size_t FileCache::KeyHash::operator()(const Key& key) const noexcept {
    std::size_t hash = 1469598103934665603ull;
    for (std::uint64_t part :
         {key.device, key.inode, key.size, static_cast<std::uint64_t>(key.mtimeNs),
          static_cast<std::uint64_t>(key.ctimeNs)}) {
        hash = (hash ^ std::hash<std::uint64_t>{}(part)) * 1099511628211ull;
    }
    return hash;
}

FileCache::FileCache(std::uint64_t byteBudget) : budget_(byteBudget) {}

FileCache::~FileCache() = default;

FileCache::Key FileCache::keyOf(int fd, std::string_view label) {
    const struct stat info = statOf(fd, label);
    if (S_ISDIR(info.st_mode)) {
        throw Error(Errc::Refused, std::string(label) + " is a directory, not a file");
    }
    if (!S_ISREG(info.st_mode)) {
        throw Error(Errc::Refused, std::string(label) + " is not a regular file");
    }
    return Key{static_cast<std::uint64_t>(info.st_dev), static_cast<std::uint64_t>(info.st_ino),
               static_cast<std::uint64_t>(info.st_size), nanoseconds(info.st_mtim),
               nanoseconds(info.st_ctim)};
}

std::shared_ptr<const Bytes> FileCache::read(int fd, std::string_view label,
                                             std::uint64_t maxSize) {
    // Two attempts: a file rewritten while being read once is common enough
    // (an operator copying a new version in); twice in a row means it keeps
    // changing and no consistent version can be served.
    for (int attempt = 0; attempt < 2; ++attempt) {
        const Key before = keyOf(fd, label);
        if (before.size > maxSize) {
            throw Error(Errc::TooLarge, std::string(label) + " is " + std::to_string(before.size) +
                                            " bytes, over the limit of " + std::to_string(maxSize) +
                                            " bytes");
        }
        if (auto cached = lookup(before)) {
            return cached;
        }
        auto bytes = std::make_shared<Bytes>(before.size);
        const bool complete = readExactly(fd, label, bytes->data(), before.size);
        if (complete && keyOf(fd, label) == before) {
            return insert(before, std::move(bytes));
        }
    }
    throw Error(Errc::Io, std::string(label) +
                              " changed while being read, twice in a row; not serving a mix of "
                              "two versions");
}

std::shared_ptr<const Bytes> FileCache::readPath(const std::filesystem::path& path,
                                                 std::uint64_t maxSize) {
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        const int error = errno;
        const Errc code = (error == ENOENT || error == ENOTDIR) ? Errc::NotFound : Errc::Io;
        throw Error(code, "cannot open " + path.string() + ": " + errnoText(error));
    }
    return read(fd.get(), path.string(), maxSize);
}

std::shared_ptr<const Bytes> FileCache::lookup(const Key& key) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end()) {
        ++stats_.misses;
        return nullptr;
    }
    ++stats_.hits;
    recency_.splice(recency_.begin(), recency_, it->second.recency);
    return it->second.bytes;
}

std::shared_ptr<const Bytes> FileCache::insert(const Key& key, std::shared_ptr<const Bytes> bytes) {
    std::lock_guard lock(mutex_);
    // Another thread may have read the same version meanwhile: keep one copy.
    if (const auto it = entries_.find(key); it != entries_.end()) {
        recency_.splice(recency_.begin(), recency_, it->second.recency);
        return it->second.bytes;
    }
    recency_.push_front(key);
    entries_.emplace(key, Entry{bytes, recency_.begin()});
    stats_.bytes += key.size;
    stats_.entries = entries_.size();
    evictUnusedLocked();
    return bytes;
}

void FileCache::evictUnusedLocked() {
    auto it = recency_.end();
    while (stats_.bytes > budget_ && it != recency_.begin()) {
        --it;
        const auto entry = entries_.find(*it);
        // use_count() == 1: only the cache holds it, no board is being sent it.
        if (entry->second.bytes.use_count() != 1) {
            continue;
        }
        stats_.bytes -= it->size;
        ++stats_.evictions;
        entries_.erase(entry);
        it = recency_.erase(it);
    }
    stats_.entries = entries_.size();
}

FileCacheStats FileCache::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

}  // namespace rpiboot
