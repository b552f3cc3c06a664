// Helpers of the storage tests: test images and their compressed forms, made
// with the same system libraries the decoders use (their encoders).
#pragma once

#include <lzma.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace rpiboot::storage::test {

using Bytes = std::vector<std::uint8_t>;

// An image that is part noise, part text, part zeros, so it compresses
// somewhat and exercises long runs.
inline Bytes makeImage(std::size_t size, std::uint32_t seed = 1) {
    Bytes out(size);
    std::mt19937 rng(seed);
    for (std::size_t i = 0; i < size; ++i) {
        const std::size_t block = i / 8192;
        if (block % 3 == 0) {
            out[i] = static_cast<std::uint8_t>(rng());
        } else if (block % 3 == 1) {
            out[i] = static_cast<std::uint8_t>("rpibootd image "[i % 15]);
        } else {
            out[i] = 0;
        }
    }
    return out;
}

inline Bytes xz(const Bytes& in) {
    Bytes out(lzma_stream_buffer_bound(in.size()));
    std::size_t pos = 0;
    if (lzma_easy_buffer_encode(1, LZMA_CHECK_CRC64, nullptr, in.data(), in.size(), out.data(),
                                &pos, out.size()) != LZMA_OK) {
        throw std::runtime_error("xz encode");
    }
    out.resize(pos);
    return out;
}

inline Bytes zst(const Bytes& in) {
    Bytes out(ZSTD_compressBound(in.size()));
    const std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
    if (ZSTD_isError(n)) {
        throw std::runtime_error("zstd encode");
    }
    out.resize(n);
    return out;
}

inline Bytes gz(const Bytes& in) {
    z_stream s{};
    if (deflateInit2(&s, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        throw std::runtime_error("deflateInit2");
    }
    Bytes out(deflateBound(&s, static_cast<uLong>(in.size())));
    s.next_in = const_cast<Bytef*>(in.data());
    s.avail_in = static_cast<uInt>(in.size());
    s.next_out = out.data();
    s.avail_out = static_cast<uInt>(out.size());
    if (deflate(&s, Z_FINISH) != Z_STREAM_END) {
        throw std::runtime_error("deflate");
    }
    out.resize(s.total_out);
    deflateEnd(&s);
    return out;
}

inline std::string sha(const Bytes& data, bool sha1 = false) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, sha1 ? EVP_sha1() : EVP_sha256(), nullptr);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
        hex += kHex[md[i] >> 4];
        hex += kHex[md[i] & 15];
    }
    return hex;
}

inline Bytes readFile(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

inline void writeFile(const std::filesystem::path& p, const Bytes& b) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace rpiboot::storage::test
