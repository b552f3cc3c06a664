#include "rpiboot/storage/bmap.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "digest.hpp"
#include "rpiboot/core/error.hpp"

namespace rpiboot::storage {
namespace {

// A minimal XML element: what the bmap format uses (elements, attributes,
// text, comments, the XML declaration) and nothing else.
struct Element {
    std::string name;
    std::map<std::string, std::string> attributes;
    std::string text;  // the element's own character data, entities decoded
    std::vector<std::unique_ptr<Element>> children;
    std::size_t line = 0;
    std::size_t textBegin = 0, textEnd = 0;  // raw span of the text, for the file checksum
};

class XmlReader {
  public:
    XmlReader(std::string_view text, std::string_view name) : s_(text), name_(name) {}

    std::unique_ptr<Element> document() {
        skipMisc(true);
        if (!at("<") || at("</")) {
            fail("expected the root element");
        }
        auto root = element();
        skipMisc(false);
        if (pos_ != s_.size()) {
            fail("unexpected content after the root element");
        }
        return root;
    }

    [[noreturn]] void fail(const std::string& what) const { failAt(line(pos_), what); }
    [[noreturn]] void failAt(std::size_t lineNo, const std::string& what) const {
        throw Error(Errc::Corrupt,
                    "bmap file " + name_ + ", line " + std::to_string(lineNo) + ": " + what);
    }

  private:
    bool at(std::string_view t) const { return s_.substr(pos_).starts_with(t); }
    std::size_t line(std::size_t pos) const {
        return 1 + static_cast<std::size_t>(std::count(s_.begin(), s_.begin() + pos, '\n'));
    }
    static bool space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
    void skipSpace() {
        while (pos_ < s_.size() && space(s_[pos_])) {
            ++pos_;
        }
    }
    void skipPast(std::string_view end, const char* what) {
        const auto e = s_.find(end, pos_);
        if (e == std::string_view::npos) {
            fail(std::string("unterminated ") + what);
        }
        pos_ = e + end.size();
    }
    // Whitespace, comments and (before the root) the XML declaration.
    void skipMisc(bool prolog) {
        for (;;) {
            skipSpace();
            if (at("<!--")) {
                skipPast("-->", "comment");
            } else if (prolog && at("<?xml")) {
                skipPast("?>", "XML declaration");
            } else if (at("<!") || at("<?")) {
                fail("unsupported markup (DOCTYPE, CDATA or processing instruction)");
            } else {
                return;
            }
        }
    }
    std::string nameToken() {
        const std::size_t b = pos_;
        while (pos_ < s_.size() &&
               (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_' ||
                s_[pos_] == '-' || s_[pos_] == '.' || s_[pos_] == ':')) {
            ++pos_;
        }
        if (b == pos_) {
            fail("expected a name");
        }
        return std::string(s_.substr(b, pos_ - b));
    }
    std::string decode(std::string_view raw) const {
        std::string out;
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] == '<') {
                fail("'<' inside a value");
            }
            if (raw[i] != '&') {
                out.push_back(raw[i]);
                continue;
            }
            const auto semi = raw.find(';', i);
            if (semi == std::string_view::npos) {
                fail("unterminated entity");
            }
            const auto ent = raw.substr(i + 1, semi - i - 1);
            static const std::map<std::string_view, char> kEntities{
                {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
            const auto it = kEntities.find(ent);
            if (it == kEntities.end()) {
                fail("unknown entity &" + std::string(ent) + ";");
            }
            out.push_back(it->second);
            i = semi;
        }
        return out;
    }
    std::unique_ptr<Element> element() {
        auto el = std::make_unique<Element>();
        el->line = line(pos_);
        ++pos_;  // '<'
        el->name = nameToken();
        for (;;) {
            skipSpace();
            if (at("/>")) {
                pos_ += 2;
                return el;
            }
            if (at(">")) {
                ++pos_;
                break;
            }
            const std::string attr = nameToken();
            skipSpace();
            if (!at("=")) {
                fail("expected '=' after attribute " + attr);
            }
            ++pos_;
            skipSpace();
            if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) {
                fail("expected a quoted value for attribute " + attr);
            }
            const char q = s_[pos_++];
            const auto e = s_.find(q, pos_);
            if (e == std::string_view::npos) {
                fail("unterminated value of attribute " + attr);
            }
            if (!el->attributes.emplace(attr, decode(s_.substr(pos_, e - pos_))).second) {
                fail("attribute " + attr + " given twice");
            }
            pos_ = e + 1;
        }
        // Content: text, comments and child elements, up to the end tag.
        el->textBegin = pos_;
        for (;;) {
            if (pos_ >= s_.size()) {
                failAt(el->line, "element <" + el->name + "> is not closed");
            }
            if (at("<!--")) {
                skipPast("-->", "comment");
            } else if (at("</")) {
                pos_ += 2;
                const std::string end = nameToken();
                if (end != el->name) {
                    fail("</" + end + "> closes <" + el->name + ">");
                }
                skipSpace();
                if (!at(">")) {
                    fail("expected '>'");
                }
                ++pos_;
                return el;
            } else if (at("<!") || at("<?")) {
                fail("unsupported markup inside <" + el->name + ">");
            } else if (at("<")) {
                el->children.push_back(element());
            } else {
                const auto e = std::min(s_.find('<', pos_), s_.size());
                if (el->text.empty()) {
                    el->textBegin = pos_;
                }
                el->textEnd = e;
                el->text += decode(s_.substr(pos_, e - pos_));
                pos_ = e;
            }
        }
    }

