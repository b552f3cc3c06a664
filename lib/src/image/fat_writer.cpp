// Writes a bare FAT12/16/32 boot image in memory (docs/protocol.md §11).
#include "rpiboot/image/fat_writer.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "fat_common.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/image/boot_files.hpp"

namespace rpiboot {

std::string_view toString(FatType type) noexcept {
    switch (type) {
        case FatType::Fat12:
            return "FAT12";
        case FatType::Fat16:
            return "FAT16";
        case FatType::Fat32:
            return "FAT32";
    }
    return "FAT";
}

namespace {

using namespace fat;

struct Node {
    std::string name;
    bool isDir = false;
    const Bytes* data = nullptr;
    std::int64_t mtime = 0;
    bool hasOwnTime = false;
    std::vector<std::unique_ptr<Node>> children;

    // Directory entry of this node in its parent.
    std::uint8_t shortName[11] = {};
    std::uint8_t caseFlags = 0;
    std::u16string longName;  // empty when the 8.3 name says it all
    // Allocation.
    std::uint32_t firstCluster = 0;
    std::uint32_t clusters = 0;
    std::uint64_t dirEntries = 0;  // directories: 32-byte slots used
};

bool isShortNameChar(char c) {
    if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::strchr("!#$%&'()-@^_`{}~", c) != nullptr && c != '\0';
}

char upper(char c) {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

std::string foldCase(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = upper(c);
    }
    return out;
}

// Decodes UTF-8 into UTF-16; InvalidArgument on malformed input.
std::u16string toUtf16(std::string_view s, std::string_view path) {
    std::u16string out;
    for (std::size_t i = 0; i < s.size();) {
        auto b = static_cast<unsigned char>(s[i]);
        std::uint32_t cp = 0;
        std::size_t len = 0;
        if (b < 0x80) {
            cp = b;
            len = 1;
        } else if ((b & 0xe0) == 0xc0) {
            cp = b & 0x1f;
            len = 2;
        } else if ((b & 0xf0) == 0xe0) {
            cp = b & 0x0f;
            len = 3;
        } else if ((b & 0xf8) == 0xf0) {
            cp = b & 0x07;
            len = 4;
        } else {
            len = 0;
        }
        if (len == 0 || i + len > s.size()) {
            throw Error(Errc::InvalidArgument,
                        "the file name " + std::string(path) + " is not valid UTF-8");
        }
        for (std::size_t k = 1; k < len; ++k) {
            auto c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xc0) != 0x80) {
                throw Error(Errc::InvalidArgument,
                            "the file name " + std::string(path) + " is not valid UTF-8");
            }
            cp = (cp << 6) | (c & 0x3f);
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            out.push_back(static_cast<char16_t>(0xd800 + (cp >> 10)));
            out.push_back(static_cast<char16_t>(0xdc00 + (cp & 0x3ff)));
        } else {
            out.push_back(static_cast<char16_t>(cp));
        }
        i += len;
    }
    return out;
}

void checkComponent(std::string_view name, std::string_view path) {
    auto bad = [&](const std::string& why) {
        throw Error(Errc::InvalidArgument,
                    "cannot store " + std::string(path) + " in a FAT image: " + why);
    };
    if (name.empty() || name == "." || name == "..") {
        bad("empty, '.' or '..' path component");
    }
    if (name.back() == '.' || name.back() == ' ') {
        bad("a FAT name cannot end with a dot or a space");
    }
    for (char c : name) {
        if (static_cast<unsigned char>(c) < 0x20 || std::strchr("\"*/:<>?\\|", c) != nullptr) {
            bad(std::string("the character '") + c + "' is not allowed in FAT names");
        }
    }
    if (toUtf16(name, path).size() > 255) {
        bad("the name is longer than 255 characters");
    }
}

