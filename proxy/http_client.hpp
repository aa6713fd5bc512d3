#pragma once
// An asynchronous HTTP client: one libcurl multi handle driven by wharf's libevent loop (socket and
// timer callbacks; no threads, no blocking calls). Responses stream: the head once, then body bytes as
// they arrive. Connections are pooled and reused; redirects are never followed (callers decide).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>


struct event_base;

namespace wharf::proxy {

// Pulls request-body bytes: writes up to `cap` bytes into `buf` and returns how many were written; returning
// 0 before `size` bytes were sent, or kBodyAbort, aborts the transfer; kBodyPause pauses the upload until
// HttpClient::resume(id). Called on the loop, inside the client.
using BodyReader = std::function<size_t(char* buf, size_t cap)>;
// BodyReader results that are not byte counts.
inline constexpr size_t kBodyAbort = static_cast<size_t>(-1);
inline constexpr size_t kBodyPause = static_cast<size_t>(-2);

// A request body of a known size (sent with Content-Length, never chunked, no "Expect: 100-continue").
struct RequestBody {
  uint64_t size = 0;
  std::string bytes;  // the body itself, when `reader` is empty and fd < 0
  BodyReader reader;  // else pulled from here
  int fd = -1;        // else read with pread() from this descriptor (borrowed: keep it open until on_done)
  uint64_t offset = 0;  // ... starting at this offset

  // The body `data`.
  static RequestBody from_string(std::string data);
  // `size` bytes pulled from `reader`.
  static RequestBody from_reader(uint64_t size, BodyReader reader);
  // `length` bytes of `fd` from `offset` (a regular file: pread() on the loop, like the page cache allows).
  static RequestBody from_fd(int fd, uint64_t offset, uint64_t length);
};

// One request; without `body`, methods other than GET and HEAD are sent without a body.
struct HttpRequest {
  std::string method = "GET";        // "HEAD" reads no body (CURLOPT_NOBODY)
  std::string url;                   // absolute http:// or https:// URL
  std::vector<std::string> headers;  // "Name: value"
  std::string ca_file;               // extra CA bundle to trust (the system store stays trusted)
  std::chrono::milliseconds connect_timeout{10'000};     // TCP + TLS handshake
  std::chrono::milliseconds first_byte_timeout{30'000};  // request sent → response status line
  std::chrono::milliseconds stall_timeout{30'000};       // response head → body bytes, and between them
  // Aborts the transfer when fewer than min_rate bytes/s arrive over min_rate_period (0: no minimum),
  // so a trickle cannot hold a transfer open forever (CURLOPT_LOW_SPEED_LIMIT/TIME).
  uint64_t min_rate = 0;
  std::chrono::seconds min_rate_period{30};
  std::optional<RequestBody> body;  // sent with any method but GET and HEAD
  bool verify_tls = true;           // false: the server's certificate and name are not checked (skipverify)
};

// The head of a response (the final one; 1xx interim responses are skipped).
struct HttpHead {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, in arrival order

  // First value of header `name` (lowercase); empty if absent.
  std::string_view header(std::string_view name) const;
};

// Callbacks of one transfer; none is called after cancel() or after on_done.
struct HttpCallbacks {
  // The response head, at most once, before any body byte.
  std::function<void(const HttpHead&)> on_head;
  // Body bytes in order; returning false aborts the transfer (on_done then reports ok=false, "aborted").
  std::function<bool(const char* data, size_t len)> on_data;
  // Optional, asked before each body piece: true holds the piece back and pauses the transfer (curl keeps
  // it and stops reading the socket) until resume(id) hands it to on_data. A held transfer is exempt
  // from the stall timeout (the peer may still close the connection meanwhile: on_done reports it).
  std::function<bool()> hold;
  // Exactly once at the end: ok=true when the whole body arrived (any status); otherwise `error` says why.
  std::function<void(bool ok, const std::string& error)> on_done;
};

// Connection pool limits and the User-Agent of a client.
struct HttpClientOptions {
  long max_host_connections = 16;   // CURLMOPT_MAX_HOST_CONNECTIONS (further transfers queue)
  long max_total_connections = 64;  // CURLMOPT_MAX_TOTAL_CONNECTIONS
  std::string user_agent;           // empty: "wharf/<version>"
};

// Owns the CURLM handle, its socket and timer events, and every transfer's CURL handle.
class HttpClient {
 public:
  // Creates the multi handle on `base`; fails if libcurl or libevent cannot allocate it.
  static std::expected<std::unique_ptr<HttpClient>, std::string> create(event_base* base, HttpClientOptions opts = {});
  // Aborts every transfer without calling their callbacks. Never destroy the client from its callbacks.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a transfer and returns its id (never 0). Callbacks run later on the loop, never inside start();
  // a request that cannot even start (bad options) ends with on_done(false, ...).
  uint64_t start(HttpRequest req, HttpCallbacks cb);
  // Aborts a transfer; its callbacks are not called afterwards. Unknown or finished ids are ignored.
  // Safe from inside any callback, including the transfer's own.
  void cancel(uint64_t id);
  // Resumes an upload whose BodyReader returned kBodyPause, or a download held back by `hold` (its held
  // piece may be delivered before this returns). Unknown or finished ids are ignored.
  void resume(uint64_t id);
  // Transfers started and not yet finished or cancelled.
  size_t active() const;

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "wharf/<WHARF_VERSION>".
std::string default_user_agent();

}  // namespace wharf::proxy
