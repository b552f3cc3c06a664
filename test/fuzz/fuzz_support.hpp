// Shared pieces of the fuzz targets (test/fuzz): invariant checks that turn a
// broken promise into a crash, a reader that carves typed values out of the
// fuzzer's bytes, and the entry points the regression runner replays.
//
// A fuzz target must stay deterministic for a given input and must never let
// an expected rpiboot::Error count as a crash; anything else escaping (another
// exception type, a failed FUZZ_CHECK, a sanitizer report) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

// Aborts with the failed condition and a line of context, so libFuzzer (or the
// replay runner) reports the input as a crash.
#define FUZZ_CHECK(condition, context)                                               \
    do {                                                                             \
        if (!(condition)) {                                                          \
            ::rpiboot::fuzz::checkFailed(__FILE__, __LINE__, #condition, (context)); \
        }                                                                            \
    } while (false)

namespace rpiboot::fuzz {

[[noreturn]] inline void checkFailed(const char* file, int line, const char* condition,
                                     std::string_view context) {
    std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n  %.*s\n", file, line, condition,
                 static_cast<int>(context.size()), context.data());
    std::abort();
}

// Consumes the fuzzer's bytes front to back; past the end every read yields
// zeros or an empty string, so a target never needs to check what is left.
class FuzzInput {
  public:
    explicit FuzzInput(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

    bool empty() const noexcept { return bytes_.empty(); }
    std::size_t remaining() const noexcept { return bytes_.size(); }

    std::uint8_t byte() {
        if (bytes_.empty()) {
            return 0;
        }
        const std::uint8_t value = bytes_.front();
        bytes_ = bytes_.subspan(1);
        return value;
    }

    // Up to `count` bytes (fewer when the input runs out).
    std::span<const std::uint8_t> take(std::size_t count) {
        const std::size_t n = count < bytes_.size() ? count : bytes_.size();
        const auto taken = bytes_.first(n);
        bytes_ = bytes_.subspan(n);
        return taken;
    }

    // Bytes up to (not including) the next `separator`, which is consumed.
    std::string until(std::uint8_t separator) {
        std::string text;
        while (!bytes_.empty()) {
            const std::uint8_t b = byte();
            if (b == separator) {
                break;
            }
            text.push_back(static_cast<char>(b));
        }
        return text;
    }

    std::string rest() {
        const auto all = take(bytes_.size());
        return std::string(all.begin(), all.end());
    }

  private:
    std::span<const std::uint8_t> bytes_;
};

inline std::string_view asText(std::span<const std::uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// One function per target, so the regression runner can link them all into
// one program; each target's source also defines LLVMFuzzerTestOneInput for
// libFuzzer unless RPIBOOT_FUZZ_REPLAY is set.
int fileRequestOne(const std::uint8_t* data, std::size_t size);
int fileServerOne(const std::uint8_t* data, std::size_t size);
int tarArchiveOne(const std::uint8_t* data, std::size_t size);
int nameResolutionOne(const std::uint8_t* data, std::size_t size);
int metadataOne(const std::uint8_t* data, std::size_t size);
int profileConfigOne(const std::uint8_t* data, std::size_t size);

}  // namespace rpiboot::fuzz

#ifdef RPIBOOT_FUZZ_REPLAY
#define RPIBOOT_FUZZ_ENTRY(function)
#else
// The libFuzzer entry point of a target whose work is done by `function`.
#define RPIBOOT_FUZZ_ENTRY(function)                                                    \
    extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
        return ::rpiboot::fuzz::function(data, size);                                   \
    }
#endif
