#include "rpiboot/firmware/firmware_set.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <system_error>

#include "firmware/inside_root.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/firmware/embedded_firmware.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/firmware/request_name.hpp"
#include "rpiboot/firmware/tar_archive.hpp"

namespace rpiboot {
namespace {

namespace fs = std::filesystem;
using firmware_detail::openInsideRoots;
using firmware_detail::OpenStatus;

constexpr std::string_view kArchiveName = "bootfiles.bin";
// bootfiles.bin is read whole even when the set's per-file limit is lower.
constexpr std::uint64_t kMinArchiveLimit = std::uint64_t{1} << 30;

// "a/./b//c" -> "a/b/c": the form used for archive member names and paths.
std::string normaliseName(std::string_view name) {
    std::string result;
    std::size_t start = 0;
    while (start <= name.size()) {
        const std::size_t end = std::min(name.find('/', start), name.size());
        const std::string_view component = name.substr(start, end - start);
        if (!component.empty() && component != ".") {
            if (!result.empty()) {
                result += '/';
            }
            result += component;
        }
        start = end + 1;
    }
    return result;
}

fs::path canonicalDirectory(const fs::path& dir, std::string_view what) {
    std::error_code ec;
    fs::path canonical = fs::canonical(dir, ec);
    if (ec || !fs::is_directory(canonical, ec)) {
        throw Error(Errc::NotFound, std::string(what) + " " + dir.string() + " is not a directory" +
                                        (ec ? ": " + ec.message() : std::string()));
    }
    return canonical;
}

// Directories that may not exist yet (overlay and trusted roots): resolved as
// far as they exist, so a symlinked parent still compares equal.
fs::path canonicalMaybeMissing(const fs::path& dir) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(fs::absolute(dir, ec), ec);
    return ec ? fs::absolute(dir) : canonical;
}

Lookup refused(std::string reason) {
    Lookup lookup;
    lookup.refusal = std::move(reason);
    return lookup;
}

Lookup served(std::shared_ptr<const void> storage, std::span<const std::uint8_t> bytes,
              std::string origin) {
    Lookup lookup;
    lookup.file = ServedFile{std::move(storage), bytes, std::move(origin)};
    return lookup;
}

// bootfiles.bin as currently indexed. Held by shared_ptr so a reload for a new
// version never pulls bytes from under a board being served the old one.
struct LoadedArchive {
    std::shared_ptr<const Bytes> bytes;
    TarArchive tar;
};

}  // namespace

struct FirmwareSet::Impl {
    // One directory searched with steps 3-5 (the root, then each fallback).
    struct Root {
        fs::path dir;  // canonical
        std::vector<fs::path> allowed;
        bool hasArchive = false;
        mutable std::mutex archiveMutex;
        mutable std::shared_ptr<const LoadedArchive> archive;
    };

    FirmwareSetConfig config;
    std::shared_ptr<FileCache> cache;
    std::vector<std::unique_ptr<Root>> roots;
    std::vector<fs::path> missing;  // roots skipped (config.embedded only)
    fs::path serialOverlayRoot;     // canonical; empty when unset
    std::vector<fs::path> serialAllowed;

    // nullopt: nothing there, try the next source. A Lookup: found, or refused.
    using Step = std::optional<Lookup>;

    Step fromDisk(const fs::path& path, std::span<const fs::path> allowed) const;
    Step fromArchive(const Root& root, const std::string& member) const;
    std::shared_ptr<const LoadedArchive> currentArchive(const Root& root) const;
    Step inRoot(const Root& root, const std::string& name, const BoardContext& board,
                bool isBootcode) const;
    Lookup resolve(std::string_view requested, const BoardContext& board) const;
};

FirmwareSet::Impl::Step FirmwareSet::Impl::fromDisk(const fs::path& path,
                                                    std::span<const fs::path> allowed) const {
    auto opened = openInsideRoots(path, allowed);
    switch (opened.status) {
        case OpenStatus::Missing:
            return std::nullopt;
        case OpenStatus::Refused:
            return refused("refused by the trusted-root rule: " + opened.reason);
        case OpenStatus::Failed:
            return refused(opened.reason);
        case OpenStatus::Opened:
            break;
    }
    std::string origin = path.string();
    if (opened.canonical != path) {
        origin += " -> " + opened.canonical.string();
    }
    try {
        auto bytes = cache->read(opened.fd.get(), origin, config.maxFileSize);
        const std::span<const std::uint8_t> view(bytes->data(), bytes->size());
        return served(std::move(bytes), view, std::move(origin));
    } catch (const Error& error) {
        const std::string rule = error.code() == Errc::TooLarge  ? "size limit: "
                                 : error.code() == Errc::Refused ? "regular-files-only rule: "
                                                                 : "";
        return refused(rule + error.what());
    }
}

