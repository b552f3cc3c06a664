// Test helper: a scratch directory tree that removes itself.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace rpiboot::test {

class TempTree {
  public:
    TempTree() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "rpiboot-fw-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        root_ = std::filesystem::canonical(pattern);
    }
    ~TempTree() {
        std::error_code ec;
        std::filesystem::remove_all(root_, ec);
    }
    TempTree(const TempTree&) = delete;
    TempTree& operator=(const TempTree&) = delete;

    const std::filesystem::path& root() const { return root_; }
    std::filesystem::path operator/(std::string_view relative) const { return root_ / relative; }

    std::filesystem::path write(std::string_view relative, std::string_view contents) const {
        const auto path = root_ / relative;
        std::filesystem::create_directories(path.parent_path());
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
        if (!out) {
            throw std::runtime_error("cannot write " + path.string());
        }
        return path;
    }
    std::filesystem::path writeBytes(std::string_view relative,
                                     const std::vector<std::uint8_t>& contents) const {
        return write(relative, std::string_view(reinterpret_cast<const char*>(contents.data()),
                                                contents.size()));
    }
    std::filesystem::path mkdir(std::string_view relative) const {
        const auto path = root_ / relative;
        std::filesystem::create_directories(path);
        return path;
    }
    std::filesystem::path symlink(std::string_view relative,
                                  const std::filesystem::path& target) const {
        const auto path = root_ / relative;
        std::filesystem::create_directories(path.parent_path());
        std::filesystem::create_symlink(target, path);
        return path;
    }

  private:
    std::filesystem::path root_;
};

inline std::vector<std::uint8_t> readWhole(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + path.string());
    }
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in),
                                     std::istreambuf_iterator<char>());
}

inline std::filesystem::path fixturesDir() {
    return RPIBOOT_FIXTURES_DIR;
}

}  // namespace rpiboot::test
