#pragma once
// What fronts of a fleet know of each other: the credential one front shows another to read an in-flight
// download (GET /internal/inflight/<digest>), "<expiry>.<hex HMAC-SHA256 of digest + '\n' + expiry under
// http.secret>", and the address a lease owner string names. Pure: no I/O, no clock.
#include <cstdint>
#include <string>
#include <string_view>

namespace wharf::api {

// How long a token is good for, and the furthest expiry a check accepts (a longer one is forged or skewed).
inline constexpr int64_t kInflightTokenLife = 60;
inline constexpr int64_t kInflightTokenMaxLife = 300;

// The token for `digest` valid until `expires` (seconds since the epoch); empty if `secret` is empty.
std::string inflight_token(std::string_view secret, std::string_view digest, int64_t expires);

// What a check of a token found.
enum class InflightTokenCheck { Valid, Expired, Invalid };

// Checks `token` for `digest` at `now` (seconds since the epoch), comparing the MAC in constant time:
// Invalid for an empty secret, a malformed token, a wrong MAC or an expiry too far ahead; Expired once
// its expiry has passed.
InflightTokenCheck check_inflight_token(std::string_view secret, std::string_view digest, std::string_view token,
                                        int64_t now);

// The "host:port" a fleet lease owner string ("<id>@<host:port>") names, checked to be a plain host or
// [IPv6] and a port in 1..65535; empty when there is none or it is malformed.
std::string owner_address(std::string_view owner);

}  // namespace wharf::api
