#include "src/http/server.hpp"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "src/http/parse.hpp"

namespace wharf::http {

namespace {

// Date header value, rebuilt at most once a second.
const std::string& http_date() {
  static thread_local std::string cached;
  static thread_local time_t cached_at = 0;
  time_t now = time(nullptr);
  if (now != cached_at) {
    char buf[64];
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached = buf;
    cached_at = now;
  }
  return cached;
}

std::string ssl_error_string() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

// One client connection: parses requests, streams bodies, writes responses in order.
class Connection {
 public:
  Connection(Server* srv, bufferevent* bev, std::string peer, bool tls)
      : srv_(srv), bev_(bev), peer_(std::move(peer)), tls_(tls) {
    ++srv_->conns_;
    bufferevent_setcb(bev_, &Connection::on_read_cb, &Connection::on_write_cb, &Connection::on_event_cb, this);
    timeval rt{long(srv_->opts_.idle_timeout.count()), 0};
    timeval wt{long(srv_->opts_.write_timeout.count()), 0};
    bufferevent_set_timeouts(bev_, &rt, &wt);
    bufferevent_setwatermark(bev_, EV_READ, 0, kInputHighWater);
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
  }

  ~Connection() {
    if (ex_) {
      ex_->conn_ = nullptr;
      if (sink_ && state_ == State::Body) sink_->on_abort();
      ex_->drain_cb_ = nullptr;
      if (auto cb = std::move(ex_->close_cb_)) {
        ex_->close_cb_ = nullptr;
        cb();
      }
    }
    sink_.reset();
    bufferevent_free(bev_);
    --srv_->conns_;
  }

  void respond(Exchange& ex, Response r, bool streaming = false);
  void read_body(Exchange& ex, std::unique_ptr<BodySink> sink);
  void stream_file(Exchange& ex, int fd, uint64_t offset, uint64_t len);
  size_t backlog() const { return evbuffer_get_length(bufferevent_get_output(bev_)); }
  void end_stream(Exchange& ex);
  void abort(Exchange& ex);

 private:
  enum class State { Headers, Handling, Body, Waiting, Streaming, Writing, Closing };
  static constexpr size_t kStreamLowWater = 256 * 1024;
  static constexpr size_t kInputHighWater = 1024 * 1024;

  static void on_read_cb(bufferevent*, void* arg) { static_cast<Connection*>(arg)->guarded([](Connection* c) { c->process(); }); }
  static void on_write_cb(bufferevent*, void* arg) { static_cast<Connection*>(arg)->guarded([](Connection* c) { c->on_written(); }); }
  static void on_event_cb(bufferevent*, short what, void* arg) {
    auto* c = static_cast<Connection*>(arg);
    c->guarded([what](Connection* c) { c->on_event(what); });
  }

  // Runs `f` and deletes the connection afterwards if it asked to close; re-entrancy safe.
  template <class F>
  void guarded(F f) {
    ++depth_;
    f(this);
    --depth_;
    if (depth_ == 0 && dead_) delete this;
  }
  void kill() {
    dead_ = true;
    if (depth_ == 0) delete this;
  }

  void process();
  bool parse_headers();
  void feed_body();
  void finish_body();
  void on_written();
  void on_event(short what);
  void send_simple_error(int status, std::string_view msg);
  void send_raw_and_close(std::string_view raw, int status = 400);
  // Read interest stays on for the whole connection (toggling it costs epoll_ctl calls per request);
  // bytes that arrive while a request is handled wait in the input buffer, which stops growing at
  // the high watermark. Only a response that must not read further (close) turns reading off.
  void set_reading(bool) {}

