// Reads FAT12/16/32 images in memory, trusting no number they contain.
#include "rpiboot/image/fat_reader.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <string>

#include "fat_common.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/image/fat_writer.hpp"

namespace rpiboot {

namespace {

using namespace fat;

// Directory trees deeper than this are treated as a loop made by a corrupt image.
constexpr int kMaxDepth = 64;

char lowerAscii(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool sameName(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lowerAscii(a[i]) != lowerAscii(b[i])) {
            return false;
        }
    }
    return true;
}

void appendUtf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
        out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
}

std::string utf16ToUtf8(const std::u16string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        std::uint32_t cp = s[i];
        if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < s.size() && s[i + 1] >= 0xdc00 &&
            s[i + 1] < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (s[i + 1] - 0xdc00u);
            ++i;
        }
        appendUtf8(out, cp);
    }
    return out;
}

std::int64_t fromDos(std::uint16_t date, std::uint16_t time) {
    std::tm tm{};
    tm.tm_year = 80 + (date >> 9);
    tm.tm_mon = std::max(0, ((date >> 5) & 0x0f) - 1);
    tm.tm_mday = std::max(1, date & 0x1f);
    tm.tm_hour = time >> 11;
    tm.tm_min = (time >> 5) & 0x3f;
    tm.tm_sec = (time & 0x1f) * 2;
    return static_cast<std::int64_t>(timegm(&tm));
}

// A name that could climb out of, or split, a path built from it.
bool isUnsafeName(std::string_view name) {
    return name.empty() || name == "." || name == ".." ||
           name.find_first_of(std::string_view("/\\\0", 3)) != std::string_view::npos;
}

std::string trimRight(std::string s) {
    s.erase(s.find_last_not_of(' ') == std::string::npos ? 0 : s.find_last_not_of(' ') + 1);
    return s;
}

}  // namespace

FatReader::FatReader(ByteView image, std::string origin)
    : image_(image), origin_(std::move(origin)) {
    auto notFat = [this](const std::string& why) {
        throw Error(Errc::Corrupt, origin_ + " is not a FAT image: " + why);
    };
    if (image_.size() < 512) {
        notFat("it is only " + std::to_string(image_.size()) + " bytes");
    }
    const std::uint8_t* b = image_.data();
    if (b[510] != 0x55 || b[511] != 0xaa) {
        notFat("its first sector does not end with the 55 AA boot signature");
    }
    Info& i = info_;
    i.sectorSize = le16(b + 11);
    i.sectorsPerCluster = b[13];
    i.reservedSectors = le16(b + 14);
    i.fatCount = b[16];
    i.rootDirEntries = le16(b + 17);
    std::uint32_t total16 = le16(b + 19);
    std::uint32_t fat16 = le16(b + 22);
    std::uint32_t total32 = le32(b + 32);
    std::uint32_t fat32 = le32(b + 36);
    if (i.sectorSize != 512 && i.sectorSize != 1024 && i.sectorSize != 2048 &&
        i.sectorSize != 4096) {
        notFat("bytes per sector is " + std::to_string(i.sectorSize));
    }
    if (i.sectorsPerCluster == 0 || (i.sectorsPerCluster & (i.sectorsPerCluster - 1)) != 0) {
        notFat("sectors per cluster is " + std::to_string(i.sectorsPerCluster));
    }
    if (i.reservedSectors == 0 || i.fatCount == 0) {
        notFat("it has no reserved sector or no FAT");
    }
    i.totalSectors = total16 != 0 ? total16 : total32;
    i.fatSectors = fat16 != 0 ? fat16 : fat32;
    if (i.totalSectors == 0 || i.fatSectors == 0) {
        notFat("its sector counts are zero");
    }
    if (i.totalSectors * i.sectorSize > image_.size()) {
        throw Error(Errc::Corrupt, origin_ + " is truncated: its boot sector describes " +
                                       std::to_string(i.totalSectors * i.sectorSize) +
                                       " bytes but the image has " + std::to_string(image_.size()));
    }
    std::uint64_t rootSectors =
        (std::uint64_t{i.rootDirEntries} * kDirEntrySize + i.sectorSize - 1) / i.sectorSize;
    std::uint64_t dataStart =
        i.reservedSectors + std::uint64_t{i.fatCount} * i.fatSectors + rootSectors;
    if (dataStart >= i.totalSectors) {
        notFat("its FATs and root directory leave no room for data");
    }
    std::uint64_t clusters = (i.totalSectors - dataStart) / i.sectorsPerCluster;
    if (clusters > kMaxClustersFat32) {
        notFat("it claims " + std::to_string(clusters) + " clusters");
    }
    i.clusterCount = static_cast<std::uint32_t>(clusters);
    // The width follows from the cluster count alone (Microsoft's rule).
    i.type = clusters < 4085 ? FatType::Fat12 : clusters < 65525 ? FatType::Fat16 : FatType::Fat32;
    const std::uint8_t* ext = b + 36;
    if (i.type == FatType::Fat32) {
        if (fat16 != 0 || i.rootDirEntries != 0) {
            notFat("it has FAT32's cluster count but a FAT12/16 boot sector");
        }
        rootCluster_ = le32(b + 44);
        ext = b + 64;
    } else if (fat16 == 0) {
        notFat("it has a FAT32 boot sector but only " + std::to_string(clusters) + " clusters");
    }
    std::uint64_t fatBytes = std::uint64_t{i.fatSectors} * i.sectorSize;
    std::uint64_t needBytes = i.type == FatType::Fat12   ? (std::uint64_t{clusters} + 2) * 3 / 2
                              : i.type == FatType::Fat16 ? (std::uint64_t{clusters} + 2) * 2
                                                         : (std::uint64_t{clusters} + 2) * 4;
    if (fatBytes < needBytes) {
        // Clusters the FAT cannot describe are unusable; only use the ones it can.
        std::uint64_t describable = i.type == FatType::Fat12   ? fatBytes * 2 / 3
                                    : i.type == FatType::Fat16 ? fatBytes / 2
                                                               : fatBytes / 4;
        i.clusterCount = static_cast<std::uint32_t>(describable > 2 ? describable - 2 : 0);
    }
    if (ext[2] == 0x29 || ext[2] == 0x28) {
        i.volumeId = le32(ext + 3);
    }
    if (ext[2] == 0x29) {
        i.volumeLabel = trimRight(std::string(reinterpret_cast<const char*>(ext + 7), 11));
    }
    fatOffset_ = std::uint64_t{i.reservedSectors} * i.sectorSize;
    rootOffset_ = fatOffset_ + std::uint64_t{i.fatCount} * i.fatSectors * i.sectorSize;
    dataOffset_ = dataStart * i.sectorSize;
}

