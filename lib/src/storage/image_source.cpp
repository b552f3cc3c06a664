#include "rpiboot/storage/image_source.hpp"

#include <fcntl.h>
#include <lzma.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_getFrameHeader: stable since 1.4
#include <zstd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/unique_fd.hpp"

namespace rpiboot::storage {
namespace {

constexpr std::size_t kInputChunk = 1 << 20;

std::string name(const std::filesystem::path& path) {
    return path.string();
}

// The compressed file, read forward in chunks; knows its offset for messages.
class InputFile {
  public:
    explicit InputFile(const std::filesystem::path& path) : path_(path) {
        fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd_) {
            const int e = errno;
            throw Error(e == ENOENT ? Errc::NotFound : Errc::Io,
                        "cannot open image " + name(path) + ": " + errnoText(e));
        }
        struct stat st {};
        if (::fstat(fd_.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
            throw Error(Errc::InvalidArgument, "image " + name(path) + " is not a regular file");
        }
        size_ = static_cast<std::uint64_t>(st.st_size);
        ::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    std::size_t read(std::uint8_t* buffer, std::size_t size) {
        for (;;) {
            const ssize_t n = ::read(fd_.get(), buffer, size);
            if (n >= 0) {
                offset_ += static_cast<std::uint64_t>(n);
                return static_cast<std::size_t>(n);
            }
            if (errno != EINTR) {
                throw Error(Errc::Io, "cannot read image " + name(path_) + " at offset " +
                                          std::to_string(offset_) + ": " + errnoText(errno));
            }
        }
    }
    // Reads exactly `size` bytes at `offset` (for headers and indexes); false if short.
    bool readAt(std::uint64_t offset, std::uint8_t* buffer, std::size_t size) const {
        std::size_t done = 0;
        while (done < size) {
            const ssize_t n =
                ::pread(fd_.get(), buffer + done, size - done, static_cast<off_t>(offset + done));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                return false;
            }
            done += static_cast<std::size_t>(n);
        }
        return true;
    }
    std::uint64_t offset() const noexcept { return offset_; }
    std::uint64_t size() const noexcept { return size_; }

  private:
    std::filesystem::path path_;
    UniqueFd fd_;
    std::uint64_t size_ = 0;
    std::uint64_t offset_ = 0;
};

[[noreturn]] void corrupt(const std::filesystem::path& path, std::string_view decoder,
                          std::uint64_t offset, const std::string& what) {
    throw Error(Errc::Corrupt, "image " + name(path) + " (" + std::string(decoder) +
                                   ") is corrupt at compressed offset " + std::to_string(offset) +
                                   ": " + what);
}

class RawSource final : public ImageSource {
  public:
    explicit RawSource(const std::filesystem::path& path)
        : ImageSource(path, ImageFormat::Raw), in_(path) {
        size_ = in_.size();
    }
    std::size_t read(std::uint8_t* buffer, std::size_t size) override {
        std::size_t done = 0;
        while (done < size) {
            const std::size_t n = in_.read(buffer + done, size - done);
            if (n == 0) {
                break;
            }
            done += n;
        }
        return done;
    }

  private:
    InputFile in_;
};

// Common loop of the streaming decoders: keep an input chunk, decode into the
// caller's buffer until it is full or the stream ends.
class StreamSource : public ImageSource {
  public:
    StreamSource(const std::filesystem::path& path, ImageFormat format)
        : ImageSource(path, format), in_(path), input_(kInputChunk) {}

    std::size_t read(std::uint8_t* buffer, std::size_t size) override {
        std::size_t done = 0;
        while (done < size && !finished_) {
            if (inPos_ == inLen_ && !inputEnded_) {
                inLen_ = in_.read(input_.data(), input_.size());
                inPos_ = 0;
                inputEnded_ = inLen_ == 0;
            }
            done += step(buffer + done, size - done);
        }
        return done;
    }

  protected:
    // Decodes from input_[inPos_, inLen_) into out; advances inPos_; sets
    // finished_ at the clean end; throws on corruption or truncation.
    virtual std::size_t step(std::uint8_t* out, std::size_t size) = 0;
    // Offset in the compressed file of the next unread input byte.
    std::uint64_t inputOffset() const { return in_.offset() - (inLen_ - inPos_); }

    InputFile in_;
    std::vector<std::uint8_t> input_;
    std::size_t inPos_ = 0;
    std::size_t inLen_ = 0;
    bool inputEnded_ = false;
    bool finished_ = false;
};

std::string lzmaText(lzma_ret ret) {
    switch (ret) {
        case LZMA_MEM_ERROR:
            return "out of memory";
        case LZMA_MEMLIMIT_ERROR:
            return "memory limit reached";
        case LZMA_FORMAT_ERROR:
            return "not in the xz format";
        case LZMA_OPTIONS_ERROR:
            return "unsupported compression options";
        case LZMA_DATA_ERROR:
            return "compressed data is corrupt";
        case LZMA_BUF_ERROR:
            return "unexpected end of input (truncated file)";
        default:
            return "liblzma error " + std::to_string(static_cast<int>(ret));
    }
}

class XzSource final : public StreamSource {
  public:
    explicit XzSource(const std::filesystem::path& path) : StreamSource(path, ImageFormat::Xz) {
        const lzma_ret ret = lzma_stream_decoder(&strm_, UINT64_MAX, LZMA_CONCATENATED);
        if (ret != LZMA_OK) {
            throw Error(Errc::Io,
                        "cannot start the xz decoder for " + name(path) + ": " + lzmaText(ret));
        }
        size_ = indexSize();
    }
    ~XzSource() override { lzma_end(&strm_); }

