#pragma once
// Standard base64 (RFC 4648 section 4, padded) through OpenSSL, for Basic credentials.
#include <string>
#include <string_view>

namespace wharf::util {

// The padded base64 text of `data`.
std::string base64_encode(std::string_view data);

}  // namespace wharf::util
