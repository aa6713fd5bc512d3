// libFuzzer harness for JWT verification (src/auth/jwt.*): any input is a token checked against a fixed
// key, and again with x5c chains checked against a fixed root certificate; nothing may crash, and nothing
// unsigned by those keys (whose private halves are gone) may verify. Also base64url round trips.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/auth/jwt.hpp"
#include "src/auth/x5c.hpp"

namespace {

// A fixed P-256 key, so the fuzzer cannot forge anything and every success would be a bug.
constexpr const char* kPublicKey = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6sbHYFQ5I4+PRqAXJ6Gh0QiyG7D0
3+5NcSUO0zNF9vS1NY04WU0PZde0flaSvUv6UO340Wdoz2F2L8T8Dol4IA==
-----END PUBLIC KEY-----
)";

// A self-signed P-256 root for x5c chains (its key was thrown away after signing it).
constexpr const char* kRootCert = R"(-----BEGIN CERTIFICATE-----
MIIBgDCCASWgAwIBAgIUY2m98KCVjBmkkLKZv1AW+NFhsCUwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJZnV6ei1yb290MCAXDTI2MTIwMTExMzIxNVoYDzIxMjYxMTA3
MTEzMjE1WjAUMRIwEAYDVQQDDAlmdXp6LXJvb3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARQ324bdFudiV2w7d0QMOmPq93ERwn/qnB1+hQbRUQm2COgX/lsFxjS
33QEEUMBYqtm2LsPlMMbnd07f+ZqXYy7o1MwUTAdBgNVHQ4EFgQUeEwmL2Y3zPxj
s7U6lD5s62ulsRAwHwYDVR0jBBgwFoAUeEwmL2Y3zPxjs7U6lD5s62ulsRAwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEA7oyzIBGHFgbIoCtHrq9W
dn/IfzcFSjytxzgVQIn7WOsCIQChY0WlwRR/ixDGaqUV880o8cExB5o8VV49a8Oq
HRrbMQ==
-----END CERTIFICATE-----
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto keys = wharf::auth::parse_public_keys(kPublicKey);
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (keys) {
    const wharf::auth::VerifyOptions options{"issuer", "service", 1'800'000'000, 60};
    auto claims = wharf::auth::verify_jwt(input, *keys, options);
    if (claims) __builtin_trap();  // nobody holds the private key
    if (claims.error().empty()) __builtin_trap();
    static const auto roots = wharf::auth::CertStore::parse(kRootCert);
    if (roots) {
      auto chained = wharf::auth::verify_jwt(input, *keys, options, &*roots);
      if (chained || chained.error().empty()) __builtin_trap();
    }
  }
  auto decoded = wharf::auth::base64url_decode(input);
  if (decoded && wharf::auth::base64url_encode(*decoded) != input) __builtin_trap();
  return 0;
}