std::uint32_t FatReader::nextCluster(std::uint32_t cluster, std::string_view what) const {
    const std::uint8_t* fat = image_.data() + fatOffset_;
    const std::uint64_t fatBytes = std::uint64_t{info_.fatSectors} * info_.sectorSize;
    const std::uint64_t entryEnd = info_.type == FatType::Fat12   ? cluster + cluster / 2 + 2
                                   : info_.type == FatType::Fat16 ? std::uint64_t{cluster} * 2 + 2
                                                                  : std::uint64_t{cluster} * 4 + 4;
    if (entryEnd > fatBytes) {
        throw Error(Errc::Corrupt, origin_ + " is corrupted: cluster " + std::to_string(cluster) +
                                       " of " + std::string(what) + " lies beyond its FAT");
    }
    std::uint32_t v = 0;
    std::uint32_t eoc = 0;
    std::uint32_t bad = 0;
    switch (info_.type) {
        case FatType::Fat12: {
            std::size_t at = cluster + cluster / 2;
            std::uint32_t pair = le16(fat + at);
            v = (cluster & 1) ? pair >> 4 : pair & 0x0fff;
            eoc = 0xff8;
            bad = 0xff7;
            break;
        }
        case FatType::Fat16:
            v = le16(fat + std::size_t{cluster} * 2);
            eoc = 0xfff8;
            bad = 0xfff7;
            break;
        case FatType::Fat32:
            v = le32(fat + std::size_t{cluster} * 4) & 0x0fffffff;
            eoc = 0x0ffffff8;
            bad = 0x0ffffff7;
            break;
    }
    if (v >= eoc) {
        return 0;
    }
    if (v < 2 || v == bad || v >= info_.clusterCount + 2) {
        throw Error(Errc::Corrupt, origin_ + " is corrupted: the cluster chain of " +
                                       std::string(what) + " is broken at cluster " +
                                       std::to_string(cluster));
    }
    return v;
}

