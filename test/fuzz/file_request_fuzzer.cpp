// Fuzz target: the 260-byte request message and the checks on the name it
// carries (file_server.hpp parseFileRequest, request_name.hpp).
//
// Input: the message as the board sent it (shorter inputs are NUL-padded, as
// a field read from the wire would be). The whole input is also checked as a
// bare name of any length.
#include <algorithm>
#include <array>
#include <filesystem>

#include "fuzz_support.hpp"
#include "rpiboot/core/file_server.hpp"
#include "rpiboot/firmware/request_name.hpp"

namespace rpiboot::fuzz {
namespace {

std::int32_t le32(const std::array<std::uint8_t, kFileRequestSize>& message) {
    const std::uint32_t v = std::uint32_t{message[0]} | std::uint32_t{message[1]} << 8 |
                            std::uint32_t{message[2]} << 16 | std::uint32_t{message[3]} << 24;
    return static_cast<std::int32_t>(v);
}

// An accepted name must stay below the directory it is joined to, whatever
// the rule-by-rule check says: this is the property the rules exist for.
void checkStaysBelowRoot(std::string_view name) {
    const std::filesystem::path root = "/srv/rpiboot-root";
    const std::filesystem::path joined = (root / std::filesystem::path(name)).lexically_normal();
    const std::string text = joined.string();
    FUZZ_CHECK(text.rfind(root.string() + "/", 0) == 0,
               "accepted name leaves the root: " + std::string(name) + " -> " + text);
}

void checkNameRules(std::string_view name) {
    const auto refusal = requestNameRefusal(name);
    if (refusal) {
        FUZZ_CHECK(!refusal->empty(), "a refusal must say why");
        return;
    }
    FUZZ_CHECK(!name.empty() && name.size() <= kMaxRequestNameLength, std::string(name));
    FUZZ_CHECK(name.front() != '/', std::string(name));
    for (const char c : name) {
        const auto byte = static_cast<unsigned char>(c);
        FUZZ_CHECK(byte >= 0x20 && byte < 0x7f && c != '\\', std::string(name));
    }
    checkStaysBelowRoot(name);
}

void checkPathComponent(std::string_view component) {
    if (!isSafePathComponent(component)) {
        return;
    }
    FUZZ_CHECK(component != "." && component != ".." && !component.empty(), std::string(component));
    FUZZ_CHECK(component.find('/') == std::string_view::npos &&
                   component.find('\\') == std::string_view::npos,
               std::string(component));
    const std::filesystem::path base = "/srv/overlays";
    const auto joined = (base / std::filesystem::path(component)).lexically_normal();
    FUZZ_CHECK(joined.parent_path() == base, "component escapes its directory: " + joined.string());
}

}  // namespace

int fileRequestOne(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    std::array<std::uint8_t, kFileRequestSize> message{};
    std::copy_n(input.begin(), std::min(size, message.size()), message.begin());

    const FileRequest request = parseFileRequest(message);
    FUZZ_CHECK(request.command == le32(message), "command is the little-endian first word");

    const auto field = std::span<const std::uint8_t>(message).subspan(4, kFileNameFieldSize);
    const auto nul = std::find(field.begin(), field.end(), std::uint8_t{0});
    FUZZ_CHECK(request.terminated == (nul != field.end()), "terminated iff the field has a NUL");
    FUZZ_CHECK(request.name.size() == static_cast<std::size_t>(nul - field.begin()),
               "name ends at the first NUL (or fills the field)");
    FUZZ_CHECK(std::equal(request.name.begin(), request.name.end(), field.begin(),
                          [](char c, std::uint8_t b) { return static_cast<std::uint8_t>(c) == b; }),
               "name is the field's bytes");

    const RequestName checked = parseRequestNameField(field);
    FUZZ_CHECK(checked.name == request.name, "both parsers cut the name at the same place");
    FUZZ_CHECK(checked.refusal.has_value() ==
                   (!request.terminated || requestNameRefusal(request.name).has_value()),
               "a field is refused iff it lacks a NUL or its name is refused");
    if (request.terminated) {
        checkNameRules(request.name);
    }

    // The raw input as a name of any length, and as a directory component.
    const std::string_view text = asText(input);
    checkNameRules(text);
    checkPathComponent(text);
    const RequestName whole = parseRequestNameField(input);
    FUZZ_CHECK(whole.name.size() <= size, "name never longer than its field");
    return 0;
}

}  // namespace rpiboot::fuzz

RPIBOOT_FUZZ_ENTRY(fileRequestOne)
