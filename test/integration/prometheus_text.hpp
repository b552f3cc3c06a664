// A strict reader of the Prometheus text exposition format (0.0.4), for the
// tests of rpibootd's metrics file: anything a scraper could trip over is an
// error that names the line.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace rpiboot::test {

struct PromFile {
    // "name{a=\"x\",b=\"y\"}" (labels as written) -> value
    std::map<std::string, double> samples;
    std::map<std::string, std::string> types;  // family -> counter/gauge/histogram/...
    std::string error;                         // empty: the file is valid

    double value(const std::string& series) const {
        const auto it = samples.find(series);
        return it == samples.end() ? NAN : it->second;
    }
    // Sum of every sample of `name` whose labels contain `labelPart`.
    double sum(const std::string& name, const std::string& labelPart = "") const {
        double total = 0;
        for (const auto& [series, v] : samples) {
            const auto brace = series.find('{');
            const std::string n = series.substr(0, brace);
            if (n == name && (labelPart.empty() || series.find(labelPart) != std::string::npos)) {
                total += v;
            }
        }
        return total;
    }
};

namespace prom_detail {

inline bool isNameStart(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
inline bool isNameChar(char c) {
    return isNameStart(c) || std::isdigit(static_cast<unsigned char>(c));
}
inline bool validName(const std::string& n, bool label) {
    if (n.empty() || !(label ? (std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')
                             : isNameStart(n[0]))) {
        return false;
    }
    for (char c : n) {
        if (!isNameChar(c) || (label && c == ':')) {
            return false;
        }
    }
    return true;
}
inline bool parseValue(const std::string& text, double& out) {
    if (text == "+Inf" || text == "Inf") {
        out = INFINITY;
        return true;
    }
    if (text == "-Inf") {
        out = -INFINITY;
        return true;
    }
    if (text == "NaN") {
        out = NAN;
        return true;
    }
    char* end = nullptr;
    out = std::strtod(text.c_str(), &end);
    return !text.empty() && end == text.c_str() + text.size();
}
// The family a sample belongs to (histogram suffixes stripped).
inline std::string familyOf(const std::string& name,
                            const std::map<std::string, std::string>& types) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s = suffix;
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
            const std::string base = name.substr(0, name.size() - s.size());
            const auto it = types.find(base);
            if (it != types.end() && (it->second == "histogram" || it->second == "summary")) {
                return base;
            }
        }
    }
    return name;
}

}  // namespace prom_detail

