#include "profile/json_reader.hpp"

#include <algorithm>
#include <cstdint>

#include "rpiboot/core/error.hpp"

namespace rpiboot::profile_detail {

namespace {

std::string typeName(const nlohmann::json& value) {
    if (value.is_number_integer()) {
        return "an integer";
    }
    if (value.is_number()) {
        return "a number";
    }
    if (value.is_string()) {
        return "a string";
    }
    if (value.is_boolean()) {
        return "a boolean";
    }
    if (value.is_array()) {
        return "an array";
    }
    if (value.is_object()) {
        return "an object";
    }
    return "null";
}

// RFC 6901 escaping of one reference token.
std::string escapeToken(std::string_view key) {
    std::string out;
    for (char c : key) {
        if (c == '~') {
            out += "~0";
        } else if (c == '/') {
            out += "~1";
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

nlohmann::json parseDocument(std::string_view text, std::string_view label) {
    try {
        return nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
        // e.what() reads "[json.exception.parse_error.101] parse error at line 3, column 5: ...";
        // a number too large for a double (1e999) is an out_of_range error, not a parse error.
        std::string what = e.what();
        const auto pos = what.find("] ");
        if (pos != std::string::npos) {
            what.erase(0, pos + 2);
        }
        throw Error(Errc::InvalidArgument, std::string(label) + ": not valid JSON: " + what);
    }
}

void fail(std::string_view label, std::string_view pointer, std::string_view reason) {
    const std::string where = pointer.empty() ? std::string("(top level)") : std::string(pointer);
    throw Error(Errc::InvalidArgument,
                std::string(label) + ": " + where + ": " + std::string(reason));
}

std::string appendPointer(std::string_view pointer, std::string_view key) {
    return std::string(pointer) + "/" + escapeToken(key);
}

std::filesystem::path resolveAgainst(const std::filesystem::path& base,
                                     const std::filesystem::path& path) {
    std::filesystem::path p = (path.is_absolute() ? path : base / path).lexically_normal();
    if (!p.has_filename() && p.has_relative_path()) {
        p = p.parent_path();
    }
    return p;
}

ObjectReader::ObjectReader(const nlohmann::json& value, std::string label, std::string pointer,
                           std::initializer_list<std::string_view> known)
    : value_(value), label_(std::move(label)), pointer_(std::move(pointer)) {
    if (!value_.is_object()) {
        fail(label_, pointer_, "expected an object, found " + typeName(value_));
    }
    for (const auto& item : value_.items()) {
        if (std::find(known.begin(), known.end(), item.key()) == known.end()) {
            fail(label_, pointerOf(item.key()), "unknown key (misspelt?)");
        }
    }
}

bool ObjectReader::has(std::string_view key) const {
    return value_.contains(key);
}

const nlohmann::json* ObjectReader::member(std::string_view key) const {
    const auto it = value_.find(key);
    return it == value_.end() ? nullptr : &*it;
}

std::optional<std::string> ObjectReader::string(std::string_view key, bool allowEmpty) {
    const nlohmann::json* v = member(key);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (!v->is_string()) {
        fail(label_, pointerOf(key), "expected a string, found " + typeName(*v));
    }
    std::string s = v->get<std::string>();
    if (s.empty() && !allowEmpty) {
        fail(label_, pointerOf(key), "must not be empty");
    }
    return s;
}

std::optional<bool> ObjectReader::boolean(std::string_view key) {
    const nlohmann::json* v = member(key);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (!v->is_boolean()) {
        fail(label_, pointerOf(key), "expected true or false, found " + typeName(*v));
    }
    return v->get<bool>();
}

std::optional<std::chrono::milliseconds> ObjectReader::milliseconds(std::string_view key,
                                                                    std::int64_t minimum,
                                                                    std::int64_t maximum) {
    const nlohmann::json* v = member(key);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (!v->is_number_integer()) {
        fail(label_, pointerOf(key),
             "expected a whole number of milliseconds, found " + typeName(*v));
    }
    const auto ms = v->get<std::int64_t>();
    if (ms < minimum || ms > maximum) {
        fail(label_, pointerOf(key),
             std::to_string(ms) + " is out of range (" + std::to_string(minimum) + " to " +
                 std::to_string(maximum) + " ms)");
    }
    return std::chrono::milliseconds(ms);
}

std::optional<std::int64_t> ObjectReader::integer(std::string_view key, std::int64_t minimum,
                                                  std::int64_t maximum) {
    const nlohmann::json* v = member(key);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (!v->is_number_integer()) {
        fail(label_, pointerOf(key), "expected a whole number, found " + typeName(*v));
    }
    const auto n = v->get<std::int64_t>();
    if (n < minimum || n > maximum) {
        fail(label_, pointerOf(key),
             std::to_string(n) + " is out of range (" + std::to_string(minimum) + " to " +
                 std::to_string(maximum) + ")");
    }
    return n;
}

std::optional<std::vector<std::string>> ObjectReader::stringArray(std::string_view key) {
    const nlohmann::json* v = member(key);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (!v->is_array()) {
        fail(label_, pointerOf(key), "expected an array of strings, found " + typeName(*v));
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v->size(); ++i) {
        const auto& item = (*v)[i];
        const std::string where = appendPointer(pointerOf(key), std::to_string(i));
        if (!item.is_string()) {
            fail(label_, where, "expected a string, found " + typeName(item));
        }
        if (item.get_ref<const std::string&>().empty()) {
            fail(label_, where, "must not be empty");
        }
        out.push_back(item.get<std::string>());
    }
    return out;
}

}  // namespace rpiboot::profile_detail
