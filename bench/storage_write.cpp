// Image write benchmark: the storage writer next to `dd bs=4M oflag=direct`
// on the same target in the same run.
//
// Generates an image (a mix of noise, text and zeros, so zstd compresses it
// about as much as an OS image), its .zst, and writes both with write+verify
// to a scratch file and, when run as root with a working `losetup`, to a loop
// device (--direct-io=on, so the loop driver itself does not copy through the
// page cache, as a real disk would not). Prints MB/s of each, the ratio to dd, and zstd's
// decompress-only rate (what "decompression never the bottleneck" is measured against). Figures are
// printed; --check fails only if the raw write is below 50 % of dd. dd runs with conv=notrunc,fsync
// so that both sides include the final flush.
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rpiboot/core/error.hpp"
#include "rpiboot/storage/image_source.hpp"
#include "rpiboot/storage/writer.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace rpiboot::storage;

struct Settings {
    fs::path work = fs::temp_directory_path() / "rpiboot-bench-storage";
    std::uint64_t sizeMib = 512;
    bool loop = true;
    bool check = false;
    unsigned repeat = 3;
};

double seconds(Clock::duration d) {
    return std::chrono::duration<double>(d).count();
}
double mbps(std::uint64_t bytes, double s) {
    return s > 0 ? static_cast<double>(bytes) / 1e6 / s : 0;
}
double secs(std::chrono::milliseconds d) {
    return static_cast<double>(d.count()) / 1000.0;
}

void makeImage(const fs::path& raw, const fs::path& zst, std::uint64_t size) {
    std::ofstream out(raw, std::ios::binary | std::ios::trunc);
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
    ZSTD_CCtx_setPledgedSrcSize(cctx, size);  // the frame records the size, as the zstd tool does
    std::ofstream z(zst, std::ios::binary | std::ios::trunc);
    std::vector<char> block(1 << 20), zbuf(ZSTD_CStreamOutSize());
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    for (std::uint64_t done = 0; done < size; done += block.size()) {
        for (std::size_t i = 0; i < block.size(); i += 8) {
            const std::uint64_t chunk = (done + i) / 65536;
            std::uint64_t v = 0;
            if (chunk % 4 == 0) {  // noise
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v = x;
            } else if (chunk % 4 == 1) {  // text-like
                v = 0x2065676d69206f73ull + (((done + i) / 8) % 97);
            }
            std::memcpy(block.data() + i, &v, 8);
        }
        out.write(block.data(), static_cast<std::streamsize>(block.size()));
        ZSTD_inBuffer in{block.data(), block.size(), 0};
        const bool last = done + block.size() >= size;
        for (;;) {
            ZSTD_outBuffer o{zbuf.data(), zbuf.size(), 0};
            const std::size_t left =
                ZSTD_compressStream2(cctx, &o, &in, last ? ZSTD_e_end : ZSTD_e_continue);
            z.write(zbuf.data(), static_cast<std::streamsize>(o.pos));
            if (last ? left == 0 : in.pos == in.size) {
                break;
            }
        }
    }
    ZSTD_freeCCtx(cctx);
}

std::string loadavg() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

double runDd(const fs::path& image, const fs::path& target) {
    const std::string cmd = "dd if='" + image.string() + "' of='" + target.string() +
                            "' bs=4M oflag=direct conv=notrunc,fsync status=none";
    const auto t0 = Clock::now();
    if (std::system(cmd.c_str()) != 0) {
        throw std::runtime_error("dd failed: " + cmd);
    }
    return seconds(Clock::now() - t0);
}

WriteResult runWriter(const fs::path& image, const fs::path& target) {
    WriteOptions o;
    o.image = image;
    o.target = target;
    const WriteResult r = writeImage(o);
    if (r.outcome != WriteOutcome::Verified) {
        throw std::runtime_error("write of " + image.string() + " not verified: " + r.message);
    }
    return r;
}