  Server* srv_;
  bufferevent* bev_;
  std::string peer_;
  bool tls_;
  State state_ = State::Headers;
  ExchangePtr ex_;
  std::unique_ptr<BodySink> sink_;
  BodyDecoder decoder_;
  bool body_done_ = true;  // the current request's body has been consumed entirely
  bool close_after_ = false;
  int status_ = 0;
  uint64_t bytes_ = 0;
  std::string cache_status_;
  int depth_ = 0;
  bool dead_ = false;
};

void Exchange::respond(Response r) {
  if (responded_) return;
  responded_ = true;
  if (conn_) conn_->respond(*this, std::move(r));
}

void Exchange::begin_stream(Response head) {
  if (responded_) return;
  responded_ = true;
  if (conn_) conn_->respond(*this, std::move(head), true);
}

void Exchange::stream_file(int fd, uint64_t offset, uint64_t len) {
  if (conn_) conn_->stream_file(*this, fd, offset, len);
}

size_t Exchange::stream_backlog() const { return conn_ ? conn_->backlog() : 0; }

void Exchange::end_stream() {
  drain_cb_ = nullptr;
  close_cb_ = nullptr;
  if (conn_) conn_->end_stream(*this);
}

void Exchange::abort() {
  drain_cb_ = nullptr;
  close_cb_ = nullptr;
  if (conn_) conn_->abort(*this);
}

void Exchange::read_body(std::unique_ptr<BodySink> sink) {
  if (conn_) conn_->read_body(*this, std::move(sink));
  else if (sink) sink->on_abort();
}

void Connection::process() {
  for (int guard = 0; guard < 1000 && !dead_; ++guard) {
    if (state_ == State::Headers) {
      if (!parse_headers()) return;
      continue;
    }
    if (state_ == State::Body) {
      feed_body();
      if (state_ == State::Body) return;  // need more bytes
      continue;
    }
    return;  // Handling, Waiting, Writing: nothing to read now
  }
}

bool Connection::parse_headers() {
  evbuffer* in = bufferevent_get_input(bev_);
  size_t avail = evbuffer_get_length(in);
  if (avail == 0) return false;
  // Tolerate stray CRLFs between pipelined requests.
  while (avail >= 2) {
    unsigned char two[2];
    evbuffer_copyout(in, two, 2);
    if (two[0] == '\r' && two[1] == '\n') {
      evbuffer_drain(in, 2);
      avail -= 2;
    } else {
      break;
    }
  }
  if (!tls_) {
    // A TLS ClientHello on the plain-HTTP port: say so at once (clients such as skopeo then fall back
    // to plain HTTP immediately instead of waiting for a timeout).
    unsigned char first = 0;
    evbuffer_copyout(in, &first, 1);
    if (first == 0x16) {
      send_raw_and_close("HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
                         "this is a plain HTTP port: TLS is not configured here\n");
      return false;
    }
  }
  evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, nullptr);
  if (end.pos < 0) {
    if (avail > srv_->opts_.max_header_bytes) send_simple_error(431, "request headers too large");
    return false;
  }
  size_t head_len = size_t(end.pos) + 4;
  if (head_len > srv_->opts_.max_header_bytes) {
    send_simple_error(431, "request headers too large");
    return false;
  }
  const char* head = reinterpret_cast<const char*>(evbuffer_pullup(in, ssize_t(head_len)));
  auto ex = std::make_shared<Exchange>();
  ex->started_ = std::chrono::steady_clock::now();
  auto parsed = parse_request_head(std::string_view(head, head_len), ex->req_);
  evbuffer_drain(in, head_len);
  if (!parsed) {
    send_simple_error(parsed.error().status, parsed.error().message);
    return false;
  }
  ex->req_.peer = peer_;
  ex->conn_ = this;
  ex_ = ex;
  sink_.reset();
  status_ = 0;
  bytes_ = 0;
  cache_status_.clear();
  close_after_ = !ex->req_.keep_alive;
  body_done_ = !ex->req_.has_body();
  decoder_ = BodyDecoder(ex->req_.chunked, ex->req_.content_length.value_or(0));
  state_ = State::Handling;
  set_reading(false);
  srv_->handler_(ex);
  return state_ == State::Headers || state_ == State::Body;  // keep going if more input can be used now
}

void Connection::read_body(Exchange& ex, std::unique_ptr<BodySink> sink) {
  if (&ex != ex_.get() || state_ != State::Handling) {
    if (sink) sink->on_abort();
    return;
  }
  sink_ = std::move(sink);
  if (body_done_) {
    state_ = State::Waiting;
    auto* s = sink_.get();
    s->on_end();
    return;
  }
  if (iequals(ex.req_.header("expect"), "100-continue"))
    evbuffer_add(bufferevent_get_output(bev_), "HTTP/1.1 100 Continue\r\n\r\n", 25);
  state_ = State::Body;
  set_reading(true);
  // Bytes may already be buffered; process them from the read callback path.
  if (depth_ > 0) {
    // Called from within a handler invoked by process(): the loop in process() continues.
    return;
  }
  guarded([](Connection* c) { c->process(); });
}

void Connection::feed_body() {
  evbuffer* in = bufferevent_get_input(bev_);
  while (state_ == State::Body && evbuffer_get_length(in) > 0) {
    evbuffer_iovec vec[8];
    int n = evbuffer_peek(in, -1, nullptr, vec, 8);
    size_t consumed_total = 0;
    bool stop = false;
    for (int i = 0; i < n && !stop; ++i) {
      std::string_view chunk(static_cast<const char*>(vec[i].iov_base), vec[i].iov_len);
      while (!chunk.empty()) {
        auto step = decoder_.feed(chunk);
        consumed_total += step.consumed;
        chunk.remove_prefix(step.consumed);
        if (step.error) {
          evbuffer_drain(in, consumed_total);
          sink_->on_abort();
          sink_.reset();
          close_after_ = true;
          if (ex_ && !ex_->responded_) {
            state_ = State::Waiting;
            send_simple_error(400, step.error_message);
          } else {
            kill();
          }
          return;
        }
        if (!step.data.empty()) {
          if (!sink_->on_data(step.data.data(), step.data.size())) {
            evbuffer_drain(in, consumed_total);
            close_after_ = true;
            body_done_ = false;
            if (state_ == State::Body) state_ = State::Waiting;
            set_reading(false);
            return;
          }
          if (state_ != State::Body) {  // the sink responded from on_data
            evbuffer_drain(in, consumed_total);
            return;
          }
        }
        if (decoder_.done()) {
          stop = true;
          break;
        }
      }
    }
    evbuffer_drain(in, consumed_total);
    if (decoder_.done()) {
      finish_body();
      return;
    }
  }
}

void Connection::finish_body() {
  body_done_ = true;
  state_ = State::Waiting;
  set_reading(false);
  sink_->on_end();
}

void Connection::stream_file(Exchange& ex, int fd, uint64_t offset, uint64_t len) {
  if (&ex != ex_.get() || dead_ || state_ != State::Streaming || len == 0) return;
  if (ex.req_.method == "HEAD") return;
  int dupfd = ::dup(fd);
  if (dupfd < 0) {
    abort(ex);
    return;
  }
  evbuffer* out = bufferevent_get_output(bev_);
  if (!tls_) {
    evbuffer_add_file(out, dupfd, ev_off_t(offset), ev_off_t(len));
  } else {
    evbuffer_file_segment* seg = evbuffer_file_segment_new(dupfd, ev_off_t(offset), ev_off_t(len),
                                                           EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_SENDFILE);
    if (!seg) {
      ::close(dupfd);
      abort(ex);
      return;
    }
    evbuffer_add_file_segment(out, seg, 0, ev_off_t(len));
    evbuffer_file_segment_free(seg);
  }
  bytes_ += len;
}

void Connection::end_stream(Exchange& ex) {
  if (&ex != ex_.get() || dead_ || state_ != State::Streaming) return;
  state_ = State::Writing;
  bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);
  guarded([](Connection* c) { c->on_written(); });
}

