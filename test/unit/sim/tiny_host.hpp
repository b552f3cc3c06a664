// A deliberately tiny host for the virtual-board tests: the two transfer
// primitives of docs/protocol.md §3 and a file-server loop, written straight from
// docs/protocol.md so the model is checked against the spec, not against the
// engine in lib/.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/transport.hpp"

namespace rpiboot::test {

using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

inline Bytes readFixture(const std::string& relative) {
    std::ifstream in(std::filesystem::path(RPIBOOT_FIXTURES_DIR) / relative, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

inline Bytes bytesOf(const std::string& text) {
    return Bytes(text.begin(), text.end());
}

inline Bytes pattern(std::size_t size, std::uint8_t seed = 1) {
    Bytes b(size);
    for (std::size_t i = 0; i < size; ++i) {
        b[i] = static_cast<std::uint8_t>(seed + i * 31 + (i >> 9));
    }
    return b;
}

struct Request {
    std::uint32_t command = 0;
    std::string name;
    std::size_t length = 0;
};

struct SessionResult {
    std::vector<Request> requests;
    std::map<std::string, std::string> metadata;
    std::string end;  // "empty-name", "done", "gone", "unknown-command"
};

class TinyHost {
  public:
    explicit TinyHost(rpiboot::Transport& t) : t_(t) {}

    void sendLength(std::uint32_t length) { t_.controlOutLength(length, 1000ms); }

    void write(const Bytes& data, std::size_t chunk = rpiboot::kBulkChunkSize) {
        sendLength(static_cast<std::uint32_t>(data.size()));
        for (std::size_t at = 0; at < data.size(); at += chunk) {
            const std::size_t n = std::min(chunk, data.size() - at);
            t_.bulkOut({data.data() + at, n}, 5000ms);
        }
    }

    Bytes read(std::size_t length, rpiboot::Milliseconds timeout = 20000ms) {
        Bytes buffer(length);
        buffer.resize(t_.controlIn(buffer, timeout));
        return buffer;
    }

    // ROM stage (docs/protocol.md §4): boot message, bootcode, status.
    std::uint32_t boot(const Bytes& bootcode, std::uint32_t announced,
                       const Bytes& signature = {}) {
        Bytes message(24, 0);
        for (int i = 0; i < 4; ++i) {
            message[i] = static_cast<std::uint8_t>(announced >> (8 * i));
        }
        std::copy(signature.begin(),
                  signature.begin() + std::min<std::size_t>(20, signature.size()),
                  message.begin() + 4);
        write(message);
        write(bootcode);
        const Bytes status = read(4);
        return static_cast<std::uint32_t>(status.at(0) | (status.at(1) << 8) |
                                          (status.at(2) << 16) | (status.at(3) << 24));
    }
    std::uint32_t boot(const Bytes& bootcode) {
        return boot(bootcode, static_cast<std::uint32_t>(bootcode.size()));
    }

    // Second stage (docs/protocol.md §5), serving `files` by name.
    SessionResult serve(const std::map<std::string, Bytes>& files) {
        SessionResult result;
        const Bytes* opened = nullptr;
        for (;;) {
            Bytes message;
            try {
                message = read(260);
            } catch (const rpiboot::Error& e) {
                if (e.code() == rpiboot::Errc::DeviceGone) {
                    result.end = "gone";
                    return result;
                }
                throw;
            }
            Request r;
            r.length = message.size();
            for (int i = 0; i < 4 && i < static_cast<int>(message.size()); ++i) {
                r.command |= static_cast<std::uint32_t>(message[i]) << (8 * i);
            }
            for (std::size_t i = 4; i < message.size() && message[i] != 0; ++i) {
                r.name.push_back(static_cast<char>(message[i]));
            }
            result.requests.push_back(r);
            if (r.name.empty()) {
                sendLength(0);
                result.end = "empty-name";
                return result;
            }
            if (r.name[0] == '*' && r.command != 2) {
                const auto star = r.name.find('*', 1);
                if (star != std::string::npos) {
                    result.metadata[r.name.substr(1, star - 1)] = r.name.substr(star + 1);
                }
                sendLength(0);
                continue;
            }
            if (r.command == 0) {
                const auto it = files.find(r.name);
                opened = it == files.end() ? nullptr : &it->second;
                sendLength(opened ? static_cast<std::uint32_t>(opened->size()) : 0);
            } else if (r.command == 1) {
                if (opened) {
                    write(*opened);
                } else {
                    sendLength(0);
                }
                opened = nullptr;
            } else if (r.command == 2) {
                result.end = "done";
                return result;
            } else {
                result.end = "unknown-command";
                return result;
            }
        }
    }

  private:
    rpiboot::Transport& t_;
};

}  // namespace rpiboot::test
