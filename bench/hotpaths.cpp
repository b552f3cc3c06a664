// Google Benchmark for the host's hot paths: serving a file to one board
// in-process, resolving a name, finding a tar member, a file cache hit.
//
// The board side is a null Transport that answers the file server's request
// reads from a fixed script and only counts the bytes it is sent, so the
// figures are the host's own cost. Benchmarks print figures; they never
// assert timings. The one behavioural check: the bytes handed to the
// transport must be the cached buffer itself (no per-request copy); the
// `zero_copy` counter says so (1) or not (0).
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpiboot/core/file_server.hpp"
#include "rpiboot/core/link.hpp"
#include "rpiboot/core/transport.hpp"
#include "rpiboot/firmware/file_cache.hpp"
#include "rpiboot/firmware/firmware_set.hpp"
#include "rpiboot/firmware/request_name.hpp"
#include "rpiboot/firmware/tar_archive.hpp"

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kStartElfSize = 2'300'000;  // about start4.elf (2.2 MiB)

std::vector<std::uint8_t> patternBytes(std::size_t size, std::uint8_t seed) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) {
        bytes[i] = static_cast<std::uint8_t>(i * 31 + seed);
    }
    return bytes;
}

// A scratch firmware set on disk: <root>/2711/start4.elf and friends.
class ScratchFirmware {
  public:
    ScratchFirmware() {
        std::string pattern = (fs::temp_directory_path() / "rpiboot-bench-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        root_ = pattern;
        fs::create_directories(root_ / "2711");
        write("2711/start4.elf", patternBytes(kStartElfSize, 1));
        write("2711/bootcode4.bin", patternBytes(105'984, 2));
        write("config.txt", patternBytes(238, 3));
        cache_ = std::make_shared<rpiboot::FileCache>();
        rpiboot::FirmwareSetConfig config;
        config.root = root_;
        set_ = std::make_unique<rpiboot::FirmwareSet>(config, cache_);
    }
    ~ScratchFirmware() {
        set_.reset();
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    ScratchFirmware(const ScratchFirmware&) = delete;
    ScratchFirmware& operator=(const ScratchFirmware&) = delete;

    const fs::path& root() const { return root_; }
    rpiboot::FileCache& cache() { return *cache_; }
    const rpiboot::FirmwareSet& set() const { return *set_; }

  private:
    void write(const fs::path& relative, const std::vector<std::uint8_t>& bytes) {
        std::ofstream out(root_ / relative, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()),
                  static_cast<std::streamsize>(bytes.size()));
    }

    fs::path root_;
    std::shared_ptr<rpiboot::FileCache> cache_;
    std::unique_ptr<rpiboot::FirmwareSet> set_;
};

ScratchFirmware& scratch() {
    static ScratchFirmware instance;
    return instance;
}

std::array<std::uint8_t, rpiboot::kFileRequestSize> request(std::int32_t command,
                                                            const std::string& name) {
    std::array<std::uint8_t, rpiboot::kFileRequestSize> message{};
    const auto c = static_cast<std::uint32_t>(command);
    message[0] = static_cast<std::uint8_t>(c);
    message[1] = static_cast<std::uint8_t>(c >> 8);
    message[2] = static_cast<std::uint8_t>(c >> 16);
    message[3] = static_cast<std::uint8_t>(c >> 24);
    std::memcpy(message.data() + 4, name.data(), std::min(name.size(), std::size_t{255}));
    return message;
}

// The board side: posts the scripted requests in order and counts bulk bytes.
class NullTransport final : public rpiboot::Transport {
  public:
    explicit NullTransport(std::vector<std::array<std::uint8_t, rpiboot::kFileRequestSize>> script)
        : script_(std::move(script)) {}

    void reset(std::span<const std::uint8_t> source) {
        next_ = 0;
        bytes_ = 0;
        source_ = source;
    }
    void controlOutLength(std::uint32_t, rpiboot::Milliseconds) override {}
    std::size_t controlIn(std::span<std::uint8_t> buffer, rpiboot::Milliseconds) override {
        const auto& message = script_.at(next_++);
        const std::size_t n = std::min(buffer.size(), message.size());
        std::memcpy(buffer.data(), message.data(), n);
        return n;
    }
    void bulkOut(std::span<const std::uint8_t> chunk, rpiboot::Milliseconds) override {
        const auto* begin = source_.data();
        if (chunk.data() < begin || chunk.data() + chunk.size() > begin + source_.size()) {
            copied_ = true;  // not a view into the served buffer
        }
        bytes_ += chunk.size();
    }
    std::uint64_t bytes() const { return bytes_; }
    bool copied() const { return copied_; }

  private:
    std::vector<std::array<std::uint8_t, rpiboot::kFileRequestSize>> script_;
    std::size_t next_ = 0;
    std::uint64_t bytes_ = 0;
    std::span<const std::uint8_t> source_;
    bool copied_ = false;
};

std::vector<std::array<std::uint8_t, rpiboot::kFileRequestSize>> oneFileScript(
    const std::string& name) {
    return {request(0, name), request(1, name), request(0, "")};
}

// One board session serving start4.elf through the real resolver and cache.
void BM_ServeFileResolved(benchmark::State& state) {
    auto& fw = scratch();
    const rpiboot::BoardContext board{rpiboot::Chip::Bcm2711, "1-1", "af04b2da"};
    const auto served = fw.set().resolve("start4.elf", board);
    if (!served.found()) {
        state.SkipWithError("start4.elf not resolved");
        return;
    }
    NullTransport transport(oneFileScript("start4.elf"));
    rpiboot::Link link(transport, rpiboot::TransferTimeouts{});
    std::uint64_t total = 0;
    bool copied = false;
    for (auto _ : state) {
        rpiboot::BoardFileSource source(fw.set(), board);
        transport.reset(served.file->bytes);
        rpiboot::FileServer server(link, source);
        const auto result = server.run();
        benchmark::DoNotOptimize(result.bytesSent);
        total += transport.bytes();
        copied = copied || transport.copied();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(total));
    state.counters["zero_copy"] = copied ? 0 : 1;
}
BENCHMARK(BM_ServeFileResolved)->Unit(benchmark::kMicrosecond);

// Link::write alone: chunking one buffer into 16 KiB bulk transfers.
void BM_LinkWrite(benchmark::State& state) {
    const auto bytes = patternBytes(static_cast<std::size_t>(state.range(0)), 7);
    NullTransport transport({});
    rpiboot::Link link(transport, rpiboot::TransferTimeouts{});
    std::uint64_t total = 0;
    for (auto _ : state) {
        transport.reset(bytes);
        link.write(bytes);
        total += transport.bytes();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(total));
    state.counters["zero_copy"] = transport.copied() ? 0 : 1;
}
BENCHMARK(BM_LinkWrite)->Arg(16 << 10)->Arg(2 << 20)->Unit(benchmark::kMicrosecond);

// From a board's request read to the host's reply written, per request: the
// transport time-stamps the end of every request read (control IN) and the
// reply that follows (the control OUT with the size, the ReadFile length, or
// the 0-length ack). A typical msd session of a BCM2711 through the real
// resolver and cache (config.txt found, pieeprom.sig missing, start4.elf
// read, fixup4.dat missing, empty name), with an observer that hands
// progress to another thread the way the daemon's workers do (a queue under
// a mutex and an eventfd write per event, progress at most every 100 ms).
class TimingTransport final : public rpiboot::Transport {
  public:
    explicit TimingTransport(
        std::vector<std::array<std::uint8_t, rpiboot::kFileRequestSize>> script)
        : script_(std::move(script)) {}
    void reset() { next_ = 0; }
    void controlOutLength(std::uint32_t, rpiboot::Milliseconds) override {
        if (readAt_) {
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now() - *readAt_);
            latencies.push_back(static_cast<double>(ns.count()) / 1000.0);
            readAt_.reset();
        }
    }
    std::size_t controlIn(std::span<std::uint8_t> buffer, rpiboot::Milliseconds) override {
        const auto& message = script_.at(next_++);
        const std::size_t n = std::min(buffer.size(), message.size());
        std::memcpy(buffer.data(), message.data(), n);
        readAt_ = std::chrono::steady_clock::now();
        return n;
    }
    void bulkOut(std::span<const std::uint8_t> chunk, rpiboot::Milliseconds) override {
        bytes += chunk.size();
    }
    std::vector<double> latencies;  // microseconds
    std::uint64_t bytes = 0;

  private:
    std::vector<std::array<std::uint8_t, rpiboot::kFileRequestSize>> script_;
    std::size_t next_ = 0;
    std::optional<std::chrono::steady_clock::time_point> readAt_;
};

class PostingObserver final : public rpiboot::BootObserver {
  public:
    PostingObserver() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
    ~PostingObserver() override { ::close(fd_); }
    PostingObserver(const PostingObserver&) = delete;
    PostingObserver& operator=(const PostingObserver&) = delete;

    void onTransferStarted(std::string_view name, std::uint64_t size) override {
        current_ = std::string(name);
        last_ = std::chrono::steady_clock::now();
        post([n = current_, size] { benchmark::DoNotOptimize(n.size() + size); });
    }
    void onTransferProgress(std::uint64_t sent, std::uint64_t total) override {
        const auto now = std::chrono::steady_clock::now();
        if (sent < total && now - last_ < std::chrono::milliseconds(100)) {
            return;
        }
        last_ = now;
        post([n = current_, sent] { benchmark::DoNotOptimize(n.size() + sent); });
    }
    void onTransferFinished(std::string_view name, std::uint64_t size) override {
        post([n = std::string(name), size] { benchmark::DoNotOptimize(n.size() + size); });
    }
    void drain() {
        std::lock_guard lock(mutex_);
        queue_.clear();
        std::uint64_t value = 0;
        [[maybe_unused]] const auto n = ::read(fd_, &value, sizeof value);
    }

  private:
    void post(std::function<void()> work) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(work));
        }
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);
    }
    int fd_;
    std::mutex mutex_;
    std::deque<std::function<void()>> queue_;
    std::string current_;
    std::chrono::steady_clock::time_point last_{};
};