    std::string_view s_;
    std::string name_;
    std::size_t pos_ = 0;
};

std::string trim(std::string_view v) {
    const auto b = v.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) {
        return {};
    }
    const auto e = v.find_last_not_of(" \t\r\n");
    return std::string(v.substr(b, e - b + 1));
}

bool parseU64(std::string_view v, std::uint64_t& out) {
    if (v.empty()) {
        return false;
    }
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc() && p == v.data() + v.size();
}

bool isHex(std::string_view v, std::size_t len) {
    return v.size() == len && std::all_of(v.begin(), v.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string lower(std::string v) {
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return v;
}

}  // namespace

std::uint64_t Bmap::rangeLength(const BmapRange& r) const {
    const std::uint64_t begin = r.first * blockSize;
    const std::uint64_t end = std::min((r.last + 1) * blockSize, imageSize);
    return end > begin ? end - begin : 0;
}

std::uint64_t Bmap::mappedBytes() const {
    std::uint64_t total = 0;
    for (const auto& r : ranges) {
        total += rangeLength(r);
    }
    return total;
}

Bmap parseBmap(std::string_view text, std::string_view name) {
    XmlReader xml(text, name);
    const auto root = xml.document();
    if (root->name != "bmap") {
        xml.failAt(root->line, "the root element is <" + root->name + ">, not <bmap>");
    }
    Bmap bmap;
    const auto version = root->attributes.find("version");
    if (version == root->attributes.end()) {
        xml.failAt(root->line, "<bmap> has no version attribute");
    }
    bmap.version = trim(version->second);
    const auto dot = bmap.version.find('.');
    std::uint64_t major = 0, minor = 0;
    if (dot == std::string::npos || !parseU64(bmap.version.substr(0, dot), major) ||
        !parseU64(bmap.version.substr(dot + 1), minor) || major < 1 || major > 2) {
        xml.failAt(root->line, "unsupported bmap version \"" + bmap.version + "\"");
    }
    bmap.checksumType = major == 1 ? ChecksumType::Sha1 : ChecksumType::Sha256;

    std::map<std::string, const Element*> fields;
    const Element* blockMap = nullptr;
    for (const auto& child : root->children) {
        if (child->name == "BlockMap") {
            if (blockMap != nullptr) {
                xml.failAt(child->line, "more than one <BlockMap>");
            }
            blockMap = child.get();
        } else if (!fields.emplace(child->name, child.get()).second) {
            xml.failAt(child->line, "<" + child->name + "> given twice");
        }
    }
    const auto number = [&](const char* field, std::uint64_t& out) {
        const auto it = fields.find(field);
        if (it == fields.end()) {
            xml.failAt(root->line, std::string("missing <") + field + ">");
        }
        if (!parseU64(trim(it->second->text), out)) {
            xml.failAt(it->second->line, std::string("<") + field + "> is not a number: \"" +
                                             trim(it->second->text) + "\"");
        }
    };
    number("ImageSize", bmap.imageSize);
    number("BlockSize", bmap.blockSize);
    number("BlocksCount", bmap.blocksCount);
    number("MappedBlocksCount", bmap.mappedBlocksCount);
    if (bmap.blockSize == 0 || bmap.blockSize > (1u << 30)) {
        xml.failAt(fields["BlockSize"]->line,
                   "BlockSize " + std::to_string(bmap.blockSize) + " is out of range");
    }
    if (bmap.blocksCount != (bmap.imageSize + bmap.blockSize - 1) / bmap.blockSize) {
        xml.failAt(fields["BlocksCount"]->line,
                   "BlocksCount " + std::to_string(bmap.blocksCount) +
                       " does not match ImageSize " + std::to_string(bmap.imageSize) +
                       " / BlockSize " + std::to_string(bmap.blockSize));
    }
    if (const auto it = fields.find("ChecksumType"); it != fields.end()) {
        const std::string type = lower(trim(it->second->text));
        if (type == "sha256") {
            bmap.checksumType = ChecksumType::Sha256;
        } else if (type == "sha1") {
            bmap.checksumType = ChecksumType::Sha1;
        } else {
            xml.failAt(it->second->line, "unsupported ChecksumType \"" + type + "\"");
        }
    } else if (major >= 2) {
        xml.failAt(root->line, "missing <ChecksumType>");
    }
    const std::size_t hexLen = bmap.checksumType == ChecksumType::Sha256 ? 64 : 40;

    // The file's own checksum: over the file with its value replaced by zeros.
    const Element* fileSum = nullptr;
    for (const char* f : {"BmapFileChecksum", "BmapFileSHA1"}) {
        if (const auto it = fields.find(f); it != fields.end()) {
            fileSum = it->second;
        }
    }
    if (fileSum != nullptr) {
        const std::string expected = lower(trim(fileSum->text));
        if (!isHex(expected, hexLen)) {
            xml.failAt(fileSum->line, "malformed <" + fileSum->name + ">");
        }
        std::string copy(text);
        const auto at = copy.find(expected, fileSum->textBegin);
        if (at == std::string::npos || at >= fileSum->textEnd) {
            xml.failAt(fileSum->line, "malformed <" + fileSum->name + ">");
        }
        copy.replace(at, expected.size(), std::string(expected.size(), '0'));
        Digest d(bmap.checksumType == ChecksumType::Sha256 ? Digest::Kind::Sha256
                                                           : Digest::Kind::Sha1);
        d.update(reinterpret_cast<const std::uint8_t*>(copy.data()), copy.size());
        if (d.finishHex() != expected) {
            xml.failAt(fileSum->line, "the file's checksum does not match its contents");
        }
    }

    if (blockMap == nullptr) {
        xml.failAt(root->line, "missing <BlockMap>");
    }
    const char* attr =
        major == 1 && bmap.checksumType == ChecksumType::Sha1 && minor < 4 ? "sha1" : "chksum";
    std::uint64_t mapped = 0;
    for (const auto& r : blockMap->children) {
        if (r->name != "Range") {
            xml.failAt(r->line, "unexpected <" + r->name + "> in <BlockMap>");
        }
        const std::string spec = trim(r->text);
        BmapRange range;
        const auto dash = spec.find('-');
        const bool ok = dash == std::string::npos
                            ? parseU64(spec, range.first) && (range.last = range.first, true)
                            : parseU64(spec.substr(0, dash), range.first) &&
                                  parseU64(spec.substr(dash + 1), range.last);
        if (!ok || range.last < range.first) {
            xml.failAt(r->line, "malformed range \"" + spec + "\"");
        }
        if (range.last >= bmap.blocksCount) {
            xml.failAt(r->line, "range " + spec + " is beyond the image's " +
                                    std::to_string(bmap.blocksCount) + " blocks");
        }
        if (!bmap.ranges.empty() && range.first <= bmap.ranges.back().last) {
            xml.failAt(r->line, "range " + spec + " overlaps or precedes the previous one");
        }
        auto sum = r->attributes.find(attr);
        if (sum == r->attributes.end()) {
            sum = r->attributes.find(attr == std::string_view("sha1") ? "chksum" : "sha1");
        }
        if (sum == r->attributes.end() || !isHex(lower(trim(sum->second)), hexLen)) {
            xml.failAt(r->line, "range " + spec + " has no valid " + attr + " attribute");
        }
        for (const auto& [k, v] : r->attributes) {
            if (k != "chksum" && k != "sha1") {
                xml.failAt(r->line, "unexpected attribute " + k + " on <Range>");
            }
        }
        range.checksum = lower(trim(sum->second));
        mapped += range.last - range.first + 1;
        bmap.ranges.push_back(std::move(range));
    }
    if (mapped != bmap.mappedBlocksCount) {
        xml.failAt(fields["MappedBlocksCount"]->line,
                   "MappedBlocksCount " + std::to_string(bmap.mappedBlocksCount) +
                       " does not match the ranges' " + std::to_string(mapped) + " blocks");
    }
    return bmap;
}

Bmap loadBmap(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw Error(Errc::NotFound, "cannot open bmap file " + path.string());
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (ss.str().size() > (64u << 20)) {
        throw Error(Errc::TooLarge, "bmap file " + path.string() + " is larger than 64 MiB");
    }
    return parseBmap(ss.str(), path.string());
}

}  // namespace rpiboot::storage
