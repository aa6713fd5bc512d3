#pragma once
// Pure text helpers of the HTTP client: resolving, comparing and redacting URLs, and response header lines.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wharf::proxy {

// `ref` (absolute, or relative like "/x" or "../y") resolved against the absolute URL `base`;
// nullopt if either is malformed or the result is not http(s).
std::optional<std::string> resolve_url(const std::string& base, const std::string& ref);
// "scheme://host[:port]" of an absolute URL, lowercased, default port omitted; nullopt if malformed.
std::optional<std::string> url_origin(const std::string& url);
// `url` without user info, query and fragment (a removed query shows as "?<redacted>"): safe to log.
std::string redact_url(std::string_view url);

// Adds one raw response header line (not the status line) to `headers`: a "Name: value" field with the
// name lowercased and both sides trimmed, or a folded continuation of the previous field; a line without
// a colon is skipped. Returns false, adding nothing, for the blank line that ends a head.
bool add_header_line(std::vector<std::pair<std::string, std::string>>& headers, std::string_view raw);

}  // namespace wharf::proxy
