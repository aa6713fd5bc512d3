#pragma once
// The web page's files (src/ui/assets/), compiled into the binary by src/ui/embed.py.
#include <string_view>
#include <vector>

namespace wharf::ui {

// One embedded file.
struct Asset {
  std::string_view name;          // base name, e.g. "app.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view etag;          // quoted, from the sha256 of the bytes
  std::string_view body;
};

// Every embedded file (a static table; never fails).
const std::vector<Asset>& assets();

// The asset named `name`, or nullptr.
inline const Asset* find_asset(std::string_view name) {
  for (const Asset& a : assets())
    if (a.name == name) return &a;
  return nullptr;
}

}  // namespace wharf::ui
