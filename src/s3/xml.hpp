#pragma once
// A small, bounded XML reader for S3's response bodies (ListBucketResult, Error, InitiateMultipartUploadResult,
// CopyObjectResult, ...): elements, attributes skipped, text with the five predefined entities and numeric
// character references, comments, CDATA, and the <?xml?> declaration. No DTDs, no external anything.
// Namespace prefixes are dropped from element names. Input size, depth and element count are bounded.
#include <cstddef>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::s3 {

// One element: its local name, its text (concatenated, entities decoded), and its child elements.
struct XmlNode {
  std::string name;
  std::string text;
  std::vector<XmlNode> children;

  // The first child named `name`; nullptr if none.
  const XmlNode* child(std::string_view name) const;
  // The text of the first child named `name`; empty if none.
  std::string_view child_text(std::string_view name) const;
  // Every child named `name`, in document order.
  std::vector<const XmlNode*> all(std::string_view name) const;
};

// Bounds on what parse_xml accepts.
struct XmlLimits {
  size_t max_bytes = 16u << 20;   // input size
  size_t max_depth = 32;          // element nesting
  size_t max_elements = 200'000;  // elements in total
};

// The root element of `doc`; an error message (with the byte offset) for malformed or oversized input.
std::expected<XmlNode, std::string> parse_xml(std::string_view doc, const XmlLimits& limits = {});

}  // namespace wharf::s3
