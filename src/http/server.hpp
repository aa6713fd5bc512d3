#pragma once
// A small HTTP/1.1 server on libevent bufferevents (plain TCP or TLS through bufferevent_openssl).
// Request bodies are streamed to a BodySink; responses may be sent later (after worker jobs) and file
// bodies go out by transport (file_body.hpp: sendfile pieces on plain TCP, SSL_sendfile with kernel TLS,
// else reads through a bounded buffer pool). Keep-alive and pipelining are supported.
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "src/http/buffer_pool.hpp"
#include "src/http/message.hpp"

struct event;
struct event_base;
struct evconnlistener;
struct ssl_ctx_st;
struct sockaddr;

namespace wharf::http {

class Connection;

// Receives a request body piece by piece.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // Consumes a piece of the body; returning false stops reading (the sink has responded or will).
  virtual bool on_data(const char* data, size_t len) = 0;
  // Called once when the whole body has arrived.
  virtual void on_end() = 0;
  // Called if the connection ends before the body did.
  virtual void on_abort() {}
};

// One request/response exchange. Handlers hold it as shared_ptr and may respond later;
// if the client went away meanwhile, respond() does nothing.
class Exchange {
 public:
  Request& req() { return req_; }
  const Request& req() const { return req_; }
  // Sends the response (once). After a response, an unread request body makes the connection close.
  void respond(Response r);
  // Streams the request body into `sink` (sends "100 Continue" if the client asked for it).
  void read_body(std::unique_ptr<BodySink> sink);
  // Stops feeding the request body after the current piece (a sink whose writes lag behind): the
  // socket is not read meanwhile and the minimum body rate is not enforced. Ignored once the body is read.
  void pause_body();
  // Feeds the request body again after pause_body(), buffered bytes first; call it from outside the
  // sink's on_data (a worker completion). Ignored if not paused.
  void resume_body();
  bool alive() const { return conn_ != nullptr; }
  bool responded() const { return responded_; }

  // Streaming responses: send the head now (Content-Length from head.content_length), the body later.
  void begin_stream(Response head);
  // Queues bytes [offset, offset+len) of file `fd` (borrowed: duplicated internally) for sending.
  void stream_file(int fd, uint64_t offset, uint64_t len);
  // Queues `bytes` (copied) for sending; a failure closes the connection.
  void stream_data(std::string_view bytes);
  // Bytes queued but not yet written to the socket.
  size_t stream_backlog() const;
  // Called whenever the queued bytes drop to the low watermark while streaming (refill point).
  void on_drain(std::function<void()> cb) { drain_cb_ = std::move(cb); }
  // Called once if the connection goes away before end_stream()/abort().
  void on_close(std::function<void()> cb) { close_cb_ = std::move(cb); }
  // Finishes a streamed response once its queued bytes are written.
  void end_stream();
  // Drops the connection now (the client sees a truncated body and retries).
  void abort();
  std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  friend class Connection;
  Connection* conn_ = nullptr;
  std::function<void()> drain_cb_;
  std::function<void()> close_cb_;
  Request req_;
  bool responded_ = false;
  std::chrono::steady_clock::time_point started_;
};
using ExchangePtr = std::shared_ptr<Exchange>;

// Called for each request after its headers arrived.
using Handler = std::function<void(const ExchangePtr&)>;

// Called after each response is fully written (for the access log and metrics).
using AccessLogger = std::function<void(const Request&, int status, uint64_t bytes, double seconds,
                                        const std::string& cache_status)>;

struct ServerOptions {
  std::string addr = "127.0.0.1:5000";  // host:port; ":port" = all IPv4 addresses
  std::string tls_certificate;           // both set: TLS (1.2 and newer)
  std::string tls_key;
  size_t max_header_bytes = 64 * 1024;
  std::chrono::seconds idle_timeout{60};   // waiting for a request or for body bytes
  std::chrono::seconds write_timeout{300}; // a stalled client during a response
  // A request head must be complete this long after its first byte (after accept for the first
  // request, including the TLS handshake); beyond it: 408 and close.
  std::chrono::seconds header_timeout{10};
  // A request body must average at least this many bytes/s over each body_rate_period (0 = no check);
  // below it: 408 (if no response started) and close.
  uint64_t min_body_rate = 0;
  std::chrono::seconds body_rate_period{30};
  std::vector<std::pair<std::string, std::string>> extra_headers;  // added to every response
  std::string location_base;  // e.g. "https://registry.example.com": prefixed to Location headers that are paths
};

// Loads the certificate chain and key as the server would and checks that they belong together; fails
// with a message naming http.tls.certificate or http.tls.key.
std::expected<void, std::string> check_tls_files(const std::string& certificate, const std::string& key);

class Server {
 public:
  // Binds and listens; fails with a message naming the address or the TLS file.
  static std::expected<std::unique_ptr<Server>, std::string> start(event_base* base, ServerOptions opts,
                                                                  Handler handler, AccessLogger logger);
  // Closes every open connection (their exchanges see the client gone), then the listener.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Stops accepting new connections (open ones finish).
  void stop_accepting();
  // Re-reads the TLS certificate and key for new connections (open ones keep theirs); on failure the
  // previous ones stay in use and the message names the file.
  std::expected<void, std::string> reload_tls();
  // The bound port (useful with port 0).
  int port() const { return port_; }
  // Whether TLS connections may use kernel TLS (the kernel offers it); false without TLS.
  bool kernel_tls() const { return kernel_tls_; }
  // Connections open now (including ones finishing a lingering close).
  size_t open_connections() const { return conns_.size(); }

 private:
  friend class Connection;
  Server() = default;
  static void on_accept(evconnlistener*, int fd, ::sockaddr* sa, int socklen, void* arg);
  static void on_accept_error(evconnlistener*, void* arg);
  static void on_accept_resume(int, short, void* arg);

  event_base* base_ = nullptr;
  evconnlistener* listener_ = nullptr;
  ssl_ctx_st* ssl_ctx_ = nullptr;
  ServerOptions opts_;
  Handler handler_;
  AccessLogger logger_;
  int port_ = 0;
  std::unordered_set<Connection*> conns_;  // owned: each deletes itself on close, ~Server deletes the rest
  // accept() failures (EMFILE, ...): the listener pauses for a growing while, and one log line a second.
  event* accept_timer_ = nullptr;
  std::chrono::milliseconds accept_backoff_{0};
  uint64_t accept_failures_ = 0;  // since the last log line
  std::chrono::steady_clock::time_point accept_logged_{};
  std::string extra_header_block_;  // pre-rendered extra headers
  // Blocks for TLS file bodies without kernel TLS (64 KiB each; up to 32 idle ones kept).
  BufferPool body_pool_{64 * 1024, 32};
  bool kernel_tls_ = false;  // SSL_OP_ENABLE_KTLS is set on the TLS context
};

}  // namespace wharf::http