inline PromFile parsePrometheusText(const std::string& text) {
    using namespace prom_detail;
    PromFile f;
    if (text.empty() || text.back() != '\n') {
        f.error = "the file does not end with a newline";
        return f;
    }
    std::istringstream in(text);
    std::string line;
    int number = 0;
    std::set<std::string> helped;
    std::set<std::string> finishedFamilies;
    std::string currentFamily;
    // histogram checks: series without le -> last bucket value, +Inf, count
    std::map<std::string, double> lastBucket;
    std::map<std::string, double> infBucket;
    const auto fail = [&](const std::string& why) {
        f.error = "line " + std::to_string(number) + ": " + why + ": " + line;
    };
    while (std::getline(in, line)) {
        ++number;
        if (line.empty()) {
            fail("empty line");
            return f;
        }
        if (line[0] == '#') {
            std::istringstream words(line);
            std::string hash, kind, name;
            words >> hash >> kind >> name;
            if (kind != "HELP" && kind != "TYPE") {
                continue;  // a plain comment
            }
            if (!validName(name, false)) {
                fail("bad metric name");
                return f;
            }
            if (kind == "HELP") {
                if (!helped.insert(name).second) {
                    fail("second HELP");
                    return f;
                }
                continue;
            }
            std::string type, extra;
            words >> type >> extra;
            if (!extra.empty() || (type != "counter" && type != "gauge" && type != "histogram" &&
                                   type != "summary" && type != "untyped")) {
                fail("bad TYPE");
                return f;
            }
            if (f.types.count(name) != 0 || finishedFamilies.count(name) != 0 ||
                name == currentFamily) {
                fail("TYPE after its samples or twice");
                return f;
            }
            f.types[name] = type;
            continue;
        }
        // name{labels} value [timestamp]
        std::size_t i = 0;
        while (i < line.size() && isNameChar(line[i])) {
            ++i;
        }
        const std::string name = line.substr(0, i);
        if (!validName(name, false)) {
            fail("bad metric name");
            return f;
        }
        std::string labels;
        std::string le;
        std::set<std::string> labelNames;
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (i < line.size() && line[i] != '}') {
                const std::size_t start = i;
                while (i < line.size() && line[i] != '=') {
                    ++i;
                }
                const std::string label = line.substr(start, i - start);
                if (!validName(label, true) || !labelNames.insert(label).second) {
                    fail("bad or repeated label name '" + label + "'");
                    return f;
                }
                if (i + 1 >= line.size() || line[i + 1] != '"') {
                    fail("label value not quoted");
                    return f;
                }
                i += 2;
                std::string value;
                while (i < line.size() && line[i] != '"') {
                    if (line[i] == '\\') {
                        if (i + 1 >= line.size() ||
                            (line[i + 1] != '\\' && line[i + 1] != '"' && line[i + 1] != 'n')) {
                            fail("bad escape in a label value");
                            return f;
                        }
                        value += line[i + 1] == 'n' ? '\n' : line[i + 1];
                        i += 2;
                        continue;
                    }
                    value += line[i++];
                }
                if (i >= line.size()) {
                    fail("unterminated label value");
                    return f;
                }
                ++i;  // closing quote
                if (label == "le") {
                    le = value;
                } else {
                    labels += (labels.empty() ? "" : ",") + label + "=\"" + value + "\"";
                }
                if (i < line.size() && line[i] == ',') {
                    ++i;
                } else if (i < line.size() && line[i] != '}') {
                    fail("expected , or }");
                    return f;
                }
            }
            if (i >= line.size()) {
                fail("unterminated label set");
                return f;
            }
            ++i;  // }
        }
        if (i >= line.size() || line[i] != ' ') {
            fail("expected a space before the value");
            return f;
        }
        std::istringstream rest(line.substr(i + 1));
        std::string valueText, timestamp, extra;
        rest >> valueText >> timestamp >> extra;
        double value = 0;
        if (!parseValue(valueText, value) || !extra.empty()) {
            fail("bad value");
            return f;
        }
        const std::string family = familyOf(name, f.types);
        if (family != currentFamily) {
            if (finishedFamilies.count(family) != 0) {
                fail("samples of " + family + " are not together");
                return f;
            }
            if (!currentFamily.empty()) {
                finishedFamilies.insert(currentFamily);
            }
            currentFamily = family;
        }
        const auto type = f.types.find(family);
        if (type == f.types.end()) {
            fail("sample without a TYPE");
            return f;
        }
        if (type->second == "counter" && (value < 0 || std::isnan(value))) {
            fail("negative counter");
            return f;
        }
        if (type->second == "histogram") {
            const std::string key = family + "{" + labels + "}";
            if (name == family + "_bucket") {
                double bound = 0;
                if (le.empty() || !parseValue(le, bound)) {
                    fail("bucket without a valid le");
                    return f;
                }
                if (lastBucket.count(key) != 0 && value < lastBucket[key]) {
                    fail("buckets are not cumulative");
                    return f;
                }
                lastBucket[key] = value;
                if (std::isinf(bound)) {
                    infBucket[key] = value;
                }
            } else if (name == family + "_count") {
                if (infBucket.count(key) == 0 || infBucket[key] != value) {
                    fail("_count differs from the +Inf bucket (or it is missing)");
                    return f;
                }
            } else if (name != family + "_sum") {
                fail("not a histogram series");
                return f;
            }
        } else if (!le.empty()) {
            labels += (labels.empty() ? "" : ",") + std::string("le=\"") + le + "\"";
        }
        std::string series = name + (labels.empty() ? "" : "{" + labels + "}");
        if (!le.empty() && type->second == "histogram") {
            series = name + "{" + labels + (labels.empty() ? "" : ",") + "le=\"" + le + "\"}";
        }
        if (!f.samples.emplace(series, value).second) {
            fail("duplicate series");
            return f;
        }
    }
    return f;
}

}  // namespace rpiboot::test
