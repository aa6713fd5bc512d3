#pragma once
// One configured upstream registry (Docker Hub, ghcr.io, a private registry...), reached through the
// shared libcurl multi client on wharf's event loop. It negotiates tokens on 401 (Bearer or Basic),
// follows redirects without the Authorization header (Docker Hub's 307 to its CDN), records
// rate-limit headers, and backs off after a 429.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/config/config.hpp"

struct event_base;

namespace wharf::proxy {

class HttpClient;
class TokenCache;

// The head of the final upstream response (after token retry and redirects).
struct UpstreamResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string url;                                           // final URL (after redirects)
  // First value of a header (name lowercase); empty if absent.
  std::string_view header(std::string_view name) const;
};

struct FetchCallbacks {
  // The final response head. For non-2xx the body (if any) is delivered too (e.g. an OCI error JSON).
  std::function<void(const UpstreamResponse&)> on_head;
  // Body bytes; return false to abort the transfer (on_done then reports ok=false, "aborted").
  std::function<bool(const char* data, size_t len)> on_data;
  // Called exactly once at the end: ok=true when the body completed; otherwise `error` says why
  // (connect failure, timeout, body cut short, TLS error...). Not called after cancel().
  std::function<void(bool ok, const std::string& error)> on_done;
};

struct RateLimitInfo {
  std::string limit;      // last "ratelimit-limit" seen, e.g. "100;w=21600"
  std::string remaining;  // last "ratelimit-remaining"
  std::string source;     // last "docker-ratelimit-source"
};

// How the upstream's recent requests went, for the web page.
struct UpstreamHealth {
  int64_t last_ok = 0;        // unix seconds of the last answer that was not a 429 or 5xx (0: none yet)
  int64_t last_error_at = 0;  // unix seconds of the last failure (0: none yet)
  std::string last_error;     // a network failure, "HTTP 503", "HTTP 429 (rate limited)"...
  bool failing = false;       // the last finished request failed
};

struct UpstreamTimeouts {
  std::chrono::seconds connect{10};
  std::chrono::seconds first_byte{30};  // request sent → response head
  std::chrono::seconds stall{30};       // no body bytes for this long
  uint64_t min_rate = 0;                // bytes/s over min_rate_period, else the transfer aborts; 0 = off
  std::chrono::seconds min_rate_period{30};
};

class Upstream {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  // `cfg.url` like "https://registry-1.docker.io" (no trailing slash needed).
  Upstream(HttpClient& client, TokenCache& tokens, config::Upstream cfg, UpstreamTimeouts timeouts = {},
           Clock clock = [] { return std::chrono::system_clock::now(); });
  ~Upstream();

  // Sends METHOD <url><path> (path like "/v2/library/alpine/manifests/latest", query allowed) with extra
  // request headers ("Name: value"). `scope_repo` is the repository for the token scope
  // ("repository:<repo>:pull"); empty means "registry:catalog:*". Returns an id for cancel().
  uint64_t fetch(std::string method, std::string path, std::string scope_repo, std::vector<std::string> headers,
                 FetchCallbacks cb);
  // Stops a fetch; its callbacks are not called afterwards.
  void cancel(uint64_t id);

  const config::Upstream& config() const { return cfg_; }
  const std::string& name() const { return cfg_.name; }
  RateLimitInfo rate_limit() const;
  // The outcome of the last successful and the last failed request.
  UpstreamHealth health() const;
  // True while backing off after a 429 (until its Retry-After, or 60 s).
  bool backing_off() const;
  // Called for every upstream response head (each hop: 401 challenges, redirects, the final answer)
  // with its status and the seconds since that request was sent; for metrics.
  void set_observer(std::function<void(int status, double seconds)> observer);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  config::Upstream cfg_;
};

}  // namespace wharf::proxy
