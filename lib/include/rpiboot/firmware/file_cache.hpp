// The process-wide cache of firmware file contents (docs/protocol.md §6.8).
//
// Every board served from the same file shares one read-only buffer: a file
// is read once per version, keyed by what fstat says of it (device, inode,
// size, modification and change times), and handed out as
// shared_ptr<const Bytes>. A new version of a file gets a new buffer while
// boards already being sent the old one keep theirs intact; a request never
// sees a mix of both. Files are read with pread, never mapped, so a file
// truncated on disk cannot fault a serving thread. The cache never follows or
// checks paths itself beyond readPath(): deciding which file may be served is
// the firmware resolver's job. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rpiboot {

using Bytes = std::vector<std::uint8_t>;

inline constexpr std::uint64_t kDefaultFileCacheBudget = std::uint64_t{512} << 20;

struct FileCacheStats {
    std::size_t entries = 0;
    std::uint64_t bytes = 0;      // held by the cache, in use or not
    std::uint64_t hits = 0;       // requests answered without reading the file
    std::uint64_t misses = 0;     // requests that read the file
    std::uint64_t evictions = 0;  // entries dropped to stay within the budget
};

class FileCache {
  public:
    // `byteBudget`: entries nobody holds any more are dropped, least recently
    // used first, while the cache holds more than this. Entries still held by
    // a caller are never dropped (their bytes stay valid regardless).
    explicit FileCache(std::uint64_t byteBudget = kDefaultFileCacheBudget);
    ~FileCache();
    FileCache(const FileCache&) = delete;
    FileCache& operator=(const FileCache&) = delete;

    // The contents of the file open as `fd` (which stays open and owned by the
    // caller); `label` names the file in errors. Throws Errc::Refused for a
    // directory or anything that is not a regular file, Errc::TooLarge when it
    // is over `maxSize` bytes, Errc::Io when reading fails or when the file
    // changed while being read twice in a row.
    std::shared_ptr<const Bytes> read(int fd, std::string_view label, std::uint64_t maxSize);

    // Opens `path` (following symlinks, without blocking on FIFOs) and reads it
    // as above. For callers that already decided the path may be read.
    // Throws Errc::NotFound when it does not exist.
    std::shared_ptr<const Bytes> readPath(const std::filesystem::path& path, std::uint64_t maxSize);

    FileCacheStats stats() const;
    std::uint64_t byteBudget() const noexcept { return budget_; }

  private:
    struct Key {
        std::uint64_t device = 0;
        std::uint64_t inode = 0;
        std::uint64_t size = 0;
        std::int64_t mtimeNs = 0;
        std::int64_t ctimeNs = 0;
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& key) const noexcept;
    };
    struct Entry {
        std::shared_ptr<const Bytes> bytes;
        std::list<Key>::iterator recency;
    };

    static Key keyOf(int fd, std::string_view label);
    std::shared_ptr<const Bytes> lookup(const Key& key);
    std::shared_ptr<const Bytes> insert(const Key& key, std::shared_ptr<const Bytes> bytes);
    void evictUnusedLocked();

    const std::uint64_t budget_;
    mutable std::mutex mutex_;
    std::unordered_map<Key, Entry, KeyHash> entries_;
    std::list<Key> recency_;  // most recently used first
    FileCacheStats stats_;
};

}  // namespace rpiboot
