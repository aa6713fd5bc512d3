// libFuzzer: the in-flight token check between fronts and the lease owner's address reader
// (src/api/inflight_token.hpp). Invariants: a forged token (the input) is never Valid unless it is byte
// for byte the token wharf would make for that expiry; a token wharf made is Valid; an address found is
// a suffix of the owner string.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/api/inflight_token.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wharf::api;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::string digest = "sha256:" + std::string(64, 'a');
  const int64_t now = 1'700'000'000;
  if (check_inflight_token("k", digest, input, now) == InflightTokenCheck::Valid) {
    const size_t dot = input.find('.');
    if (dot == std::string::npos) __builtin_trap();
    const auto exp = std::stoll(input.substr(0, dot));  // the check parsed it: digits only
    if (inflight_token("k", digest, exp) != input) __builtin_trap();
  }
  if (check_inflight_token("k", input, inflight_token("k", input, now + 30), now) != InflightTokenCheck::Valid)
    __builtin_trap();
  const std::string addr = owner_address(input);
  if (!addr.empty() && !std::string_view(input).ends_with(addr)) __builtin_trap();
  return 0;
}
