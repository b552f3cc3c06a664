// The files of a boot partition (docs/protocol.md §11): read from a directory and
// pruned the way make-boot-image does for a board and kernel architecture.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rpiboot/signing/bytes_io.hpp"

namespace rpiboot {

// One file or directory of the image; `path` is relative, '/'-separated,
// UTF-8 ("overlays/vc4-kms-v3d.dtbo"). Parent directories are implied.
struct BootFile {
    std::string path;
    Bytes data;
    std::int64_t mtime = 0;  // Unix seconds
    bool isDirectory = false;
};

// Which files make-boot-image keeps (`-b`, `-a`).
enum class BoardFilter { All, Pi4, Pi400, Cm4 };
enum class KernelArch { Arm32, Arm64 };
std::optional<BoardFilter> parseBoardFilter(std::string_view name);  // "pi4", "pi400", "cm4"

// Reads a directory tree into BootFiles (symbolic links followed, top-level
// hidden entries skipped as a shell glob would).
std::vector<BootFile> collectBootFiles(const std::filesystem::path& dir);
// Removes top-level files the board or kernel architecture does not use:
// older-board firmware and kernels for pi4/pi400/cm4, kernel8.img for 32-bit,
// kernel7l.img for 64-bit, start4x/fixup4x for pi400.
void pruneBootFiles(std::vector<BootFile>& files, BoardFilter board, KernelArch arch);

}  // namespace rpiboot
