// Hand-written scanners for the distribution-spec name and tag grammars (no std::regex).
#include "src/oci/names.hpp"

#include <cstddef>

namespace wharf::oci {
namespace {

constexpr size_t kMaxRepoName = 255;
constexpr size_t kMaxTag = 128;

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool is_tag_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_tag_char(char c) { return is_tag_start(c) || c == '.' || c == '-'; }

// True if `sep` is one separator of the grammar: ".", "_", "__", or one or more "-".
bool valid_separator(std::string_view sep) {
  if (sep == "." || sep == "_" || sep == "__") return true;
  if (sep.empty()) return false;
  for (char c : sep) {
    if (c != '-') return false;
  }
  return true;
}

// True if `comp` matches [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
bool valid_component(std::string_view comp) {
  size_t i = 0;
  while (i < comp.size()) {
    // An alphanumeric run is required here: at the start and after every separator.
    const size_t run = i;
    while (i < comp.size() && is_lower_alnum(comp[i])) ++i;
    if (i == run) return false;
    if (i == comp.size()) return true;
    const size_t sep = i;
    while (i < comp.size() && !is_lower_alnum(comp[i])) ++i;
    // A trailing separator leaves i == size, and the loop exits to the false below.
    if (!valid_separator(comp.substr(sep, i - sep))) return false;
    if (i == comp.size()) return false;
  }
  return false;  // empty component
}

}  // namespace

bool valid_repo_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxRepoName) return false;
  size_t start = 0;
  while (true) {
    const size_t slash = name.find('/', start);
    const std::string_view comp =
        name.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!valid_component(comp)) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxTag || !is_tag_start(tag.front())) return false;
  for (char c : tag.substr(1)) {
    if (!is_tag_char(c)) return false;
  }
  return true;
}

}  // namespace wharf::oci