Bytes FatReader::readChain(std::uint32_t firstCluster, std::uint64_t bytes,
                           std::string_view what) const {
    // `bytes` == UINT64_MAX reads the whole chain (directories have no recorded size).
    const bool wholeChain = bytes == UINT64_MAX;
    const std::uint64_t clusterBytes = std::uint64_t{info_.sectorSize} * info_.sectorsPerCluster;
    Bytes out;
    std::vector<bool> visited(std::size_t{info_.clusterCount} + 2);
    std::uint32_t cluster = firstCluster;
    while (cluster != 0 && out.size() < bytes) {
        if (cluster < 2 || cluster >= info_.clusterCount + 2 || visited[cluster]) {
            throw Error(Errc::Corrupt, origin_ + " is corrupted: the cluster chain of " +
                                           std::string(what) + " leaves the data area or loops");
        }
        visited[cluster] = true;
        std::uint64_t at = dataOffset_ + std::uint64_t{cluster - 2} * clusterBytes;
        std::uint64_t take = std::min(clusterBytes, bytes - out.size());
        out.insert(out.end(), image_.begin() + static_cast<std::ptrdiff_t>(at),
                   image_.begin() + static_cast<std::ptrdiff_t>(at + take));
        cluster = nextCluster(cluster, what);
    }
    if (!wholeChain && out.size() < bytes) {
        throw Error(Errc::Corrupt, origin_ + " is corrupted: " + std::string(what) + " is " +
                                       std::to_string(bytes) + " bytes but its clusters hold " +
                                       std::to_string(out.size()));
    }
    return out;
}

std::vector<FatReader::Entry> FatReader::readDirectory(std::uint32_t firstCluster, bool isRoot,
                                                       std::string_view path) const {
    Bytes raw;
    const std::string what =
        path.empty() ? std::string("the root directory") : "the directory " + std::string(path);
    if (isRoot && info_.type != FatType::Fat32) {
        auto begin = image_.begin() + static_cast<std::ptrdiff_t>(rootOffset_);
        raw.assign(begin, begin + static_cast<std::ptrdiff_t>(std::uint64_t{info_.rootDirEntries} *
                                                              kDirEntrySize));
    } else {
        // A directory has no recorded size: read its whole chain (bounded by the cluster count).
        raw = readChain(firstCluster, UINT64_MAX, what);
    }
    std::vector<Entry> entries;
    std::u16string longName;
    int expectedOrdinal = 0;
    std::uint8_t longSum = 0;
    for (std::size_t off = 0; off + kDirEntrySize <= raw.size(); off += kDirEntrySize) {
        const std::uint8_t* e = raw.data() + off;
        if (e[0] == 0x00) {
            break;
        }
        if (e[0] == 0xe5) {
            expectedOrdinal = 0;
            continue;
        }
        std::uint8_t attr = e[11];
        if ((attr & 0x3f) == kAttrLongName) {
            // Long-name entries come last-part first, counting down to 1.
            int ordinal = e[0] & 0x3f;
            if (e[0] & kLfnLast) {
                longName.assign(std::size_t(ordinal) * kLfnCharsPerEntry, u'\0');
                expectedOrdinal = ordinal;
                longSum = e[13];
            }
            if (ordinal == 0 || ordinal != expectedOrdinal || e[13] != longSum) {
                expectedOrdinal = 0;  // out of sequence: fall back to the short name
                continue;
            }
            for (std::size_t j = 0; j < kLfnCharsPerEntry; ++j) {
                longName[std::size_t(ordinal - 1) * kLfnCharsPerEntry + j] =
                    static_cast<char16_t>(le16(e + kLfnCharOffsets[j]));
            }
            expectedOrdinal = ordinal == 1 ? -1 : ordinal - 1;  // -1: complete
            continue;
        }
        bool haveLong = expectedOrdinal == -1 && lfnChecksum(e) == longSum;
        expectedOrdinal = 0;
        if (attr & kAttrVolumeId) {
            continue;
        }
        if (e[0] == '.') {
            continue;  // "." and ".."
        }
        Entry entry;
        std::string base(reinterpret_cast<const char*>(e), 8);
        std::string ext(reinterpret_cast<const char*>(e + 8), 3);
        if (base[0] == 0x05) {
            base[0] = static_cast<char>(0xe5);
        }
        base = trimRight(base);
        ext = trimRight(ext);
        entry.shortName = base;
        if (!ext.empty()) {
            entry.shortName.append(".").append(ext);
        }
        if (haveLong) {
            std::size_t end = longName.find(u'\0');
            if (end != std::u16string::npos) {
                longName.resize(end);
            }
            entry.name = utf16ToUtf8(longName);
        }
        if (haveLong && isUnsafeName(entry.name)) {
            entry.name.clear();  // fall back to the 8.3 name
        }
        if (entry.name.empty()) {
            std::string b2 = base;
            std::string e2 = ext;
            if (e[12] & kCaseLowerBase) {
                std::transform(b2.begin(), b2.end(), b2.begin(), lowerAscii);
            }
            if (e[12] & kCaseLowerExt) {
                std::transform(e2.begin(), e2.end(), e2.begin(), lowerAscii);
            }
            entry.name = b2;
            if (!e2.empty()) {
                entry.name.append(".").append(e2);
            }
        }
        if (isUnsafeName(entry.name)) {
            throw Error(Errc::Corrupt, origin_ + " is corrupted: " + what +
                                           " has an entry whose name cannot be a file name");
        }
        entry.isDirectory = (attr & kAttrDirectory) != 0;
        entry.size = entry.isDirectory ? 0 : le32(e + 28);
        entry.firstCluster = (std::uint32_t{le16(e + 20)} << 16) | le16(e + 26);
        if (info_.type != FatType::Fat32) {
            entry.firstCluster &= 0xffff;
        }
        entry.mtime = fromDos(le16(e + 24), le16(e + 22));
        entries.push_back(std::move(entry));
    }
    return entries;
}