void BM_RequestToReply(benchmark::State& state) {
    auto& fw = scratch();
    const rpiboot::BoardContext board{rpiboot::Chip::Bcm2711, "1-1", "af04b2da"};
    TimingTransport transport({request(0, "config.txt"), request(1, "config.txt"),
                               request(0, "pieeprom.sig"), request(0, "start4.elf"),
                               request(1, "start4.elf"), request(0, "fixup4.dat"), request(0, "")});
    PostingObserver observer;
    rpiboot::Link link(transport, rpiboot::TransferTimeouts{});
    transport.latencies.reserve(1 << 20);
    for (auto _ : state) {
        rpiboot::BoardFileSource source(fw.set(), board);
        transport.reset();
        rpiboot::FileServer server(link, source, &observer);
        const auto result = server.run();
        benchmark::DoNotOptimize(result.bytesSent);
        observer.drain();
    }
    auto l = transport.latencies;
    if (l.empty()) {
        return;
    }
    std::sort(l.begin(), l.end());
    const auto at = [&](double q) {
        return l[std::min(l.size() - 1,
                          static_cast<std::size_t>(q * static_cast<double>(l.size())))];
    };
    state.counters["requests"] = static_cast<double>(l.size());
    state.counters["mean_us"] =
        std::accumulate(l.begin(), l.end(), 0.0) / static_cast<double>(l.size());
    state.counters["p50_us"] = at(0.50);
    state.counters["p99_us"] = at(0.99);
    state.counters["max_us"] = l.back();
}
BENCHMARK(BM_RequestToReply)->Unit(benchmark::kMicrosecond);