// An ASCII name that fits 8.3 with one case per part needs no long-name entries.
bool assignPureShortName(Node& node) {
    const std::string& name = node.name;
    std::size_t dot = name.find('.');
    if (dot != name.rfind('.') || dot == 0) {
        return false;
    }
    std::string_view base = std::string_view(name).substr(0, dot);
    std::string_view ext =
        dot == std::string::npos ? std::string_view{} : std::string_view(name).substr(dot + 1);
    if (base.empty() || base.size() > 8 || ext.size() > 3) {
        return false;
    }
    auto partCase = [](std::string_view part, bool& lower) {
        bool hasLower = false;
        bool hasUpper = false;
        for (char c : part) {
            if (!isShortNameChar(upper(c))) {
                return false;
            }
            hasLower |= (c >= 'a' && c <= 'z');
            hasUpper |= (c >= 'A' && c <= 'Z');
        }
        lower = hasLower;
        return !(hasLower && hasUpper);
    };
    bool baseLower = false;
    bool extLower = false;
    if (!partCase(base, baseLower) || !partCase(ext, extLower)) {
        return false;
    }
    std::memset(node.shortName, ' ', 11);
    for (std::size_t i = 0; i < base.size(); ++i) {
        node.shortName[i] = static_cast<std::uint8_t>(upper(base[i]));
    }
    for (std::size_t i = 0; i < ext.size(); ++i) {
        node.shortName[8 + i] = static_cast<std::uint8_t>(upper(ext[i]));
    }
    node.caseFlags = static_cast<std::uint8_t>((baseLower ? kCaseLowerBase : 0) |
                                               (extLower ? kCaseLowerExt : 0));
    return true;
}

// "bcm2711-rpi-4-b.dtb" -> "BCM271~1DTB" (as 11 bytes), unique within `used`.
void assignAlias(Node& node, std::set<std::string>& used) {
    std::string cleaned;
    for (std::size_t i = 0; i < node.name.size(); ++i) {
        auto b = static_cast<unsigned char>(node.name[i]);
        if (b >= 0x80) {
            if ((b & 0xc0) == 0xc0) {
                cleaned.push_back('_');  // one '_' per non-ASCII character
            }
            continue;
        }
        if (node.name[i] == ' ') {
            continue;
        }
        cleaned.push_back(upper(node.name[i]));
    }
    std::size_t firstNonDot = cleaned.find_first_not_of('.');
    cleaned = firstNonDot == std::string::npos ? std::string() : cleaned.substr(firstNonDot);
    std::size_t lastDot = cleaned.rfind('.');
    std::string base;
    std::string ext;
    for (std::size_t i = 0; i < cleaned.size(); ++i) {
        char c = cleaned[i];
        if (c == '.') {
            continue;
        }
        char s = isShortNameChar(c) ? c : '_';
        if (lastDot != std::string::npos && i > lastDot) {
            if (ext.size() < 3) {
                ext.push_back(s);
            }
        } else {
            base.push_back(s);
        }
    }
    if (base.empty()) {
        base.push_back('_');  // not `base = "_"`: GCC 12 -O3 warns -Wrestrict (GCC bug 105329)
    }
    // The 8.3 name is composed in a fixed 11-byte field ("BASE~N  EXT"); the
    // lengths are bounded here, so every copy has a size known to fit.
    const std::size_t extLength = std::min<std::size_t>(ext.size(), 3);
    for (std::uint32_t n = 1; n < 1000000; ++n) {
        const std::string number = std::to_string(n);  // at most 6 digits
        const std::size_t keep = std::min<std::size_t>(base.size(), 8 - 1 - number.size());
        std::array<char, 11> field;
        field.fill(' ');
        std::copy_n(base.begin(), keep, field.begin());
        field[keep] = '~';
        std::copy_n(number.begin(), number.size(),
                    field.begin() + static_cast<std::ptrdiff_t>(keep) + 1);
        std::copy_n(ext.begin(), extLength, field.begin() + 8);
        std::string key(field.data(), keep + 1 + number.size());
        key += '.';
        key.append(ext, 0, extLength);
        if (used.insert(key).second) {
            std::memcpy(node.shortName, field.data(), field.size());
            return;
        }
    }
    throw Error(Errc::TooLarge, "too many similar names next to " + node.name);
}