double decompressOnly(const fs::path& image) {
    auto src = openImage(image);
    std::vector<std::uint8_t> buf(4 << 20);
    const auto t0 = Clock::now();
    std::uint64_t n = 0;
    while (std::size_t k = src->read(buf.data(), buf.size())) {
        n += k;
    }
    return mbps(n, seconds(Clock::now() - t0));
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Runs dd, the raw write and the .zst write `repeat` times, interleaved so
// that the machine's load weighs on all three alike; prints the medians and
// returns the raw/dd ratio.
double benchTarget(const std::string& label, const fs::path& target, const fs::path& raw,
                   const fs::path& zst, std::uint64_t size, unsigned repeat) {
    runDd(raw, target);  // warm-up: allocates the file's blocks so every run overwrites
    std::vector<double> dd, rw, zw, rv, zv;
    bool direct = true;
    for (unsigned i = 0; i < repeat; ++i) {
        dd.push_back(mbps(size, runDd(raw, target)));
        const WriteResult r = runWriter(raw, target);
        const WriteResult z = runWriter(zst, target);
        rw.push_back(mbps(r.bytesWritten, secs(r.writeDuration)));
        zw.push_back(mbps(z.bytesWritten, secs(z.writeDuration)));
        rv.push_back(mbps(r.bytesVerified, secs(r.verifyDuration)));
        zv.push_back(mbps(z.bytesVerified, secs(z.verifyDuration)));
        direct = direct && r.directIo && z.directIo;
    }
    const double ddRate = median(dd), rawRate = median(rw), zstRate = median(zw);
    std::printf("%-40s %8.1f MB/s\n", (label + ": dd bs=4M oflag=direct").c_str(), ddRate);
    std::printf("%-40s %8.1f MB/s  %5.1f %% of dd  (verify %.1f MB/s)\n",
                (label + ": raw .img write").c_str(), rawRate, 100 * rawRate / ddRate, median(rv));
    std::printf("%-40s %8.1f MB/s  %5.1f %% of dd  (verify %.1f MB/s)\n",
                (label + ": .img.zst write").c_str(), zstRate, 100 * zstRate / ddRate, median(zv));
    std::printf("%-40s %s\n", (label + ": O_DIRECT").c_str(), direct ? "yes" : "no (refused)");
    return rawRate / ddRate;
}

std::optional<std::string> loopAttach(const fs::path& backing) {
    if (::geteuid() != 0) {
        return std::nullopt;
    }
    const std::string cmd =
        "losetup --direct-io=on --find --show '" + backing.string() + "' 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) {
        return std::nullopt;
    }
    char line[256] = {};
    const bool got = std::fgets(line, sizeof line, p) != nullptr;
    if (::pclose(p) != 0 || !got) {
        return std::nullopt;
    }
    std::string dev(line);
    while (!dev.empty() && dev.back() == '\n') {
        dev.pop_back();
    }
    return dev;
}

}  // namespace

int main(int argc, char** argv) {
    Settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--work" && i + 1 < argc) {
            s.work = argv[++i];
        } else if (a == "--size-mib" && i + 1 < argc) {
            s.sizeMib = std::stoull(argv[++i]);
        } else if (a == "--repeat" && i + 1 < argc) {
            s.repeat = static_cast<unsigned>(std::max(1ull, std::stoull(argv[++i])));
        } else if (a == "--no-loop") {
            s.loop = false;
        } else if (a == "--check") {
            s.check = true;
        } else {
            std::fprintf(
                stderr,
                "usage: bench_storage_write [--work DIR] [--size-mib N] [--repeat N] [--no-loop] "
                "[--check]\n");
            return 2;
        }
    }
    try {
        fs::create_directories(s.work);
        const std::uint64_t size = s.sizeMib << 20;
        const fs::path raw = s.work / "bench.img", zst = s.work / "bench.img.zst";
        makeImage(raw, zst, size);
        std::printf("image write benchmark: %llu MiB image, .zst %.1f MiB; work %s\n",
                    static_cast<unsigned long long>(s.sizeMib),
                    static_cast<double>(fs::file_size(zst)) / 1048576.0, s.work.c_str());
        std::vector<double> dz;
        for (unsigned i = 0; i < s.repeat; ++i) {
            dz.push_back(decompressOnly(zst));
        }
        std::printf("%-40s %8.1f MB/s  (one thread, median of %u)\n", "zstd decompress only",
                    median(dz), s.repeat);
        std::printf("machine: %u CPU(s), load %s\n", std::thread::hardware_concurrency(),
                    loadavg().c_str());
        const fs::path file = s.work / "target.bin";
        std::ofstream(file, std::ios::binary | std::ios::trunc).close();
        double worst = benchTarget("file", file, raw, zst, size, s.repeat);
        fs::remove(file);
        if (s.loop) {
            const fs::path backing = s.work / "loop-backing.bin";
            std::ofstream(backing, std::ios::binary | std::ios::trunc).close();
            fs::resize_file(backing, size + (16u << 20));
            if (const auto dev = loopAttach(backing)) {
                try {
                    worst = std::min(worst,
                                     benchTarget("loop " + *dev, *dev, raw, zst, size, s.repeat));
                } catch (...) {
                    std::system(("losetup -d " + *dev).c_str());
                    throw;
                }
                std::system(("losetup -d " + *dev).c_str());
            } else {
                std::printf("loop device: skipped (needs root and a working losetup)\n");
            }
            fs::remove(backing);
        }
        fs::remove(raw);
        fs::remove(zst);
        if (s.check && worst < 0.5) {
            std::fprintf(stderr, "bench_storage_write: raw write below 50 %% of dd\n");
            return 1;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_storage_write: %s\n", e.what());
        return 1;
    }
    return 0;
}