  private:
    // The uncompressed size from the last stream's index (single-stream files).
    std::optional<std::uint64_t> indexSize() const {
        std::uint64_t end = in_.size();
        std::array<std::uint8_t, LZMA_STREAM_HEADER_SIZE> footer{};
        // Skip stream padding (zero bytes in multiples of four).
        while (end >= 2 * LZMA_STREAM_HEADER_SIZE) {
            if (!in_.readAt(end - 4, footer.data(), 4)) {
                return std::nullopt;
            }
            if (footer[0] || footer[1] || footer[2] || footer[3]) {
                break;
            }
            end -= 4;
        }
        if (end < 2 * LZMA_STREAM_HEADER_SIZE ||
            !in_.readAt(end - LZMA_STREAM_HEADER_SIZE, footer.data(), footer.size())) {
            return std::nullopt;
        }
        lzma_stream_flags flags{};
        if (lzma_stream_footer_decode(&flags, footer.data()) != LZMA_OK ||
            flags.backward_size + 2 * LZMA_STREAM_HEADER_SIZE > end) {
            return std::nullopt;
        }
        std::vector<std::uint8_t> raw(flags.backward_size);
        if (!in_.readAt(end - LZMA_STREAM_HEADER_SIZE - flags.backward_size, raw.data(),
                        raw.size())) {
            return std::nullopt;
        }
        lzma_index* index = nullptr;
        std::uint64_t memlimit = UINT64_MAX;
        std::size_t pos = 0;
        if (lzma_index_buffer_decode(&index, &memlimit, nullptr, raw.data(), &pos, raw.size()) !=
            LZMA_OK) {
            return std::nullopt;
        }
        const std::uint64_t total = lzma_index_uncompressed_size(index);
        const std::uint64_t compressed = lzma_index_total_size(index);
        lzma_index_end(index, nullptr);
        // One stream only: header + blocks + index + footer spans the whole file.
        if (LZMA_STREAM_HEADER_SIZE + compressed + flags.backward_size + LZMA_STREAM_HEADER_SIZE !=
            end) {
            return std::nullopt;
        }
        return total;
    }

    std::size_t step(std::uint8_t* out, std::size_t size) override {
        strm_.next_in = input_.data() + inPos_;
        strm_.avail_in = inLen_ - inPos_;
        strm_.next_out = out;
        strm_.avail_out = size;
        const lzma_ret ret = lzma_code(&strm_, inputEnded_ ? LZMA_FINISH : LZMA_RUN);
        inPos_ = inLen_ - strm_.avail_in;
        const std::size_t produced = size - strm_.avail_out;
        if (ret == LZMA_STREAM_END) {
            finished_ = true;
        } else if (ret != LZMA_OK) {
            corrupt(path_, "xz", inputOffset(), lzmaText(ret));
        }
        return produced;
    }

    lzma_stream strm_ = LZMA_STREAM_INIT;
};

class ZstdSource final : public StreamSource {
  public:
    explicit ZstdSource(const std::filesystem::path& path)
        : StreamSource(path, ImageFormat::Zstd), dctx_(ZSTD_createDCtx()) {
        if (dctx_ == nullptr) {
            throw Error(Errc::Io, "cannot start the zstd decoder for " + name(path));
        }
        size_ = contentSize();
    }
    ~ZstdSource() override { ZSTD_freeDCtx(dctx_); }

  private:
    // The sum of every frame's content size, walking frame and block headers
    // (no decompression); nothing when a frame does not record its size or
    // the headers do not add up to the file.
    std::optional<std::uint64_t> contentSize() const {
        std::uint64_t pos = 0, total = 0;
        const std::uint64_t end = in_.size();
        std::array<std::uint8_t, ZSTD_FRAMEHEADERSIZE_MAX> h{};
        while (pos < end) {
            const std::size_t n =
                static_cast<std::size_t>(std::min<std::uint64_t>(h.size(), end - pos));
            if (n < 8 || !in_.readAt(pos, h.data(), n)) {
                return std::nullopt;
            }
            ZSTD_frameHeader fh{};
            if (ZSTD_getFrameHeader(&fh, h.data(), n) != 0) {
                return std::nullopt;
            }
            if (fh.frameType == ZSTD_skippableFrame) {
                pos += fh.headerSize + fh.frameContentSize;
                continue;
            }
            if (fh.frameContentSize == ZSTD_CONTENTSIZE_UNKNOWN) {
                return std::nullopt;
            }
            total += fh.frameContentSize;
            pos += fh.headerSize;
            for (;;) {  // blocks: 3-byte header, then the block's bytes
                std::array<std::uint8_t, 3> b{};
                if (!in_.readAt(pos, b.data(), b.size())) {
                    return std::nullopt;
                }
                const std::uint32_t v =
                    b[0] | (b[1] << 8) | (static_cast<std::uint32_t>(b[2]) << 16);
                const std::uint32_t type = (v >> 1) & 3;
                if (type == 3) {
                    return std::nullopt;  // reserved: corrupt, the decoder will say so
                }
                pos += 3 + (type == 1 ? 1 : (v >> 3));
                if (v & 1) {
                    break;
                }
            }
            pos += fh.checksumFlag ? 4 : 0;
        }
        return pos == end ? std::optional<std::uint64_t>(total) : std::nullopt;
    }

