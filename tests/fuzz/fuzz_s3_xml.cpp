// libFuzzer: the S3 XML reader and S3 error bodies. Invariants: nothing crashes; depth and element limits
// hold; an accepted document's root has a non-empty name; error bodies always yield a code.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/s3/error.hpp"
#include "src/s3/xml.hpp"

namespace {

size_t depth(const wharf::s3::XmlNode& n) {
  size_t d = 0;
  for (const auto& c : n.children) d = std::max(d, depth(c));
  return d + 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view doc(reinterpret_cast<const char*>(data), size);
  wharf::s3::XmlLimits limits;
  limits.max_depth = 8;
  limits.max_elements = 1000;
  if (auto r = wharf::s3::parse_xml(doc, limits)) {
    if (r->name.empty() || depth(*r) > limits.max_depth) __builtin_trap();
    (void)r->child_text("Code");
    (void)r->all("Contents");
  }
  const auto e = wharf::s3::error_from_response(400 + static_cast<int>(size % 200), doc);
  if (e.code.empty()) __builtin_trap();
  (void)e.str();
  return 0;
}