void Connection::abort(Exchange& ex) {
  if (&ex != ex_.get() || dead_) return;
  ex.conn_ = nullptr;
  ex_.reset();
  kill();
}

void Connection::respond(Exchange& ex, Response r, bool streaming) {
  if (&ex != ex_.get() || dead_) return;
  if (state_ == State::Body || !body_done_) close_after_ = true;  // unread body: cannot reuse the connection
  if (r.close) close_after_ = true;
  evbuffer* out = bufferevent_get_output(bev_);
  const bool head = ex.req_.method == "HEAD";
  const bool no_body_status = r.status == 204 || r.status == 304 || r.status < 200;
  uint64_t length = r.file ? r.file->length : r.body.size();
  if ((head || streaming) && r.content_length) length = *r.content_length;

  std::string h;
  h.reserve(256 + r.headers.size() * 64 + srv_->extra_header_block_.size());
  h += "HTTP/1.1 ";
  h += std::to_string(r.status);
  h += ' ';
  h += reason_phrase(r.status);
  h += "\r\n";
  for (const auto& [k, v] : r.headers) {
    h += k;
    h += ": ";
    if (!srv_->opts_.location_base.empty() && !v.empty() && v[0] == '/' && k == "Location") h += srv_->opts_.location_base;
    h += v;
    h += "\r\n";
  }
  h += srv_->extra_header_block_;
  h += "Date: ";
  h += http_date();
  h += "\r\n";
  if (!no_body_status) {
    h += "Content-Length: ";
    h += std::to_string(length);
    h += "\r\n";
  }
  if (close_after_) h += "Connection: close\r\n";
  else if (ex.req_.http10) h += "Connection: keep-alive\r\n";
  h += "\r\n";
  evbuffer_add(out, h.data(), h.size());
  bytes_ = 0;
  if (streaming) {
    status_ = r.status;
    cache_status_ = std::move(r.cache_status);
    state_ = head || no_body_status ? State::Writing : State::Streaming;
    set_reading(false);
    if (state_ == State::Streaming) bufferevent_setwatermark(bev_, EV_WRITE, kStreamLowWater, 0);
    bufferevent_enable(bev_, EV_WRITE);
    return;
  }
  if (!head && !no_body_status) {
    if (r.file) {
      if (r.file->length == 0) {
        ::close(r.file->fd);
      } else if (!tls_) {
        evbuffer_add_file(out, r.file->fd, ev_off_t(r.file->offset), ev_off_t(r.file->length));
      } else {
        evbuffer_file_segment* seg = evbuffer_file_segment_new(
            r.file->fd, ev_off_t(r.file->offset), ev_off_t(r.file->length),
            EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_SENDFILE);
        if (seg) {
          evbuffer_add_file_segment(out, seg, 0, ev_off_t(r.file->length));
          evbuffer_file_segment_free(seg);
        } else {
          ::close(r.file->fd);
        }
      }
      bytes_ = r.file->length;
    } else {
      evbuffer_add(out, r.body.data(), r.body.size());
      bytes_ = r.body.size();
    }
  } else if (r.file) {
    ::close(r.file->fd);
  }
  status_ = r.status;
  cache_status_ = std::move(r.cache_status);
  if (state_ == State::Body) {
    // The sink answered early (an error): stop reading the rest of the body.
    if (sink_) sink_->on_abort();
    sink_.reset();
  }
  state_ = State::Writing;
  set_reading(false);
  bufferevent_enable(bev_, EV_WRITE);
}