    std::size_t step(std::uint8_t* out, std::size_t size) override {
        ZSTD_inBuffer in{input_.data() + inPos_, inLen_ - inPos_, 0};
        ZSTD_outBuffer o{out, size, 0};
        if (in.size == 0 && inputEnded_) {
            if (inFrame_) {
                corrupt(path_, "zstd", inputOffset(), "unexpected end of input (truncated file)");
            }
            finished_ = true;
            return 0;
        }
        const std::size_t ret = ZSTD_decompressStream(dctx_, &o, &in);
        inPos_ += in.pos;
        if (ZSTD_isError(ret)) {
            corrupt(path_, "zstd", inputOffset(), ZSTD_getErrorName(ret));
        }
        inFrame_ = ret != 0;  // 0: a frame just ended cleanly
        return o.pos;
    }

    ZSTD_DCtx* dctx_;
    bool inFrame_ = false;
};

class GzipSource final : public StreamSource {
  public:
    explicit GzipSource(const std::filesystem::path& path) : StreamSource(path, ImageFormat::Gzip) {
        if (inflateInit2(&strm_, 16 + MAX_WBITS) != Z_OK) {
            throw Error(Errc::Io, "cannot start the gzip decoder for " + name(path));
        }
    }
    ~GzipSource() override { inflateEnd(&strm_); }

  private:
    std::size_t step(std::uint8_t* out, std::size_t size) override {
        if (inPos_ == inLen_ && inputEnded_) {
            if (inMember_) {
                corrupt(path_, "gzip", inputOffset(), "unexpected end of input (truncated file)");
            }
            finished_ = true;
            return 0;
        }
        if (!inMember_) {
            inflateReset(&strm_);  // the next member of a concatenated file
            inMember_ = true;
        }
        strm_.next_in = input_.data() + inPos_;
        strm_.avail_in = static_cast<uInt>(inLen_ - inPos_);
        strm_.next_out = out;
        strm_.avail_out = static_cast<uInt>(std::min<std::size_t>(size, UINT32_MAX));
        const uInt before = strm_.avail_out;
        const int ret = inflate(&strm_, Z_NO_FLUSH);
        inPos_ = inLen_ - strm_.avail_in;
        const std::size_t produced = before - strm_.avail_out;
        if (ret == Z_STREAM_END) {
            inMember_ = false;
        } else if (ret == Z_BUF_ERROR && inPos_ == inLen_ && !inputEnded_) {
            // needs more input: the caller reads the next chunk
        } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            corrupt(path_, "gzip", inputOffset(),
                    strm_.msg != nullptr ? strm_.msg : "zlib error " + std::to_string(ret));
        }
        return produced;
    }

    z_stream strm_{};
    bool inMember_ = true;
};

}  // namespace

std::string_view toString(ImageFormat format) noexcept {
    switch (format) {
        case ImageFormat::Raw:
            return "raw";
        case ImageFormat::Xz:
            return "xz";
        case ImageFormat::Zstd:
            return "zstd";
        case ImageFormat::Gzip:
            return "gzip";
    }
    return "unknown";
}

ImageFormat detectImageFormat(const std::filesystem::path& path) {
    InputFile in(path);
    std::array<std::uint8_t, 6> magic{};
    const std::size_t n = in.read(magic.data(), magic.size());
    static constexpr std::array<std::uint8_t, 6> kXz{0xfd, '7', 'z', 'X', 'Z', 0x00};
    static constexpr std::array<std::uint8_t, 4> kZstd{0x28, 0xb5, 0x2f, 0xfd};
    if (n >= 6 && std::memcmp(magic.data(), kXz.data(), 6) == 0) {
        return ImageFormat::Xz;
    }
    if (n >= 4 && std::memcmp(magic.data(), kZstd.data(), 4) == 0) {
        return ImageFormat::Zstd;
    }
    if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        return ImageFormat::Gzip;
    }
    return ImageFormat::Raw;
}

std::unique_ptr<ImageSource> openImage(const std::filesystem::path& path) {
    switch (detectImageFormat(path)) {
        case ImageFormat::Xz:
            return std::make_unique<XzSource>(path);
        case ImageFormat::Zstd:
            return std::make_unique<ZstdSource>(path);
        case ImageFormat::Gzip:
            return std::make_unique<GzipSource>(path);
        case ImageFormat::Raw:
            break;
    }
    return std::make_unique<RawSource>(path);
}

}  // namespace rpiboot::storage
