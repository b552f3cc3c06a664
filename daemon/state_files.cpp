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

std::vector<std::string> HeldPortsFile::load() const {
    std::error_code ec;
    if (!std::filesystem::exists(file_, ec)) {
        return {};
    }
    std::ifstream in(file_);
    if (!in) {
        failIo(file_, "read", errno != 0 ? errno : EIO);
    }
    std::vector<std::string> globs;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.front() != '#') {
            globs.push_back(line);
        }
    }
    return globs;
}

void HeldPortsFile::save(const std::vector<std::string>& globs) const {
    std::error_code ec;
    std::filesystem::create_directories(file_.parent_path(), ec);
    if (ec) {
        failIo(file_.parent_path(), "create the state directory", ec.value());
    }
    std::string text =
        "# Ports held by rpibootctl hold / io.rpibootd1 HoldPort; one glob per line.\n";
    for (const auto& glob : globs) {
        text += glob + "\n";
    }
    writeFileAtomically(file_, text);
}

}  // namespace rpibootd