std::string shortKey(const std::uint8_t* sn) {
    std::string base(reinterpret_cast<const char*>(sn), 8);
    std::string ext(reinterpret_cast<const char*>(sn + 8), 3);
    base.erase(base.find_last_not_of(' ') + 1);
    ext.erase(ext.find_last_not_of(' ') == std::string::npos ? 0 : ext.find_last_not_of(' ') + 1);
    return base + "." + ext;
}

void assignNames(Node& dir, const std::string& path) {
    std::set<std::string> used;
    for (auto& child : dir.children) {
        if (assignPureShortName(*child)) {
            used.insert(shortKey(child->shortName));
        }
    }
    for (auto& child : dir.children) {
        if (child->shortName[0] == 0) {
            child->longName = toUtf16(child->name, path + child->name);
            assignAlias(*child, used);
        }
    }
}

std::uint64_t lfnEntries(const Node& node) {
    return (node.longName.size() + kLfnCharsPerEntry - 1) / kLfnCharsPerEntry;
}

Node& childDir(Node& parent, std::string_view name, const std::string& path) {
    for (auto& c : parent.children) {
        if (foldCase(c->name) == foldCase(name)) {
            if (!c->isDir) {
                throw Error(Errc::InvalidArgument,
                            path + " is both a file and a directory in the boot image");
            }
            return *c;
        }
    }
    auto node = std::make_unique<Node>();
    node->name = std::string(name);
    node->isDir = true;
    parent.children.push_back(std::move(node));
    return *parent.children.back();
}

std::unique_ptr<Node> buildTree(const std::vector<BootFile>& files) {
    auto root = std::make_unique<Node>();
    root->isDir = true;
    for (const auto& f : files) {
        std::vector<std::string_view> parts;
        std::string_view rest = f.path;
        while (!rest.empty()) {
            std::size_t slash = rest.find('/');
            parts.push_back(rest.substr(0, slash));
            rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        }
        if (parts.empty()) {
            throw Error(Errc::InvalidArgument, "a boot image entry has an empty path");
        }
        Node* dir = root.get();
        std::string prefix;
        for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
            checkComponent(parts[i], f.path);
            prefix += std::string(parts[i]) + "/";
            dir = &childDir(*dir, parts[i], prefix);
        }
        checkComponent(parts.back(), f.path);
        if (f.isDirectory) {
            Node& d = childDir(*dir, parts.back(), f.path);
            d.mtime = f.mtime;
            d.hasOwnTime = true;
            continue;
        }
        for (auto& c : dir->children) {
            if (foldCase(c->name) == foldCase(parts.back())) {
                throw Error(Errc::InvalidArgument,
                            f.path + " appears twice in the boot image (FAT names ignore case)");
            }
        }
        if (f.data.size() > 0xffffffffu) {
            throw Error(Errc::TooLarge, f.path + " is larger than the 4 GiB a FAT file can hold");
        }
        auto node = std::make_unique<Node>();
        node->name = std::string(parts.back());
        node->data = &f.data;
        node->mtime = f.mtime;
        node->hasOwnTime = true;
        dir->children.push_back(std::move(node));
    }
    return root;
}

// Sorts, names and sizes every directory; returns the clusters all contents need.
std::uint64_t prepare(Node& dir, const std::string& path, bool isRoot, std::uint64_t clusterBytes,
                      bool rootInData) {
    std::sort(dir.children.begin(), dir.children.end(),
              [](const auto& a, const auto& b) { return a->name < b->name; });
    assignNames(dir, path);
    std::uint64_t clusters = 0;
    std::uint64_t entries = isRoot ? 1 : 2;  // volume label, or "." and ".."
    std::int64_t newest = 0;
    for (auto& child : dir.children) {
        entries += 1 + lfnEntries(*child);
        if (child->isDir) {
            clusters += prepare(*child, path + child->name + "/", false, clusterBytes, true);
        } else {
            child->clusters =
                static_cast<std::uint32_t>((child->data->size() + clusterBytes - 1) / clusterBytes);
            clusters += child->clusters;
        }
        newest = std::max(newest, child->mtime);
    }
    if (!dir.hasOwnTime) {
        dir.mtime = newest;
    }
    dir.dirEntries = entries;
    if (!isRoot || rootInData) {
        dir.clusters = static_cast<std::uint32_t>(std::max<std::uint64_t>(
            1, (entries * kDirEntrySize + clusterBytes - 1) / clusterBytes));
        clusters += dir.clusters;
    }
    return clusters;
}

