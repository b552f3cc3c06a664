// Gathering and pruning the files of a boot image (docs/protocol.md §11).
#include "rpiboot/image/boot_files.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <string>
#include <system_error>

#include "rpiboot/core/error.hpp"

namespace rpiboot {

namespace {

namespace fs = std::filesystem;

// Symbolic links are followed; this depth stops a link loop.
constexpr int kMaxDepth = 32;

std::int64_t mtimeOf(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
        return 0;
    }
    return static_cast<std::int64_t>(st.st_mtime);
}

void collect(const fs::path& dir, const std::string& prefix, int depth,
             std::vector<BootFile>& out) {
    if (depth > kMaxDepth) {
        throw Error(Errc::InvalidArgument,
                    dir.string() + " is nested too deep (a symbolic link loop?)");
    }
    std::error_code ec;
    std::vector<fs::path> names;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        names.push_back(it->path());
    }
    if (ec) {
        throw Error(Errc::Io, "cannot list " + dir.string() + ": " + ec.message());
    }
    std::sort(names.begin(), names.end());
    for (const auto& p : names) {
        std::string name = p.filename().string();
        if (prefix.empty() && name.front() == '.') {
            continue;  // like the `dir/*` glob of make-boot-image
        }
        auto status = fs::status(p, ec);
        if (ec) {
            throw Error(Errc::Io, "cannot read " + p.string() + ": " + ec.message());
        }
        if (fs::is_directory(status)) {
            out.push_back({prefix + name, {}, mtimeOf(p), true});
            collect(p, prefix + name + "/", depth + 1, out);
        } else if (fs::is_regular_file(status)) {
            out.push_back({prefix + name, readFileBytes(p), mtimeOf(p), false});
        } else {
            throw Error(Errc::InvalidArgument,
                        p.string() + " is neither a regular file nor a directory");
        }
    }
}

bool startsWith(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::optional<BoardFilter> parseBoardFilter(std::string_view name) {
    if (name == "pi4") {
        return BoardFilter::Pi4;
    }
    if (name == "pi400") {
        return BoardFilter::Pi400;
    }
    if (name == "cm4") {
        return BoardFilter::Cm4;
    }
    return std::nullopt;
}

std::vector<BootFile> collectBootFiles(const fs::path& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        throw Error(Errc::NotFound, dir.string() + " is not a directory");
    }
    std::vector<BootFile> out;
    collect(dir, "", 0, out);
    return out;
}

void pruneBootFiles(std::vector<BootFile>& files, BoardFilter board, KernelArch arch) {
    // Firmware and kernels of boards before the Pi 4, which a Pi 4 family board never loads.
    static constexpr std::array<std::string_view, 19> kOlderBoards = {
        "kernel.img",   "kernel7.img",  "bootcode.bin",    "start.elf",     "fixup.dat",
        "start_cd.elf", "fixup_cd.dat", "start_db.elf",    "fixup_db.dat",  "start_x.elf",
        "fixup_x.dat",  "start4cd.elf", "fixup4cd.dat",    "start4db.elf",  "fixup4db.dat",
        "start4x.elf",  "fixup4x.dat",  "kernel_2712.img", "initramfs_2712"};
    static constexpr std::array<std::string_view, 3> kOlderPrefixes = {"bcm2708", "bcm2709",
                                                                       "bcm2710"};
    auto topLevel = [](const BootFile& f) { return f.path.find('/') == std::string::npos; };
    auto drop = [&](const BootFile& f) {
        if (!topLevel(f) || f.isDirectory) {
            return false;
        }
        const std::string& n = f.path;
        if (board != BoardFilter::All) {
            if (std::find(kOlderBoards.begin(), kOlderBoards.end(), n) != kOlderBoards.end()) {
                return true;
            }
            for (auto p : kOlderPrefixes) {
                if (startsWith(n, p)) {
                    return true;
                }
            }
        }
        if (board == BoardFilter::Pi400 && (n == "start4x.elf" || n == "fixup4x.dat")) {
            return true;
        }
        return arch == KernelArch::Arm32 ? n == "kernel8.img" : n == "kernel7l.img";
    };
    files.erase(std::remove_if(files.begin(), files.end(), drop), files.end());
}

}  // namespace rpiboot