// For scale: copying the same file once, what a per-request copy would cost.
void BM_MemcpyReference(benchmark::State& state) {
    const auto bytes = patternBytes(kStartElfSize, 9);
    std::vector<std::uint8_t> out(bytes.size());
    for (auto _ : state) {
        std::memcpy(out.data(), bytes.data(), bytes.size());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(bytes.size()));
}
BENCHMARK(BM_MemcpyReference)->Unit(benchmark::kMicrosecond);

void BM_ResolveHit(benchmark::State& state) {
    auto& fw = scratch();
    const rpiboot::BoardContext board{rpiboot::Chip::Bcm2711, "1-1", "af04b2da"};
    for (auto _ : state) {
        auto lookup = fw.set().resolve("start4.elf", board);
        benchmark::DoNotOptimize(lookup);
    }
}
BENCHMARK(BM_ResolveHit);

void BM_ResolveMissing(benchmark::State& state) {
    auto& fw = scratch();
    const rpiboot::BoardContext board{rpiboot::Chip::Bcm2711, "1-1", "af04b2da"};
    for (auto _ : state) {
        auto lookup = fw.set().resolve("fixup4.dat", board);
        benchmark::DoNotOptimize(lookup);
    }
}
BENCHMARK(BM_ResolveMissing);

void BM_ResolveRefusedName(benchmark::State& state) {
    auto& fw = scratch();
    const rpiboot::BoardContext board{rpiboot::Chip::Bcm2711, "1-1", "af04b2da"};
    for (auto _ : state) {
        auto lookup = fw.set().resolve("../../etc/shadow", board);
        benchmark::DoNotOptimize(lookup);
    }
}
BENCHMARK(BM_ResolveRefusedName);

