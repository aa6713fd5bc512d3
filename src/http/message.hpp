#pragma once
// HTTP/1.1 request and response values shared by the server and the API handlers.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wharf::http {

// Case-insensitive ASCII comparison of header names.
bool iequals(std::string_view a, std::string_view b);

struct Request {
  std::string method;
  std::string target;  // as sent: path?query
  std::string path;    // raw path, not percent-decoded
  std::string query;   // raw query without '?'
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool keep_alive = true;
  bool http10 = false;  // HTTP/1.0: keep-alive only when asked for, and then acknowledged
  std::string peer;  // client address
  std::string user;  // authenticated user, set by the API layer
  const char* route = "other";  // resource kind for metrics ("manifest", "blob", ...), set by the API layer

  // First value of header `name` (case-insensitive); empty if absent.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  // Percent-decoded value of query parameter `key`; nullopt if absent.
  std::optional<std::string> query_param(std::string_view key) const;
  bool has_body() const { return chunked || content_length.value_or(0) > 0; }
};

// A file region sent with sendfile where possible; the fd is owned by the response until sent.
struct FileBody {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::optional<FileBody> file;              // when set, sent instead of `body`
  std::optional<uint64_t> content_length;    // for HEAD: the length the GET would have
  bool close = false;                        // close the connection after this response
  std::string cache_status;                  // for the access log (HIT/MISS/LOCAL/...)

  Response() = default;
  explicit Response(int s) : status(s) {}
  Response& header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

// Percent-decodes `s` ('+' stays '+'); nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s);
// Percent-encodes everything outside RFC 3986's unreserved set.
std::string percent_encode(std::string_view s);
// The reason phrase for a status code.
std::string_view reason_phrase(int status);

}  // namespace wharf::http
