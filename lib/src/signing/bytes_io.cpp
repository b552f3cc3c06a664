// Hex and whole-file helpers shared by the signing tools and library.
#include "rpiboot/signing/bytes_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <random>
#include <string>
#include <utility>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/unique_fd.hpp"

namespace rpiboot {

namespace {

int hexValue(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

}  // namespace

std::string toHex(ByteView data) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(data.size() * 2);
    for (std::uint8_t b : data) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 0x0f]);
    }
    return out;
}

Bytes fromHex(std::string_view hex, std::string_view what) {
    if (hex.size() % 2 != 0) {
        throw Error(Errc::Corrupt, std::string(what) + " has an odd number of hex digits (" +
                                       std::to_string(hex.size()) + ")");
    }
    Bytes out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        int hi = hexValue(hex[i]);
        int lo = hexValue(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            throw Error(Errc::Corrupt, std::string(what) + " has a character that is not a hex " +
                                           "digit at position " +
                                           std::to_string(hi < 0 ? i : i + 1));
        }
        out.push_back(static_cast<std::uint8_t>((hi << 4) | lo));
    }
    return out;
}

Bytes readFileBytes(const std::filesystem::path& path) {
    std::error_code ec;
    auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) {
        throw Error(Errc::NotFound, "cannot read " + path.string() + ": no such file");
    }
    if (!std::filesystem::is_regular_file(status)) {
        throw Error(Errc::Io, "cannot read " + path.string() + ": not a regular file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw Error(Errc::Io, "cannot open " + path.string() + ": " + errnoText(errno));
    }
    Bytes data;
    in.seekg(0, std::ios::end);
    auto size = in.tellg();
    in.seekg(0, std::ios::beg);
    if (size < 0) {
        throw Error(Errc::Io, "cannot determine the size of " + path.string());
    }
    data.resize(static_cast<std::size_t>(size));
    if (!data.empty() &&
        !in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size()))) {
        throw Error(Errc::Io, "cannot read " + path.string() + ": short read");
    }
    return data;
}

void writeFileBytes(const std::filesystem::path& path, ByteView data) {
    auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    // A fresh name opened with O_EXCL (mode 0666, so the umask applies as for any new file).
    std::random_device random;
    std::string tmp;
    int rawFd = -1;
    for (int attempt = 0; attempt < 16 && rawFd < 0; ++attempt) {
        // Appended piece by piece: `"." + std::string` trips GCC 12's bogus
        // -Wrestrict at -O3 (GCC bug 105329).
        std::string name(1, '.');
        name += path.filename().string();
        name += ".tmp";
        name += std::to_string(random());
        tmp = (dir / name).string();
        rawFd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (rawFd < 0 && errno != EEXIST) {
            break;
        }
    }
    UniqueFd fd(rawFd);  // closed on every path out
    if (fd.get() < 0) {
        throw Error(Errc::Io, "cannot create a temporary file next to " + path.string() + ": " +
                                  errnoText(errno));
    }
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int err = errno;
            ::unlink(tmp.c_str());
            throw Error(Errc::Io, "cannot write " + path.string() + ": " + errnoText(err));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::close(fd.release()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw Error(Errc::Io, "cannot write " + path.string() + ": " + errnoText(err));
    }
}

}  // namespace rpiboot