void BM_RequestNameCheck(benchmark::State& state) {
    const std::string name = "overlays/dwc2.dtbo";
    for (auto _ : state) {
        auto refusal = rpiboot::requestNameRefusal(name);
        benchmark::DoNotOptimize(refusal);
    }
}
BENCHMARK(BM_RequestNameCheck);

void BM_FileCacheHit(benchmark::State& state) {
    auto& fw = scratch();
    const auto path = fw.root() / "2711/start4.elf";
    auto first = fw.cache().readPath(path, std::uint64_t{1} << 30);  // warm
    for (auto _ : state) {
        auto bytes = fw.cache().readPath(path, std::uint64_t{1} << 30);
        benchmark::DoNotOptimize(bytes);
    }
}
BENCHMARK(BM_FileCacheHit);

// A ustar archive in memory laid out like bootfiles.bin: chip folders with
// the second-stage files.
void putOctal(std::uint8_t* field, std::size_t width, std::uint64_t value) {
    std::string digits(width - 1, '0');
    for (std::size_t i = width - 1; i-- > 0 && value != 0; value >>= 3) {
        digits[i] = static_cast<char>('0' + (value & 7));
    }
    std::memcpy(field, digits.data(), width - 1);
    field[width - 1] = 0;
}

std::vector<std::uint8_t> makeTar(const std::vector<std::pair<std::string, std::size_t>>& files) {
    std::vector<std::uint8_t> out;
    for (const auto& [name, size] : files) {
        std::array<std::uint8_t, rpiboot::kTarBlockSize> header{};
        std::memcpy(header.data(), name.data(), std::min(name.size(), std::size_t{99}));
        putOctal(header.data() + 100, 8, 0644);
        putOctal(header.data() + 108, 8, 0);
        putOctal(header.data() + 116, 8, 0);
        putOctal(header.data() + 124, 12, size);
        putOctal(header.data() + 136, 12, 0);
        header[156] = '0';
        std::memcpy(header.data() + 257, "ustar", 6);
        std::memcpy(header.data() + 263, "00", 2);
        std::memset(header.data() + 148, ' ', 8);
        const unsigned sum = std::accumulate(header.begin(), header.end(), 0u);
        putOctal(header.data() + 148, 7, sum);
        header[155] = ' ';
        out.insert(out.end(), header.begin(), header.end());
        const auto contents = patternBytes(size, static_cast<std::uint8_t>(name.size()));
        out.insert(out.end(), contents.begin(), contents.end());
        out.resize((out.size() + rpiboot::kTarBlockSize - 1) / rpiboot::kTarBlockSize *
                   rpiboot::kTarBlockSize);
    }
    out.resize(out.size() + 2 * rpiboot::kTarBlockSize);
    return out;
}

std::vector<std::pair<std::string, std::size_t>> bootfilesLayout() {
    std::vector<std::pair<std::string, std::size_t>> files;
    for (const char* chip : {"2711", "2712"}) {
        for (const char* name :
             {"bootcode4.bin", "bootmain", "config.txt", "mcb.bin", "memsys00.bin", "memsys01.bin",
              "memsys02.bin", "memsys03.bin", "memsys04.bin", "memsys05.bin", "memsys06.bin",
              "memsys07.bin", "memsys08.bin", "start4.elf", "fixup4.dat"}) {
            files.emplace_back(std::string(chip) + "/" + name, 4096);
        }
    }
    return files;
}

void BM_TarMemberLookup(benchmark::State& state) {
    const auto bytes = makeTar(bootfilesLayout());
    const rpiboot::TarArchive archive(bytes, "bench bootfiles.bin");
    for (auto _ : state) {
        const auto* member = archive.find("2711/MEMSYS05.BIN");
        benchmark::DoNotOptimize(member);
    }
}
BENCHMARK(BM_TarMemberLookup);

void BM_TarOpenAndIndex(benchmark::State& state) {
    const auto bytes = makeTar(bootfilesLayout());
    for (auto _ : state) {
        const rpiboot::TarArchive archive(bytes, "bench bootfiles.bin");
        benchmark::DoNotOptimize(archive.members().size());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(bytes.size()));
}
BENCHMARK(BM_TarOpenAndIndex)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