struct Layout {
    FatType type = FatType::Fat12;
    std::uint32_t reserved = 1;
    std::uint32_t fatSectors = 0;
    std::uint32_t rootSectors = 0;
    std::uint32_t clusters = 0;
    std::uint64_t totalSectors = 0;
};

std::uint32_t minClusters(FatType t) {
    return t == FatType::Fat12 ? 1 : t == FatType::Fat16 ? kMinClustersFat16 : kMinClustersFat32;
}
std::uint32_t maxClusters(FatType t) {
    return t == FatType::Fat12   ? kMaxClustersFat12
           : t == FatType::Fat16 ? kMaxClustersFat16
                                 : kMaxClustersFat32;
}

std::uint32_t fatSectorsFor(std::uint64_t clusters, FatType t, std::uint32_t sectorSize) {
    std::uint64_t entries = clusters + 2;
    std::uint64_t bytes = t == FatType::Fat12   ? (entries * 3 + 1) / 2
                          : t == FatType::Fat16 ? entries * 2
                                                : entries * 4;
    return static_cast<std::uint32_t>((bytes + sectorSize - 1) / sectorSize);
}

Layout baseLayout(FatType t, const BootImageOptions& o) {
    Layout l;
    l.type = t;
    l.reserved = t == FatType::Fat32 ? 32 : 1;
    l.rootSectors = t == FatType::Fat32
                        ? 0
                        : static_cast<std::uint32_t>(
                              (std::uint64_t{o.rootDirEntries} * kDirEntrySize + o.sectorSize - 1) /
                              o.sectorSize);
    return l;
}

// Exact layout holding `clusters` data clusters.
Layout layoutForClusters(FatType t, std::uint32_t clusters, const BootImageOptions& o) {
    Layout l = baseLayout(t, o);
    l.clusters = clusters;
    l.fatSectors = fatSectorsFor(clusters, t, o.sectorSize);
    l.totalSectors = std::uint64_t{l.reserved} + l.fatSectors + l.rootSectors +
                     std::uint64_t{clusters} * o.sectorsPerCluster;
    return l;
}

// Largest layout fitting `totalSectors`; nullopt if the FAT width cannot describe it.
std::optional<Layout> layoutForTotal(FatType t, std::uint64_t totalSectors,
                                     const BootImageOptions& o) {
    Layout l = baseLayout(t, o);
    l.totalSectors = totalSectors;
    std::uint32_t fat = 1;
    for (int i = 0; i < 64; ++i) {
        std::uint64_t meta = std::uint64_t{l.reserved} + fat + l.rootSectors;
        if (meta >= totalSectors) {
            return std::nullopt;
        }
        std::uint64_t clusters = (totalSectors - meta) / o.sectorsPerCluster;
        if (clusters > maxClusters(t)) {
            return std::nullopt;
        }
        std::uint32_t need = fatSectorsFor(clusters, t, o.sectorSize);
        if (need <= fat) {
            l.fatSectors = fat;
            l.clusters = static_cast<std::uint32_t>(clusters);
            if (l.clusters < minClusters(t)) {
                return std::nullopt;
            }
            return l;
        }
        fat = need;
    }
    return std::nullopt;
}

