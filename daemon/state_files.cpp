#include "state_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <system_error>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/unique_fd.hpp"

namespace rpibootd {

namespace {

[[noreturn]] void failIo(const std::filesystem::path& file, const std::string& what, int err) {
    throw rpiboot::Error(rpiboot::Errc::Io, file.string() + ": cannot " + what + ": " +
                                                std::generic_category().message(err));
}

}  // namespace

void writeFileAtomically(const std::filesystem::path& file, std::string_view content) {
    const std::filesystem::path temp =
        file.parent_path() / ("." + file.filename().string() + ".tmp" + std::to_string(::getpid()));
    rpiboot::UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) {
        failIo(temp, "create", errno);
    }
    std::size_t done = 0;
    while (done < content.size()) {
        const ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const int err = errno;
            fd.reset();
            ::unlink(temp.c_str());
            failIo(temp, "write", err);
        }
        done += static_cast<std::size_t>(n);
    }
    // Permissions as stated, whatever the umask: node_exporter runs as
    // another user and must read the metrics.
    ::fchmod(fd.get(), 0644);
    if (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0) {
        const int err = errno;
        ::unlink(temp.c_str());
        failIo(temp, "write", err);
    }
    if (::rename(temp.c_str(), file.c_str()) != 0) {
        const int err = errno;
        ::unlink(temp.c_str());
        failIo(file, "replace", err);
    }
}

namespace {

// One entry per line; empty lines and '#' comments are skipped.
std::vector<std::string> loadLines(const std::filesystem::path& file) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
        return {};
    }
    std::ifstream in(file);
    if (!in) {
        failIo(file, "read", errno != 0 ? errno : EIO);
    }
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.front() != '#') {
            lines.push_back(line);
        }
    }
    return lines;
}

void saveLines(const std::filesystem::path& file, const std::string& header,
               const std::vector<std::string>& lines) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) {
        failIo(file.parent_path(), "create the state directory", ec.value());
    }
    std::string text = header;
    for (const auto& line : lines) {
        text += line + "\n";
    }
    writeFileAtomically(file, text);
}

}  // namespace

std::vector<std::string> HeldPortsFile::load() const {
    return loadLines(file_);
}

void HeldPortsFile::save(const std::vector<std::string>& globs) const {
    saveLines(file_,
              "# Ports held by rpibootctl hold / io.rpibootd1 HoldPort; one glob per line.\n",
              globs);
}

std::vector<std::string> BootedSerialsFile::load() const {
    return loadLines(file_);
}

void BootedSerialsFile::save(const std::vector<std::string>& serials) const {
    saveLines(file_,
              "# Boards booted under an after_success \"once-per-serial\" profile; one serial per "
              "line.\n# rpibootctl retry or forget takes a board off this list.\n",
              serials);
}

}  // namespace rpibootd