FatReader::Entry FatReader::lookup(std::string_view path) const {
    Entry current;
    current.isDirectory = true;
    current.firstCluster = info_.type == FatType::Fat32 ? rootCluster_ : 0;
    bool atRoot = true;
    std::string walked;
    std::string_view rest = path;
    int depth = 0;
    while (!rest.empty()) {
        std::size_t slash = rest.find('/');
        std::string_view part = rest.substr(0, slash);
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        if (part.empty()) {
            continue;
        }
        if (!current.isDirectory) {
            throw Error(Errc::NotFound, walked + " in " + origin_ + " is a file, not a directory");
        }
        if (++depth > kMaxDepth) {
            throw Error(Errc::Corrupt, origin_ + " has directories nested too deep");
        }
        auto entries = readDirectory(current.firstCluster, atRoot, walked);
        auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) {
            return sameName(e.name, part) || sameName(e.shortName, part);
        });
        if (it == entries.end()) {
            throw Error(Errc::NotFound, std::string(path) + " is not in " + origin_);
        }
        walked += (walked.empty() ? "" : "/") + it->name;
        current = *it;
        atRoot = false;
        if (current.isDirectory && current.firstCluster == 0) {
            atRoot = true;  // ".." style reference to the root
            current.firstCluster = info_.type == FatType::Fat32 ? rootCluster_ : 0;
        }
    }
    if (atRoot && walked.empty()) {
        current.name = "";
    }
    return current;
}

std::vector<FatReader::Entry> FatReader::list(std::string_view dirPath) const {
    Entry dir = lookup(dirPath);
    if (!dir.isDirectory) {
        throw Error(Errc::InvalidArgument,
                    std::string(dirPath) + " in " + origin_ + " is a file, not a directory");
    }
    bool isRoot = dir.name.empty() || (info_.type != FatType::Fat32 && dir.firstCluster == 0);
    return readDirectory(dir.firstCluster, isRoot, dirPath);
}

Bytes FatReader::read(std::string_view path) const {
    Entry file = lookup(path);
    if (file.isDirectory) {
        throw Error(Errc::InvalidArgument,
                    std::string(path) + " in " + origin_ + " is a directory, not a file");
    }
    if (file.size == 0) {
        return {};
    }
    return readChain(file.firstCluster, file.size, path);
}

std::vector<std::pair<std::string, FatReader::Entry>> FatReader::walk() const {
    std::vector<std::pair<std::string, Entry>> out;
    struct Pending {
        std::string path;
        std::uint32_t cluster;
        bool isRoot;
        int depth;
    };
    std::vector<Pending> stack{{"", info_.type == FatType::Fat32 ? rootCluster_ : 0, true, 0}};
    std::size_t budget = std::size_t{info_.clusterCount} + info_.rootDirEntries + 16;
    while (!stack.empty()) {
        Pending dir = stack.back();
        stack.pop_back();
        auto entries = readDirectory(dir.cluster, dir.isRoot, dir.path);
        // Push in reverse so the walk comes out in directory order.
        std::vector<Pending> subdirs;
        for (auto& e : entries) {
            if (out.size() >= budget) {
                throw Error(Errc::Corrupt, origin_ + " has more entries than clusters (a loop?)");
            }
            std::string path = dir.path.empty() ? e.name : dir.path + "/" + e.name;
            if (e.isDirectory) {
                if (e.firstCluster < 2 || dir.depth + 1 > kMaxDepth) {
                    throw Error(Errc::Corrupt, origin_ + " is corrupted: the directory " + path +
                                                   " points at cluster " +
                                                   std::to_string(e.firstCluster) +
                                                   " or is nested too deep");
                }
                subdirs.push_back({path, e.firstCluster, false, dir.depth + 1});
            }
            out.emplace_back(std::move(path), e);
        }
        stack.insert(stack.end(), subdirs.rbegin(), subdirs.rend());
    }
    return out;
}

}  // namespace rpiboot
