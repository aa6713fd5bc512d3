// libFuzzer: configuration text plus REGISTRY_* overrides. The input is YAML, optionally followed by
// "\n---ENV---\n" and NAME=value lines. Invariants: never crashes or throws; a loaded config keeps its
// limits in range.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "src/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wharf::config;
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::string_view yaml = all, env_text;
  if (const size_t cut = all.find("\n---ENV---\n"); cut != std::string_view::npos) {
    yaml = all.substr(0, cut);
    env_text = all.substr(cut + 11);
  }
  std::map<std::string, std::string> env;
  while (!env_text.empty()) {
    const size_t nl = env_text.find('\n');
    const std::string_view line = env_text.substr(0, nl);
    if (const size_t eq = line.find('='); eq != std::string_view::npos)
      env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    if (nl == std::string_view::npos) break;
    env_text.remove_prefix(nl + 1);
  }
  std::vector<std::string> warnings;
  auto c = load_from_string(std::string(yaml), env, warnings);
  if (c) {
    if (c->max_uploads < 1 || c->max_uploads_per_client < 1) __builtin_trap();
  } else if (c.error().str().empty()) {
    __builtin_trap();
  }
  (void)parse_duration(std::string(yaml));
  (void)parse_size(std::string(yaml));
  return 0;
}
