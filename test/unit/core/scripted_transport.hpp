// A Transport that plays back a device's answers and records what the host
// sent: for unit tests of the engine's protocol logic without a device model.
#pragma once

#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/transport.hpp"

namespace rpiboot::test {

struct ControlOut {
    std::uint32_t length;
};
struct BulkOut {
    std::vector<std::uint8_t> data;
};
using HostAction = std::variant<ControlOut, BulkOut>;

class ScriptedTransport final : public Transport {
  public:
    // Next control IN answer: these bytes (may be short), or an error.
    void answer(std::vector<std::uint8_t> bytes) { answers_.emplace_back(std::move(bytes)); }
    void answerError(Errc code) { answers_.emplace_back(code); }
    void request(std::int32_t command, const std::string& name) {
        std::vector<std::uint8_t> message(260, 0);
        std::memcpy(message.data(), &command, 4);
        std::memcpy(message.data() + 4, name.data(), std::min<std::size_t>(name.size(), 256));
        answer(std::move(message));
    }
    // Fail the n-th bulk OUT call (0-based) with `code`.
    void failBulkAt(std::size_t n, Errc code) { bulkFailure_ = {n, code}; }

    void controlOutLength(std::uint32_t length, Milliseconds /*timeout*/) override {
        actions.emplace_back(ControlOut{length});
    }
    std::size_t controlIn(std::span<std::uint8_t> buffer, Milliseconds /*timeout*/) override {
        if (answers_.empty()) {
            throw Error(Errc::DeviceGone, "script ended");
        }
        auto next = std::move(answers_.front());
        answers_.pop_front();
        if (auto* code = std::get_if<Errc>(&next)) {
            throw Error(*code, "scripted error");
        }
        const auto& bytes = std::get<std::vector<std::uint8_t>>(next);
        const std::size_t n = std::min(bytes.size(), buffer.size());
        std::memcpy(buffer.data(), bytes.data(), n);
        return n;
    }
    void bulkOut(std::span<const std::uint8_t> chunk, Milliseconds /*timeout*/) override {
        const std::size_t call = bulkCalls_++;
        if (bulkFailure_ && bulkFailure_->first == call) {
            throw Error(bulkFailure_->second, "scripted bulk failure");
        }
        actions.emplace_back(BulkOut{{chunk.begin(), chunk.end()}});
    }

    std::vector<HostAction> actions;

    std::vector<std::uint32_t> controlLengths() const {
        std::vector<std::uint32_t> out;
        for (const auto& a : actions) {
            if (auto* c = std::get_if<ControlOut>(&a)) {
                out.push_back(c->length);
            }
        }
        return out;
    }
    std::vector<std::uint8_t> bulkBytes() const {
        std::vector<std::uint8_t> out;
        for (const auto& a : actions) {
            if (auto* b = std::get_if<BulkOut>(&a)) {
                out.insert(out.end(), b->data.begin(), b->data.end());
            }
        }
        return out;
    }
    std::size_t bulkCalls() const { return bulkCalls_; }

  private:
    std::deque<std::variant<std::vector<std::uint8_t>, Errc>> answers_;
    std::optional<std::pair<std::size_t, Errc>> bulkFailure_;
    std::size_t bulkCalls_ = 0;
};

}  // namespace rpiboot::test