void Connection::on_written() {
  if (state_ == State::Streaming) {
    if (ex_ && ex_->drain_cb_) {
      auto keep = ex_;  // the callback may end or abort the exchange
      auto cb = keep->drain_cb_;
      cb();
    }
    return;
  }
  if (state_ != State::Writing) return;
  if (evbuffer_get_length(bufferevent_get_output(bev_)) > 0) return;
  if (srv_->logger_ && ex_) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - ex_->started_).count();
    srv_->logger_(ex_->req_, status_, bytes_, secs, cache_status_);
  }
  if (ex_) ex_->conn_ = nullptr;
  ex_.reset();
  sink_.reset();
  if (close_after_) {
    kill();
    return;
  }
  state_ = State::Headers;
  set_reading(true);
  process();
}

void Connection::on_event(short what) {
  if (what & BEV_EVENT_CONNECTED) return;
  const bool busy = state_ != State::Headers && state_ != State::Body;
  if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && busy) {
    // No bytes from the client while we work on or send its response: that is normal.
    bufferevent_enable(bev_, EV_READ);
    return;
  }
  if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && busy && !(what & BEV_EVENT_ERROR)) {
    // The client finished sending (half-close); answer, then close.
    close_after_ = true;
    bufferevent_disable(bev_, EV_READ);
    return;
  }
  if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && state_ == State::Headers &&
      evbuffer_get_length(bufferevent_get_input(bev_)) == 0) {
    kill();  // idle keep-alive connection
    return;
  }
  if (what & BEV_EVENT_EOF && state_ == State::Headers && !ex_) {
    kill();
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
    kill();
  }
}

void Connection::send_raw_and_close(std::string_view raw, int status) {
  close_after_ = true;
  evbuffer_drain(bufferevent_get_input(bev_), evbuffer_get_length(bufferevent_get_input(bev_)));
  evbuffer_add(bufferevent_get_output(bev_), raw.data(), raw.size());
  status_ = status;
  state_ = State::Writing;
  if (!ex_) {
    ex_ = std::make_shared<Exchange>();
    ex_->started_ = std::chrono::steady_clock::now();
    ex_->req_.peer = peer_;
  }
  ex_->responded_ = true;
  bufferevent_enable(bev_, EV_WRITE);
}

void Connection::send_simple_error(int status, std::string_view msg) {
  std::string body = R"({"errors":[{"code":"UNSUPPORTED","message":")" + std::string(msg) + R"("}]})";
  send_raw_and_close("HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) +
                         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body,
                     status);
}

// ---- Server ----

