// Recursive descent over the document with explicit bounds; every failure names the offset.
#include "src/s3/xml.hpp"

#include <cstdint>

#include "src/util/number.hpp"

namespace wharf::s3 {

const XmlNode* XmlNode::child(std::string_view n) const {
  for (const XmlNode& c : children)
    if (c.name == n) return &c;
  return nullptr;
}

std::string_view XmlNode::child_text(std::string_view n) const {
  const XmlNode* c = child(n);
  return c == nullptr ? std::string_view() : std::string_view(c->text);
}

std::vector<const XmlNode*> XmlNode::all(std::string_view n) const {
  std::vector<const XmlNode*> out;
  for (const XmlNode& c : children)
    if (c.name == n) out.push_back(&c);
  return out;
}

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_name_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '_' || u == '-' ||
         u == '.' || u == ':' || u >= 0x80;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  Parser(std::string_view doc, const XmlLimits& limits) : s_(doc), limits_(limits) {}

  std::expected<XmlNode, std::string> document() {
    if (s_.size() > limits_.max_bytes) return fail("document larger than " + std::to_string(limits_.max_bytes) + " bytes");
    if (s_.starts_with("\xEF\xBB\xBF")) pos_ = 3;
    if (auto r = misc(); !r) return std::unexpected(r.error());
    if (pos_ >= s_.size() || s_[pos_] != '<') return fail("expected the root element");
    XmlNode root;
    if (auto r = element(root, 1); !r) return std::unexpected(r.error());
    if (auto r = misc(); !r) return std::unexpected(r.error());
    if (pos_ != s_.size()) return fail("content after the root element");
    return root;
  }

 private:
  using Step = std::expected<void, std::string>;

  std::unexpected<std::string> fail(const std::string& what) const {
    return std::unexpected("malformed XML at byte " + std::to_string(pos_) + ": " + what);
  }

  void skip_space() {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }

  // Skips past `end` (which must occur); fails naming `what` if it does not.
  Step skip_past(std::string_view end, const char* what) {
    const size_t at = s_.find(end, pos_);
    if (at == std::string_view::npos) return fail(std::string("unterminated ") + what);
    pos_ = at + end.size();
    return {};
  }

  // Whitespace, comments and processing instructions around the root; a DOCTYPE is refused.
  Step misc() {
    while (true) {
      skip_space();
      if (s_.substr(pos_).starts_with("<?")) {
        if (auto r = skip_past("?>", "processing instruction"); !r) return r;
      } else if (s_.substr(pos_).starts_with("<!--")) {
        if (auto r = skip_past("-->", "comment"); !r) return r;
      } else if (s_.substr(pos_).starts_with("<!")) {
        return fail("DTDs are not accepted");
      } else {
        return {};
      }
    }
  }

  std::expected<std::string, std::string> name() {
    const size_t start = pos_;
    while (pos_ < s_.size() && is_name_char(s_[pos_])) ++pos_;
    if (pos_ == start) return fail("expected a name");
    std::string_view n = s_.substr(start, pos_ - start);
    if (const size_t colon = n.rfind(':'); colon != std::string_view::npos) n = n.substr(colon + 1);
    if (n.empty()) return fail("a name with an empty local part");  // "p:" (a prefix and nothing)
    return std::string(n);
  }

  // Attributes are read past (S3 only puts xmlns and xsi attributes in its answers).
  Step attributes() {
    while (true) {
      skip_space();
      if (pos_ >= s_.size()) return fail("unterminated start tag");
      if (s_[pos_] == '>' || s_[pos_] == '/') return {};
      if (auto n = name(); !n) return std::unexpected(n.error());
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '=') return fail("expected '=' after an attribute name");
      ++pos_;
      skip_space();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) return fail("expected a quoted attribute value");
      const char quote = s_[pos_++];
      const size_t end = s_.find(quote, pos_);
      if (end == std::string_view::npos) return fail("unterminated attribute value");
      pos_ = end + 1;
    }
  }

  Step entity(std::string& out) {
    const size_t semi = s_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12) return fail("bad entity reference");
    const std::string_view ref = s_.substr(pos_ + 1, semi - pos_ - 1);
    if (ref == "amp") out += '&';
    else if (ref == "lt") out += '<';
    else if (ref == "gt") out += '>';
    else if (ref == "quot") out += '"';
    else if (ref == "apos") out += '\'';
    else if (ref.starts_with('#')) {
      const bool hexadecimal = ref.size() > 1 && (ref[1] == 'x' || ref[1] == 'X');
      const std::string_view digits = ref.substr(hexadecimal ? 2 : 1);
      const auto cp = hexadecimal ? util::parse_hex_u64(digits, 0x10FFFF) : util::parse_u64(digits, 0x10FFFF);
      if (!cp || *cp == 0 || (*cp >= 0xD800 && *cp <= 0xDFFF)) return fail("bad character reference");
      append_utf8(out, static_cast<uint32_t>(*cp));
    } else {
      return fail("unknown entity");
    }
    pos_ = semi + 1;
    return {};
  }

  Step element(XmlNode& node, size_t depth) {
    if (depth > limits_.max_depth) return fail("nested deeper than " + std::to_string(limits_.max_depth));
    if (++elements_ > limits_.max_elements) return fail("more than " + std::to_string(limits_.max_elements) + " elements");
    ++pos_;  // '<'
    auto n = name();
    if (!n) return std::unexpected(n.error());
    node.name = std::move(*n);
    if (auto r = attributes(); !r) return r;
    if (s_[pos_] == '/') {
      if (pos_ + 1 >= s_.size() || s_[pos_ + 1] != '>') return fail("expected '/>'");
      pos_ += 2;
      return {};
    }
    ++pos_;  // '>'
    while (true) {
      if (pos_ >= s_.size()) return fail("unterminated element <" + node.name + ">");
      const char c = s_[pos_];
      if (c == '&') {
        if (auto r = entity(node.text); !r) return r;
      } else if (c != '<') {
        node.text += c;
        ++pos_;
      } else if (s_.substr(pos_).starts_with("</")) {
        pos_ += 2;
        auto end = name();
        if (!end) return std::unexpected(end.error());
        if (*end != node.name) return fail("</" + *end + "> closes <" + node.name + ">");
        skip_space();
        if (pos_ >= s_.size() || s_[pos_] != '>') return fail("expected '>'");
        ++pos_;
        return {};
      } else if (s_.substr(pos_).starts_with("<!--")) {
        if (auto r = skip_past("-->", "comment"); !r) return r;
      } else if (s_.substr(pos_).starts_with("<![CDATA[")) {
        const size_t start = pos_ + 9;
        if (auto r = skip_past("]]>", "CDATA section"); !r) return r;
        node.text.append(s_.substr(start, pos_ - 3 - start));
      } else if (s_.substr(pos_).starts_with("<?")) {
        if (auto r = skip_past("?>", "processing instruction"); !r) return r;
      } else if (s_.substr(pos_).starts_with("<!")) {
        return fail("declarations are not accepted inside elements");
      } else {
        node.children.emplace_back();
        if (auto r = element(node.children.back(), depth + 1); !r) return r;
      }
    }
  }

  std::string_view s_;
  const XmlLimits& limits_;
  size_t pos_ = 0;
  size_t elements_ = 0;
};

}  // namespace

std::expected<XmlNode, std::string> parse_xml(std::string_view doc, const XmlLimits& limits) {
  return Parser(doc, limits).document();
}

}  // namespace wharf::s3