std::shared_ptr<const LoadedArchive> FirmwareSet::Impl::currentArchive(const Root& root) const {
    const fs::path path = root.dir / kArchiveName;
    auto opened = openInsideRoots(path, root.allowed);
    if (opened.status == OpenStatus::Missing) {
        return nullptr;  // removed since start-up: like upstream, fall through to the directory
    }
    if (opened.status != OpenStatus::Opened) {
        throw Error(opened.status == OpenStatus::Refused ? Errc::Refused : Errc::Io, opened.reason);
    }
    auto bytes =
        cache->read(opened.fd.get(), path.string(), std::max(config.maxFileSize, kMinArchiveLimit));
    {
        std::lock_guard lock(root.archiveMutex);
        if (root.archive && root.archive->bytes == bytes) {
            return root.archive;
        }
    }
    // A new version: index it outside the lock, then publish it.
    const std::span<const std::uint8_t> view(bytes->data(), bytes->size());
    auto loaded = std::make_shared<const LoadedArchive>(
        LoadedArchive{bytes, TarArchive(view, path.string())});
    std::lock_guard lock(root.archiveMutex);
    root.archive = loaded;
    return loaded;
}

FirmwareSet::Impl::Step FirmwareSet::Impl::fromArchive(const Root& root,
                                                       const std::string& member) const {
    std::shared_ptr<const LoadedArchive> archive;
    try {
        archive = currentArchive(root);
    } catch (const Error& error) {
        return refused(std::string("cannot use the boot set's archive: ") + error.what());
    }
    if (!archive) {
        return std::nullopt;
    }
    const TarMember* found = archive->tar.find(member);
    // A zero-length member falls through to the directory, as upstream does.
    if (found == nullptr || found->size == 0) {
        return std::nullopt;
    }
    if (found->size > config.maxFileSize) {
        return refused("size limit: " + archive->tar.label() + ":" + found->name + " is " +
                       std::to_string(found->size) + " bytes, over the limit of " +
                       std::to_string(config.maxFileSize) + " bytes");
    }
    const auto view = archive->tar.contents(*found);
    std::shared_ptr<const void> storage = archive->bytes;
    return served(std::move(storage), view, archive->tar.label() + ":" + found->name);
}

FirmwareSet::Impl::Step FirmwareSet::Impl::inRoot(const Root& root, const std::string& name,
                                                  const BoardContext& board,
                                                  bool isBootcode) const {
    const std::string chipName = std::string(chipFolder(board.chip)) + "/" + name;
    if (root.hasArchive) {
        if (auto step = fromDisk(root.dir / chipName, root.allowed)) {
            return step;
        }
        if (auto step = fromArchive(root, chipName)) {
            return step;
        }
    }
    if (config.portOverlays && !isBootcode && isSafePathComponent(board.portPath)) {
        if (auto step = fromDisk(root.dir / board.portPath / name, root.allowed)) {
            return step;
        }
    }
    if (!root.hasArchive) {  // with an archive, step 3 already looked there
        if (auto step = fromDisk(root.dir / chipName, root.allowed)) {
            return step;
        }
    }
    return fromDisk(root.dir / name, root.allowed);
}