static std::expected<std::pair<sockaddr_storage, socklen_t>, std::string> resolve_addr(const std::string& addr) {
  std::string host, port;
  if (!addr.empty() && addr[0] == '[') {
    auto close = addr.find(']');
    if (close == std::string::npos || close + 1 >= addr.size() || addr[close + 1] != ':')
      return std::unexpected("invalid address '" + addr + "'");
    host = addr.substr(1, close - 1);
    port = addr.substr(close + 2);
  } else {
    auto colon = addr.rfind(':');
    if (colon == std::string::npos) return std::unexpected("invalid address '" + addr + "': expected host:port");
    host = addr.substr(0, colon);
    port = addr.substr(colon + 1);
  }
  if (host.empty()) host = "0.0.0.0";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || !res) return std::unexpected("cannot resolve '" + addr + "': " + gai_strerror(rc));
  std::pair<sockaddr_storage, socklen_t> out{};
  std::memcpy(&out.first, res->ai_addr, res->ai_addrlen);
  out.second = res->ai_addrlen;
  freeaddrinfo(res);
  return out;
}

// A server TLS context (TLS 1.2 and newer) from the certificate chain and key files.
static std::expected<SSL_CTX*, std::string> make_tls_context(const ServerOptions& opts) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return std::unexpected("cannot create TLS context: " + ssl_error_string());
  auto fail = [ctx](std::string msg) -> std::expected<SSL_CTX*, std::string> {
    SSL_CTX_free(ctx);
    return std::unexpected(std::move(msg));
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(ctx, opts.tls_certificate.c_str()) != 1)
    return fail("http.tls.certificate: cannot load '" + opts.tls_certificate + "': " + ssl_error_string());
  if (SSL_CTX_use_PrivateKey_file(ctx, opts.tls_key.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail("http.tls.key: cannot load '" + opts.tls_key + "': " + ssl_error_string());
  if (SSL_CTX_check_private_key(ctx) != 1)
    return fail("http.tls.key: does not match the certificate: " + ssl_error_string());
  return ctx;
}

std::expected<void, std::string> Server::reload_tls() {
  if (!ssl_ctx_) return {};
  auto ctx = make_tls_context(opts_);
  if (!ctx) return std::unexpected(ctx.error());
  SSL_CTX_free(ssl_ctx_);  // connections already accepted hold their own reference
  ssl_ctx_ = *ctx;
  return {};
}

std::expected<std::unique_ptr<Server>, std::string> Server::start(event_base* base, ServerOptions opts,
                                                                  Handler handler, AccessLogger logger) {
  std::unique_ptr<Server> s(new Server());
  s->base_ = base;
  s->opts_ = std::move(opts);
  s->handler_ = std::move(handler);
  s->logger_ = std::move(logger);
  for (const auto& [k, v] : s->opts_.extra_headers) s->extra_header_block_ += k + ": " + v + "\r\n";

  if (!s->opts_.tls_certificate.empty()) {
    auto ctx = make_tls_context(s->opts_);
    if (!ctx) return std::unexpected(ctx.error());
    s->ssl_ctx_ = *ctx;
  }

  auto addr = resolve_addr(s->opts_.addr);
  if (!addr) return std::unexpected("http.addr: " + addr.error());
  s->listener_ = evconnlistener_new_bind(base, &Server::on_accept, s.get(),
                                         LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
                                         reinterpret_cast<sockaddr*>(&addr->first), int(addr->second));
  if (!s->listener_)
    return std::unexpected("http.addr: cannot listen on '" + s->opts_.addr + "': " + std::strerror(errno));
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(evconnlistener_get_fd(s->listener_), reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return s;
}

Server::~Server() {
  stop_accepting();
  if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
}

void Server::stop_accepting() {
  if (listener_) {
    evconnlistener_free(listener_);
    listener_ = nullptr;
  }
}

void Server::on_accept(evconnlistener*, int fd, sockaddr* sa, int, void* arg) {
  auto* srv = static_cast<Server*>(arg);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char host[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(sa)->sin_addr, host, sizeof host);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(sa)->sin6_addr, host, sizeof host);
  bufferevent* bev;
  if (srv->ssl_ctx_) {
    SSL* ssl = SSL_new(srv->ssl_ctx_);
    bev = bufferevent_openssl_socket_new(srv->base_, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev) bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
  } else {
    bev = bufferevent_socket_new(srv->base_, fd, BEV_OPT_CLOSE_ON_FREE);
  }
  if (!bev) {
    ::close(fd);
    return;
  }
  new Connection(srv, bev, host, srv->ssl_ctx_ != nullptr);
}

}  // namespace wharf::http
