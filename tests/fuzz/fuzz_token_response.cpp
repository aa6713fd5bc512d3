// libFuzzer: token-service answers and RFC 3339 times, then the token cache. Invariants: expires_in is
// within [0, a day]; issued_at is within system_clock's range; caching never overflows the clock.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/token_cache.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wharf::proxy;
  using namespace std::chrono;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)parse_rfc3339(body);
  auto r = parse_token_response(body);
  if (!r) return 0;
  if (r->token.empty()) __builtin_trap();
  if (r->expires_in && (*r->expires_in < 0s || *r->expires_in > TokenCache::kMaxLifetime)) __builtin_trap();
  const auto now = system_clock::time_point{} + sys_days{2024y / 6 / 1}.time_since_epoch();
  TokenCache cache([now] { return now; });
  TokenKey key{"up", "realm", "svc", {"repository:a:pull"}};
  cache.put(key, r->token, r->expires_in, r->issued_at);
  if (auto got = cache.get(key); got && *got != r->token) __builtin_trap();
  return 0;
}