Layout chooseLayout(std::uint64_t neededClusters, const BootImageOptions& o) {
    const std::uint64_t clusterBytes = std::uint64_t{o.sectorSize} * o.sectorsPerCluster;
    std::vector<FatType> candidates =
        o.fatType ? std::vector<FatType>{*o.fatType}
                  : std::vector<FatType>{FatType::Fat12, FatType::Fat16, FatType::Fat32};
    if (o.imageSizeKiB) {
        std::uint64_t total = *o.imageSizeKiB * 1024 / o.sectorSize;
        for (FatType t : candidates) {
            if (auto l = layoutForTotal(t, total, o)) {
                if (l->clusters < neededClusters) {
                    throw Error(
                        Errc::TooLarge,
                        "the files need " + std::to_string(neededClusters * clusterBytes / 1024) +
                            " KiB of clusters but a " + std::to_string(*o.imageSizeKiB) + " KiB " +
                            std::string(toString(t)) + " image holds only " +
                            std::to_string(std::uint64_t{l->clusters} * clusterBytes / 1024) +
                            " KiB");
                }
                return *l;
            }
        }
        throw Error(Errc::InvalidArgument,
                    "no FAT layout fits an image of " + std::to_string(*o.imageSizeKiB) + " KiB" +
                        (o.fatType ? " as " + std::string(toString(*o.fatType)) : std::string()) +
                        " with " + std::to_string(clusterBytes) +
                        "-byte clusters; choose another size or FAT type");
    }
    std::uint64_t overhead =
        (std::uint64_t{o.fatOverheadKiB} * 1024 + clusterBytes - 1) / clusterBytes;
    std::uint64_t target = std::max<std::uint64_t>(1, neededClusters + overhead);
    for (FatType t : candidates) {
        std::uint64_t clusters = std::max<std::uint64_t>(target, minClusters(t));
        if (clusters <= maxClusters(t)) {
            return layoutForClusters(t, static_cast<std::uint32_t>(clusters), o);
        }
    }
    throw Error(Errc::TooLarge,
                "the files need " + std::to_string(target) + " clusters, more than " +
                    std::string(toString(candidates.back())) + " can address with " +
                    std::to_string(clusterBytes) + "-byte clusters");
}

void validateOptions(const BootImageOptions& o) {
    auto bad = [](const std::string& why) { throw Error(Errc::InvalidArgument, why); };
    if (o.sectorSize != 512 && o.sectorSize != 1024 && o.sectorSize != 2048 &&
        o.sectorSize != 4096) {
        bad("sector size " + std::to_string(o.sectorSize) + " is not 512, 1024, 2048 or 4096");
    }
    if (o.sectorsPerCluster == 0 || o.sectorsPerCluster > 128 ||
        (o.sectorsPerCluster & (o.sectorsPerCluster - 1)) != 0) {
        bad("sectors per cluster " + std::to_string(o.sectorsPerCluster) +
            " is not a power of two from 1 to 128");
    }
    if (o.rootDirEntries == 0 || o.rootDirEntries > 65535 ||
        (o.rootDirEntries * kDirEntrySize) % o.sectorSize != 0) {
        bad("root directory entries " + std::to_string(o.rootDirEntries) +
            " must fill whole sectors (a multiple of " + std::to_string(o.sectorSize / 32) +
            ") and be at most 65535");
    }
    if (o.volumeLabel.size() > 11) {
        bad("volume label '" + o.volumeLabel + "' is longer than 11 characters");
    }
    for (char c : o.volumeLabel) {
        if (c != ' ' && !isShortNameChar(upper(c))) {
            bad("volume label '" + o.volumeLabel + "' has the character '" + c +
                "', which FAT labels do not allow");
        }
    }
    if (o.heads == 0 || o.sectorsPerTrack == 0) {
        bad("disk geometry heads/sectors per track must be at least 1/1");
    }
}

