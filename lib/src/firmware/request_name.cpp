#include "rpiboot/firmware/request_name.hpp"

#include <algorithm>

namespace rpiboot {
namespace {

bool isPrintableAscii(char c) noexcept {
    const auto byte = static_cast<unsigned char>(c);
    return byte >= 0x20 && byte < 0x7f;
}

std::string describeByte(char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    const auto byte = static_cast<unsigned char>(c);
    std::string text = "0x";
    text += kHex[byte >> 4];
    text += kHex[byte & 0xf];
    return text;
}

}  // namespace

std::optional<std::string> requestNameRefusal(std::string_view name) {
    if (name.empty()) {
        return "the name is empty";
    }
    if (name.size() > kMaxRequestNameLength) {
        return "the name is " + std::to_string(name.size()) + " bytes long, over the limit of " +
               std::to_string(kMaxRequestNameLength);
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (name[i] == '\\') {
            return "the name contains a backslash at byte " + std::to_string(i);
        }
        if (!isPrintableAscii(name[i])) {
            return "the name contains the non-printable byte " + describeByte(name[i]) +
                   " at byte " + std::to_string(i);
        }
    }
    if (name.front() == '/') {
        return "the name is absolute (starts with '/')";
    }
    bool hasRealComponent = false;
    std::size_t start = 0;
    while (start <= name.size()) {
        const std::size_t end = std::min(name.find('/', start), name.size());
        const std::string_view component = name.substr(start, end - start);
        if (component == "..") {
            return "the name contains a '..' component";
        }
        if (!component.empty() && component != ".") {
            hasRealComponent = true;
        }
        start = end + 1;
    }
    if (!hasRealComponent) {
        return "the name names no file";
    }
    return std::nullopt;
}

bool isSafePathComponent(std::string_view component) noexcept {
    if (component.empty() || component == "." || component == "..") {
        return false;
    }
    return std::all_of(component.begin(), component.end(),
                       [](char c) { return isPrintableAscii(c) && c != '/' && c != '\\'; });
}

RequestName parseRequestNameField(std::span<const std::uint8_t> field) {
    RequestName result;
    const auto nul = std::find(field.begin(), field.end(), std::uint8_t{0});
    result.name.assign(field.begin(), nul);
    if (nul == field.end()) {
        result.refusal = "the name field has no NUL terminator within " +
                         std::to_string(field.size()) + " bytes";
        return result;
    }
    result.refusal = requestNameRefusal(result.name);
    return result;
}

}  // namespace rpiboot
