// Test helper: a scratch directory under the system's temporary directory,
// removed with everything in it when the object goes away.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace rpiboot::test {

class ScratchDir {
  public:
    ScratchDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "rpiboot-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
        }
        // Canonical, so tests comparing resolved paths see the same spelling.
        path_ = std::filesystem::canonical(pattern);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::filesystem::path& relative) const {
        return path_ / relative;
    }

    // Writes `contents` to `relative`, creating its parent directories;
    // returns the full path.
    std::filesystem::path write(const std::filesystem::path& relative,
                                std::string_view contents) const {
        const auto file = path_ / relative;
        std::filesystem::create_directories(file.parent_path());
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
        if (!out) {
            throw std::runtime_error("cannot write " + file.string());
        }
        return file;
    }
    std::filesystem::path writeBytes(const std::filesystem::path& relative,
                                     const std::vector<std::uint8_t>& contents) const {
        return write(relative, std::string_view(reinterpret_cast<const char*>(contents.data()),
                                                contents.size()));
    }
    std::filesystem::path mkdir(const std::filesystem::path& relative) const {
        const auto dir = path_ / relative;
        std::filesystem::create_directories(dir);
        return dir;
    }
    // Creates a symbolic link at `relative` pointing to `target` (as given).
    std::filesystem::path symlink(const std::filesystem::path& relative,
                                  const std::filesystem::path& target) const {
        const auto link = path_ / relative;
        std::filesystem::create_directories(link.parent_path());
        std::filesystem::create_symlink(target, link);
        return link;
    }

  private:
    std::filesystem::path path_;
};

}  // namespace rpiboot::test
