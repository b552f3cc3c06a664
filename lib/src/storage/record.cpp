#include "rpiboot/storage/record.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/unique_fd.hpp"

namespace rpiboot::storage {
namespace {

[[noreturn]] void fail(const std::string& call, const std::filesystem::path& path, int error) {
    throw Error(Errc::Io,
                "cannot write record " + path.string() + ": " + call + ": " + errnoText(error));
}

std::string safeName(const std::string& name) {
    std::string out;
    for (const char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        out.push_back(ok ? c : '_');
    }
    if (out.empty() || out[0] == '.') {
        out.insert(out.begin(), '_');
    }
    return out;
}

}  // namespace

nlohmann::json toJson(const WriteResult& r) {
    return {
        {"image", r.imageName},
        {"format", r.imageFormat},
        {"sha256", r.imageSha256},
        {"read_back_sha256", r.readBackSha256},
        {"image_bytes", r.imageSize},
        {"bytes_written", r.bytesWritten},
        {"bytes_verified", r.bytesVerified},
        {"write_ms", r.writeDuration.count()},
        {"verify_ms", r.verifyDuration.count()},
        {"direct_io", r.directIo},
        {"bmap", r.bmapUsed},
        {"result", std::string(toString(r.outcome))},
        {"message", r.message},
    };
}

nlohmann::json toJson(const BootRecord& r) {
    nlohmann::json j{
        {"board", r.board},
        {"port", r.port},
        {"profile", r.profile},
        {"started_at", r.startedAt},
        {"finished_at", r.finishedAt},
        {"outcome", r.outcome},
        {"metadata", r.metadata},
    };
    if (!r.error.empty()) {
        j["error"] = r.error;
    }
    j["write"] = r.write ? toJson(*r.write) : nlohmann::json(nullptr);
    return j;
}

void writeFileAtomically(const std::filesystem::path& path, const std::string& contents) {
    const auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    std::string tmp = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd) {
        fail("mkostemp", path, errno);
    }
    auto cleanup = [&](const char* call, int error) {
        fd.reset();
        ::unlink(tmp.c_str());
        fail(call, path, error);
    };
    std::size_t done = 0;
    while (done < contents.size()) {
        const ssize_t n = ::write(fd.get(), contents.data() + done, contents.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            cleanup("write", n == 0 ? EIO : errno);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fchmod(fd.get(), 0644) != 0) {
        cleanup("fchmod", errno);
    }
    if (::fsync(fd.get()) != 0) {
        cleanup("fsync", errno);
    }
    if (::close(fd.release()) != 0) {  // checked: a failed close may lose data
        ::unlink(tmp.c_str());
        fail("close", path, errno);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        fail("rename", path, e);
    }
    const UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd) {
        ::fsync(dfd.get());  // the rename itself reaches the disk
    }
}

std::filesystem::path writeBootRecord(const std::filesystem::path& dir, const BootRecord& record) {
    const auto path =
        dir / (std::to_string(record.startedAt) + "-" + safeName(record.board) + ".json");
    writeFileAtomically(path, toJson(record).dump(2) + "\n");
    return path;
}

}  // namespace rpiboot::storage