Lookup FirmwareSet::Impl::resolve(std::string_view requested, const BoardContext& board) const {
    if (auto refusal = requestNameRefusal(requested)) {
        return refused("refused by the request-name rule: " + *refusal);
    }
    // Generated files: "<chip folder>/NAME" first (per-chip images), then NAME.
    auto it =
        config.generated.find(std::string(chipFolder(board.chip)) + "/" + std::string(requested));
    if (it == config.generated.end()) {
        it = config.generated.find(requested);
    }
    if (it != config.generated.end()) {
        Lookup lookup;
        lookup.file = it->second;
        if (lookup.file->origin.empty()) {
            lookup.file->origin = "generated:" + it->first;
        }
        return lookup;
    }
    const std::string name = normaliseName(requested);
    const bool isBootcode = isBootcodeFileName(name);
    if (!serialOverlayRoot.empty() && !isBootcode && isSafePathComponent(board.serial)) {
        if (auto step = fromDisk(serialOverlayRoot / board.serial / name, serialAllowed)) {
            return *step;
        }
    }
    for (const auto& root : roots) {
        if (auto step = inRoot(*root, name, board, isBootcode)) {
            return *step;
        }
    }
    if (config.embedded) {
        if (const EmbeddedFile* file = findEmbeddedFirmware(name)) {
            // Static storage: nothing to keep alive.
            return served(nullptr, file->bytes, "embedded:" + std::string(file->name));
        }
    }
    return Lookup{};
}

FirmwareSet::FirmwareSet(FirmwareSetConfig config, std::shared_ptr<FileCache> cache)
    : impl_(std::make_unique<Impl>()) {
    if (!cache) {
        throw Error(Errc::InvalidArgument, "a firmware set needs a file cache");
    }
    impl_->config = std::move(config);
    impl_->cache = std::move(cache);
    const FirmwareSetConfig& cfg = impl_->config;

    std::vector<fs::path> trusted;
    for (const auto& dir : cfg.trustedRoots) {
        trusted.push_back(canonicalMaybeMissing(dir));
    }
    auto addRoot = [&](const fs::path& dir, std::string_view what) {
        std::error_code ec;
        if (cfg.embedded && (dir.empty() || !fs::is_directory(dir, ec))) {
            if (!dir.empty()) {
                impl_->missing.push_back(dir);
            }
            return;  // the embedded firmware stands in for what it would have held
        }
        auto root = std::make_unique<Impl::Root>();
        root->dir = canonicalDirectory(dir, what);
        root->allowed.push_back(root->dir);
        root->allowed.insert(root->allowed.end(), trusted.begin(), trusted.end());
        root->hasArchive = fs::exists(fs::symlink_status(root->dir / kArchiveName, ec));
        if (root->hasArchive) {
            // Load now so a broken archive is reported at start-up, not per request.
            if (!impl_->currentArchive(*root)) {
                root->hasArchive = false;
            }
        }
        impl_->roots.push_back(std::move(root));
    };
    addRoot(cfg.root, "firmware directory");
    for (const auto& dir : cfg.fallbackRoots) {
        addRoot(dir, "fallback firmware directory");
    }
    if (!cfg.serialOverlayRoot.empty()) {
        impl_->serialOverlayRoot = canonicalMaybeMissing(cfg.serialOverlayRoot);
        impl_->serialAllowed.push_back(impl_->serialOverlayRoot);
        impl_->serialAllowed.insert(impl_->serialAllowed.end(), trusted.begin(), trusted.end());
    }
}

FirmwareSet::~FirmwareSet() = default;

Lookup FirmwareSet::resolve(std::string_view name, const BoardContext& board) const {
    try {
        return impl_->resolve(name, board);
    } catch (const std::exception& error) {
        return refused(std::string("lookup of '") + std::string(name) +
                       "' failed: " + error.what());
    }
}

Lookup FirmwareSet::bootcode(const BoardContext& board) const {
    // Overlays never apply to bootcode names, so this is resolve() by name.
    return resolve(bootcodeFileName(board.chip), board);
}

const FirmwareSetConfig& FirmwareSet::config() const noexcept {
    return impl_->config;
}

const std::vector<std::filesystem::path>& FirmwareSet::missingRoots() const noexcept {
    return impl_->missing;
}

std::string FirmwareSet::searchedPlaces() const {
    std::string places;
    auto add = [&places](const std::string& place) {
        places += (places.empty() ? "" : ", ") + place;
    };
    for (const auto& root : impl_->roots) {
        add(root->dir.string());
    }
    for (const auto& dir : impl_->missing) {
        add(dir.string() + " (missing)");
    }
    if (impl_->config.embedded) {
        add("the embedded firmware (" + embeddedFirmwareNames() + ")");
    }
    return places;
}

}  // namespace rpiboot
