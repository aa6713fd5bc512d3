#pragma once
// A pure parser of the WWW-Authenticate response header (RFC 7235): one or more challenges, each a
// scheme plus either auth-params (realm="...", service=..., scope="...") or a token68.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wharf::proxy {

// The authentication schemes wharf acts on; anything else is Other.
enum class AuthScheme { Basic, Bearer, Other };

// One challenge from a WWW-Authenticate header.
struct Challenge {
  AuthScheme scheme = AuthScheme::Other;
  std::string scheme_name;                                  // as sent, e.g. "Bearer"
  std::vector<std::pair<std::string, std::string>> params;  // names lowercased, values unquoted
  std::string token68;                                      // "Scheme abc==" form; usually empty

  // The value of auth-param `name` (lowercase); empty if absent.
  std::string_view param(std::string_view name) const;
};

// Every well-formed challenge in `header`, in order; malformed trailing text is dropped, never an error.
std::vector<Challenge> parse_www_authenticate(std::string_view header);

}  // namespace wharf::proxy
