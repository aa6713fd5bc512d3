// libFuzzer: the link files of a registry:2 tree (wharf import-registry reads them from an untrusted
// source). Invariants: an accepted link names a digest that prints back to the trimmed text; anything
// with bytes other than the digest and surrounding whitespace is refused.
#include <cstddef>
#include <cstdint>
#include <string>

#include "src/commands/registry_tree.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto d = wharf::commands::parse_link(text);
  if (!d) return 0;
  const auto b = text.find_first_not_of(" \t\r\n");
  const auto e = text.find_last_not_of(" \t\r\n");
  if (b == std::string::npos || text.substr(b, e - b + 1) != d->str()) __builtin_trap();
  return 0;
}
