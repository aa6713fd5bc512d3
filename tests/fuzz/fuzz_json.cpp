// libFuzzer: util::parse_json (the bounded parser for all outside JSON). Invariants: never crashes or
// throws; an accepted document is within the depth limit and round-trips through dump().
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/util/json.hpp"

namespace {

size_t depth_of(const nlohmann::json& root) {
  // Iterative, so the check itself cannot overflow the stack on a bad DOM.
  size_t max = 0;
  std::vector<std::pair<const nlohmann::json*, size_t>> stack{{&root, 0}};
  while (!stack.empty()) {
    auto [j, d] = stack.back();
    stack.pop_back();
    if (!j->is_structured()) continue;
    max = std::max(max, d + 1);
    for (const auto& child : *j) stack.emplace_back(&child, d + 1);
  }
  return max;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  wharf::util::JsonLimits limits;
  limits.max_depth = 32;
  auto j = wharf::util::parse_json(text, limits);
  auto cost = wharf::util::json_dom_cost(text, limits);
  if (j.has_value() != cost.has_value()) __builtin_trap();
  if (!j) {
    if (j.error().message.empty() || j.error().message.size() > 400) __builtin_trap();
    return 0;
  }
  if (depth_of(*j) > limits.max_depth) __builtin_trap();
  if (*cost > limits.dom_fixed + limits.dom_per_byte * size) __builtin_trap();
  const std::string out = j->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto again = wharf::util::parse_json(out, limits);
  if (!again) __builtin_trap();
  return 0;
}