std::pair<std::uint16_t, std::uint16_t> dosDateTime(std::int64_t unixTime) {
    // 1980-01-01 to 2107-12-31 23:59:58 is all a FAT entry can say.
    constexpr std::int64_t kMin = 315532800;
    constexpr std::int64_t kMax = 4354819198;
    std::time_t t = static_cast<std::time_t>(std::clamp(unixTime, kMin, kMax));
    std::tm tm{};
    gmtime_r(&t, &tm);
    auto date =
        static_cast<std::uint16_t>(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
    auto time = static_cast<std::uint16_t>((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
    return {date, time};
}

class ImageWriter {
  public:
    ImageWriter(const BootImageOptions& o, const Layout& l, std::uint32_t volumeId)
        : o_(o), l_(l), volumeId_(volumeId) {
        clusterBytes_ = std::uint64_t{o.sectorSize} * o.sectorsPerCluster;
        image_.assign(l.totalSectors * o.sectorSize, 0);
        fatOffset_ = std::uint64_t{l.reserved} * o.sectorSize;
        rootOffset_ = fatOffset_ + std::uint64_t{l.fatSectors} * o.sectorSize;
        dataOffset_ = rootOffset_ + std::uint64_t{l.rootSectors} * o.sectorSize;
    }

    Bytes finish(Node& root) {
        allocate(root);
        writeBootSector();
        setFat(0, (fatEnd() & ~0xffu) | kMediaFixed);
        setFat(1, fatEnd());
        writeDirectory(root, 0, true);
        return std::move(image_);
    }

  private:
    std::uint32_t fatEnd() const {
        return l_.type == FatType::Fat12 ? 0xfff : l_.type == FatType::Fat16 ? 0xffff : 0x0fffffff;
    }

    std::uint64_t clusterOffset(std::uint32_t c) const {
        return dataOffset_ + std::uint64_t{c - 2} * clusterBytes_;
    }

    void setFat(std::uint32_t index, std::uint32_t value) {
        std::uint8_t* fat = image_.data() + fatOffset_;
        switch (l_.type) {
            case FatType::Fat12: {
                std::size_t at = index + index / 2;
                if (index & 1) {
                    fat[at] = static_cast<std::uint8_t>((fat[at] & 0x0f) | ((value << 4) & 0xf0));
                    fat[at + 1] = static_cast<std::uint8_t>(value >> 4);
                } else {
                    fat[at] = static_cast<std::uint8_t>(value);
                    fat[at + 1] =
                        static_cast<std::uint8_t>((fat[at + 1] & 0xf0) | ((value >> 8) & 0x0f));
                }
                break;
            }
            case FatType::Fat16:
                put16(fat + std::size_t{index} * 2, value);
                break;
            case FatType::Fat32:
                put32(fat + std::size_t{index} * 4, value & 0x0fffffff);
                break;
        }
    }

    std::uint32_t takeChain(std::uint32_t count) {
        if (count == 0) {
            return 0;
        }
        std::uint32_t first = next_;
        for (std::uint32_t i = 0; i < count; ++i) {
            setFat(first + i, i + 1 == count ? fatEnd() : first + i + 1);
        }
        next_ += count;
        return first;
    }

    void allocate(Node& root) {
        if (l_.type == FatType::Fat32) {
            root.firstCluster = takeChain(root.clusters);
        }
        std::deque<Node*> dirs{&root};
        while (!dirs.empty()) {
            Node* dir = dirs.front();
            dirs.pop_front();
            for (auto& child : dir->children) {
                child->firstCluster = takeChain(child->clusters);
                if (child->isDir) {
                    dirs.push_back(child.get());
                } else if (!child->data->empty()) {
                    std::memcpy(image_.data() + clusterOffset(child->firstCluster),
                                child->data->data(), child->data->size());
                }
            }
        }
    }

    void writeEntry(std::uint8_t* e, const std::uint8_t* name, std::uint8_t attr,
                    std::uint8_t caseFlags, std::uint32_t cluster, std::uint32_t size,
                    std::int64_t mtime) {
        std::memcpy(e, name, 11);
        e[11] = attr;
        e[12] = caseFlags;
        auto [date, time] = dosDateTime(o_.timestamp.value_or(mtime));
        put16(e + 14, time);
        put16(e + 16, date);
        put16(e + 18, date);
        put16(e + 20, cluster >> 16);
        put16(e + 22, time);
        put16(e + 24, date);
        put16(e + 26, cluster & 0xffff);
        put32(e + 28, size);
    }

    void writeLongName(std::uint8_t*& e, const Node& node) {
        std::uint8_t sum = lfnChecksum(node.shortName);
        std::uint64_t count = lfnEntries(node);
        for (std::uint64_t k = count; k >= 1; --k) {
            e[0] = static_cast<std::uint8_t>(k | (k == count ? kLfnLast : 0));
            e[11] = kAttrLongName;
            e[12] = 0;
            e[13] = sum;
            put16(e + 26, 0);
            for (std::size_t j = 0; j < kLfnCharsPerEntry; ++j) {
                std::size_t idx = (k - 1) * kLfnCharsPerEntry + j;
                std::uint16_t ch = idx < node.longName.size()    ? node.longName[idx]
                                   : idx == node.longName.size() ? 0x0000
                                                                 : 0xffff;
                put16(e + kLfnCharOffsets[j], ch);
            }
            e += kDirEntrySize;
        }
    }

    void writeDirectory(Node& dir, std::uint32_t parentCluster, bool isRoot) {
        std::uint8_t* e =
            image_.data() +
            (isRoot && l_.type != FatType::Fat32 ? rootOffset_ : clusterOffset(dir.firstCluster));
        if (isRoot) {
            std::uint8_t label[11];
            std::memset(label, ' ', 11);
            for (std::size_t i = 0; i < o_.volumeLabel.size(); ++i) {
                label[i] = static_cast<std::uint8_t>(upper(o_.volumeLabel[i]));
            }
            writeEntry(e, label, kAttrVolumeId, 0, 0, 0, dir.mtime);
            e += kDirEntrySize;
        } else {
            std::uint8_t dot[11];
            std::memset(dot, ' ', 11);
            dot[0] = '.';
            writeEntry(e, dot, kAttrDirectory, 0, dir.firstCluster, 0, dir.mtime);
            e += kDirEntrySize;
            dot[1] = '.';
            writeEntry(e, dot, kAttrDirectory, 0, parentCluster, 0, dir.mtime);
            e += kDirEntrySize;
        }
        for (auto& child : dir.children) {
            if (!child->longName.empty()) {
                writeLongName(e, *child);
            }
            auto size = child->isDir ? 0u : static_cast<std::uint32_t>(child->data->size());
            writeEntry(e, child->shortName, child->isDir ? kAttrDirectory : kAttrArchive,
                       child->caseFlags, child->firstCluster, size, child->mtime);
            e += kDirEntrySize;
        }
        // ".." of a directory directly under the root points at cluster 0, even on FAT32.
        std::uint32_t self = isRoot ? 0 : dir.firstCluster;
        for (auto& child : dir.children) {
            if (child->isDir) {
                writeDirectory(*child, self, false);
            }
        }
    }

    void writeBootSector() {
        std::uint8_t* b = image_.data();
        const bool fat32 = l_.type == FatType::Fat32;
        b[0] = 0xeb;
        b[1] = fat32 ? 0x58 : 0x3c;
        b[2] = 0x90;
        static constexpr std::uint8_t kOemName[8] = {'r', 'p', 'i', 'b', 'o', 'o', 't', 'd'};
        std::memcpy(b + 3, kOemName, sizeof kOemName);
        put16(b + 11, o_.sectorSize);
        b[13] = static_cast<std::uint8_t>(o_.sectorsPerCluster);
        put16(b + 14, l_.reserved);
        b[16] = 1;  // one FAT, as make-boot-image does
        put16(b + 17, fat32 ? 0 : o_.rootDirEntries);
        bool small = !fat32 && l_.totalSectors < 0x10000;
        put16(b + 19, small ? static_cast<std::uint32_t>(l_.totalSectors) : 0);
        b[21] = kMediaFixed;
        put16(b + 22, fat32 ? 0 : l_.fatSectors);
        put16(b + 24, o_.sectorsPerTrack);
        put16(b + 26, o_.heads);
        put32(b + 28, 0);
        put32(b + 32, small ? 0 : static_cast<std::uint32_t>(l_.totalSectors));
        std::uint8_t* ext = b + 36;
        if (fat32) {
            put32(b + 36, l_.fatSectors);
            put16(b + 40, 0);
            put16(b + 42, 0);
            put32(b + 44, 2);  // root directory cluster
            put16(b + 48, 1);  // FSInfo sector
            put16(b + 50, 6);  // backup boot sector
            ext = b + 64;
        }
        ext[0] = 0x80;  // drive number
        ext[2] = 0x29;  // extended boot signature
        put32(ext + 3, volumeId_);
        std::memset(ext + 7, ' ', 11);
        for (std::size_t i = 0; i < o_.volumeLabel.size(); ++i) {
            ext[7 + i] = static_cast<std::uint8_t>(upper(o_.volumeLabel[i]));
        }
        std::string type = std::string(toString(l_.type)) + "   ";
        std::memcpy(ext + 18, type.data(), 8);
        // Boot code: halt forever if anything ever jumps here.
        std::uint8_t* code = ext + 26;
        code[0] = 0xf4;  // hlt
        code[1] = 0xeb;  // jmp $-3
        code[2] = 0xfd;
        b[510] = 0x55;
        b[511] = 0xaa;
        if (fat32) {
            std::uint8_t* info = b + o_.sectorSize;
            put32(info, 0x41615252);
            put32(info + 484, 0x61417272);
            put32(info + 488, l_.clusters + 2 - next_);  // free clusters
            put32(info + 492, next_);                    // next free cluster hint
            put32(info + 508, 0xaa550000);
            std::memcpy(b + std::size_t{6} * o_.sectorSize, b, std::size_t{2} * o_.sectorSize);
        }
    }

    const BootImageOptions& o_;
    Layout l_;
    std::uint32_t volumeId_;
    std::uint64_t clusterBytes_ = 0;
    Bytes image_;
    std::uint64_t fatOffset_ = 0;
    std::uint64_t rootOffset_ = 0;
    std::uint64_t dataOffset_ = 0;
    std::uint32_t next_ = 2;
};

// A reproducible serial number: FNV-1a over the names, times and contents.
std::uint32_t contentVolumeId(const std::vector<BootFile>& files, const BootImageOptions& o) {
    std::uint32_t h = 2166136261u;
    auto mix = [&h](const void* p, std::size_t n) {
        const auto* c = static_cast<const std::uint8_t*>(p);
        for (std::size_t i = 0; i < n; ++i) {
            h = (h ^ c[i]) * 16777619u;
        }
    };
    for (const auto& f : files) {
        mix(f.path.data(), f.path.size());
        std::int64_t t = o.timestamp.value_or(f.mtime);
        mix(&t, sizeof t);
        mix(f.data.data(), f.data.size());
    }
    return h;
}

}  // namespace

Bytes buildFatImage(const std::vector<BootFile>& files, const BootImageOptions& options) {
    validateOptions(options);
    auto root = buildTree(files);
    const std::uint64_t clusterBytes =
        std::uint64_t{options.sectorSize} * options.sectorsPerCluster;
    // FAT32 keeps its root directory in clusters: count them in case that is the
    // width chosen (on FAT12/16 they are simply extra free space).
    std::uint64_t needed = prepare(*root, "", true, clusterBytes, false);
    std::uint64_t rootClusters = std::max<std::uint64_t>(
        1, (root->dirEntries * kDirEntrySize + clusterBytes - 1) / clusterBytes);
    Layout layout = chooseLayout(needed + rootClusters, options);
    if (layout.type != FatType::Fat32 && root->dirEntries > options.rootDirEntries) {
        throw Error(Errc::TooLarge,
                    "the root directory needs " + std::to_string(root->dirEntries) +
                        " entries but holds " + std::to_string(options.rootDirEntries) +
                        "; raise the root directory entries or move files into a folder");
    }
    if (layout.type == FatType::Fat32) {
        root->clusters = static_cast<std::uint32_t>(rootClusters);
    }
    std::uint32_t volumeId = options.volumeId.value_or(contentVolumeId(files, options));
    ImageWriter writer(options, layout, volumeId);
    return writer.finish(*root);
}

}  // namespace rpiboot
