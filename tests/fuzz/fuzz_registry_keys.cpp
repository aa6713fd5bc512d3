// libFuzzer: the object keys of a registry:2 tree in a bucket (wharf import-registry s3://..., from an
// untrusted listing), one key per line, walked as directories the way the importer does. Invariants:
// every entry key_children returns is non-empty, has no '/', is unique and sorted, and is the first
// component of some key under the directory; the walk (depth-bounded) terminates.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "src/commands/registry_tree.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::set<std::string> keys;
  for (size_t at = 0; at <= text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    keys.insert(text.substr(at, nl - at));
    at = nl + 1;
  }
  size_t visits = 0;
  std::function<void(const std::string&, int)> walk = [&](const std::string& dir, int depth) {
    if (depth > 16 || ++visits > 10000) return;
    const auto names = wharf::commands::key_children(keys, dir);
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string& n = names[i];
      if (n.empty() || n.find('/') != std::string::npos) __builtin_trap();
      if (i > 0 && !(names[i - 1] < n)) __builtin_trap();
      const std::string path = dir + "/" + n;
      bool named = false;  // some key is `path` itself or lies under path/
      for (auto it = keys.lower_bound(path); it != keys.end() && it->starts_with(path) && !named; ++it)
        named = it->size() == path.size() || (*it)[path.size()] == '/';
      if (!named) __builtin_trap();
      walk(path, depth + 1);
    }
  };
  walk("repositories", 0);
  return 0;
}
