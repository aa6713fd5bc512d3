// Pure text helpers of the HTTP client: URLs (through libcurl's URL parser, no transfers) and header lines.
#include "proxy/http_text.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace wharf::proxy {

namespace {

struct UrlFree {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using UrlPtr = std::unique_ptr<CURLU, UrlFree>;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

std::optional<std::string> url_get(CURLU* u, CURLUPart part, unsigned flags = 0) {
  char* p = nullptr;
  if (curl_url_get(u, part, &p, flags) != CURLUE_OK || p == nullptr) return std::nullopt;
  std::string s(p);
  curl_free(p);
  return s;
}

UrlPtr parse_http_url(const std::string& url) {
  UrlPtr u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return nullptr;
  const auto scheme = url_get(u.get(), CURLUPART_SCHEME);
  if (!scheme || (lower(*scheme) != "http" && lower(*scheme) != "https")) return nullptr;
  return u;
}

}  // namespace

std::optional<std::string> resolve_url(const std::string& base, const std::string& ref) {
  UrlPtr u = parse_http_url(base);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, ref.c_str(), 0) != CURLUE_OK) return std::nullopt;
  const auto scheme = url_get(u.get(), CURLUPART_SCHEME);
  if (!scheme || (lower(*scheme) != "http" && lower(*scheme) != "https")) return std::nullopt;
  return url_get(u.get(), CURLUPART_URL);
}

std::optional<std::string> url_origin(const std::string& url) {
  UrlPtr u = parse_http_url(url);
  if (!u) return std::nullopt;
  const auto scheme = url_get(u.get(), CURLUPART_SCHEME);
  const auto host = url_get(u.get(), CURLUPART_HOST);
  if (!scheme || !host) return std::nullopt;
  std::string out = lower(*scheme) + "://" + lower(*host);
  if (const auto port = url_get(u.get(), CURLUPART_PORT, CURLU_NO_DEFAULT_PORT)) out += ":" + *port;
  return out;
}

std::string redact_url(std::string_view url) {
  std::string out;
  const size_t scheme_end = url.find("://");
  size_t rest = 0;
  if (scheme_end != std::string_view::npos) {
    rest = scheme_end + 3;
    const size_t authority_end = std::min(url.find_first_of("/?#", rest), url.size());
    const size_t at = url.substr(rest, authority_end - rest).rfind('@');
    out.append(url.substr(0, rest));
    if (at != std::string_view::npos) rest += at + 1;
  }
  const size_t cut = url.find_first_of("?#", rest);
  out.append(url.substr(rest, cut == std::string_view::npos ? std::string_view::npos : cut - rest));
  if (cut != std::string_view::npos && url[cut] == '?') out += "?<redacted>";
  return out;
}

bool add_header_line(std::vector<std::pair<std::string, std::string>>& headers, std::string_view raw) {
  const std::string_view line = trim(raw);
  if (line.empty()) return false;
  if ((raw.front() == ' ' || raw.front() == '\t') && !headers.empty()) {
    headers.back().second += ' ';  // obsolete line folding
    headers.back().second += line;
    return true;
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos) headers.emplace_back(lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  return true;
}

}  // namespace wharf::proxy
