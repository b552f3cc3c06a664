// OS images to write to a board's disk: raw, xz, zstd or gzip, read as one
// stream of uncompressed bytes.
//
// The format is chosen by the file's first bytes (magic numbers), never by its
// name alone; a file with no known magic is a raw image. Decoders are the
// system's liblzma, libzstd and zlib. A truncated or corrupt file ends the
// stream with rpiboot::Error (Errc::Corrupt) naming the image, the offset in
// the compressed file and the decoder's own message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>

namespace rpiboot::storage {

enum class ImageFormat { Raw, Xz, Zstd, Gzip };

std::string_view toString(ImageFormat format) noexcept;  // "raw", "xz", "zstd", "gzip"

// The format of the file at `path`, from its magic bytes.
ImageFormat detectImageFormat(const std::filesystem::path& path);

class ImageSource {
  public:
    virtual ~ImageSource() = default;

    // Fills up to `size` bytes of `buffer` with the next uncompressed bytes;
    // returns how many, 0 only at the end of the image. Throws rpiboot::Error.
    virtual std::size_t read(std::uint8_t* buffer, std::size_t size) = 0;

    ImageFormat format() const noexcept { return format_; }
    const std::filesystem::path& path() const noexcept { return path_; }
    // The uncompressed size when the format records it (raw: the file size,
    // xz: its index, zstd: the frames' content size), otherwise nullopt.
    std::optional<std::uint64_t> uncompressedSize() const noexcept { return size_; }

  protected:
    ImageSource(std::filesystem::path path, ImageFormat format)
        : path_(std::move(path)), format_(format) {}
    std::filesystem::path path_;
    ImageFormat format_;
    std::optional<std::uint64_t> size_;
};

// Opens the image at `path` with the decoder its magic bytes call for.
// Throws rpiboot::Error (NotFound, Io, Corrupt).
std::unique_ptr<ImageSource> openImage(const std::filesystem::path& path);

}  // namespace rpiboot::storage
