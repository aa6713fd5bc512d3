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

#include <algorithm>
#include <cstring>

#include "src/http/connection.hpp"
#include "src/http/file_body.hpp"

namespace wharf::http {

namespace {

std::string ssl_error_string() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

constexpr std::chrono::milliseconds kAcceptBackoffMin{100};
constexpr std::chrono::milliseconds kAcceptBackoffMax{1000};

}  // namespace

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
static std::expected<SSL_CTX*, std::string> make_tls_context(const ServerOptions& opts, bool ktls = false) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return std::unexpected("cannot create TLS context: " + ssl_error_string());
  auto fail = [ctx](std::string msg) -> std::expected<SSL_CTX*, std::string> {
    SSL_CTX_free(ctx);
    return std::unexpected(std::move(msg));
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Kernel TLS: OpenSSL hands the record layer of each connection to the kernel where the negotiated
  // cipher allows, and file bodies then go out with SSL_sendfile (see file_body.hpp).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | (ktls ? SSL_OP_ENABLE_KTLS : 0));
  // TLS 1.3: AES-128-GCM first (as Go's registry:2 picks it; a third fewer AES rounds per byte than
  // AES-256), unless the client puts ChaCha20 first (no AES instructions there).
  SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
  if (SSL_CTX_use_certificate_chain_file(ctx, opts.tls_certificate.c_str()) != 1)
    return fail("http.tls.certificate: cannot load '" + opts.tls_certificate + "': " + ssl_error_string());
  if (SSL_CTX_use_PrivateKey_file(ctx, opts.tls_key.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail("http.tls.key: cannot load '" + opts.tls_key + "': " + ssl_error_string());
  if (SSL_CTX_check_private_key(ctx) != 1)
    return fail("http.tls.key: does not match the certificate: " + ssl_error_string());
  return ctx;
}

std::expected<void, std::string> check_tls_files(const std::string& certificate, const std::string& key) {
  ServerOptions opts;
  opts.tls_certificate = certificate;
  opts.tls_key = key;
  auto ctx = make_tls_context(opts);
  if (!ctx) return std::unexpected(ctx.error());
  SSL_CTX_free(*ctx);
  return {};
}

std::expected<void, std::string> Server::reload_tls() {
  if (!ssl_ctx_) return {};
  auto ctx = make_tls_context(opts_, kernel_tls_);
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
    s->kernel_tls_ = kernel_tls_available();
    auto ctx = make_tls_context(s->opts_, s->kernel_tls_);
    if (!ctx) return std::unexpected(ctx.error());
    s->ssl_ctx_ = *ctx;
    if (s->kernel_tls_)
      spdlog::info("TLS on {}: the kernel offers TLS offload; file bodies go out with SSL_sendfile on "
                   "connections whose cipher it takes (else through a buffer pool)", s->opts_.addr);
    else
      spdlog::info("TLS on {}: no kernel TLS (no 'tls' TCP ULP); file bodies are read through a pool of "
                   "{} KiB buffers", s->opts_.addr, s->body_pool_.block_size() / 1024);
  }

  auto addr = resolve_addr(s->opts_.addr);
  if (!addr) return std::unexpected("http.addr: " + addr.error());
  s->listener_ = evconnlistener_new_bind(base, &Server::on_accept, s.get(),
                                         LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
                                         reinterpret_cast<sockaddr*>(&addr->first), int(addr->second));
  if (!s->listener_)
    return std::unexpected("http.addr: cannot listen on '" + s->opts_.addr + "': " + std::strerror(errno));
  evconnlistener_set_error_cb(s->listener_, &Server::on_accept_error);
  s->accept_timer_ = evtimer_new(base, &Server::on_accept_resume, s.get());
  if (!s->accept_timer_) return std::unexpected("http.addr: cannot create a timer");
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(evconnlistener_get_fd(s->listener_), reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return s;
}

Server::~Server() {
  stop_accepting();
  while (!conns_.empty()) delete *conns_.begin();  // each erases itself
  if (accept_timer_) event_free(accept_timer_);
  if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
}

void Server::stop_accepting() {
  if (accept_timer_) event_del(accept_timer_);
  if (listener_) {
    evconnlistener_free(listener_);
    listener_ = nullptr;
  }
}

// accept() failed for a reason other than "try again" (EMFILE, ENFILE, ENOBUFS, ...): the pending
// connection stays in the kernel's queue and the listener would wake at once, so pause it for a while
// that grows from 100 ms to 1 s, and log at most once a second with the number of failures.
void Server::on_accept_error(evconnlistener*, void* arg) {
  auto* srv = static_cast<Server*>(arg);
  const int err = EVUTIL_SOCKET_ERROR();
  ++srv->accept_failures_;
  srv->accept_backoff_ = std::clamp(srv->accept_backoff_ * 2, kAcceptBackoffMin, kAcceptBackoffMax);
  auto now = std::chrono::steady_clock::now();
  if (now - srv->accept_logged_ >= std::chrono::seconds(1)) {
    spdlog::warn("accept() on {} failed {} time(s) since the last report: {}; pausing new connections for {} ms",
                 srv->opts_.addr, srv->accept_failures_, std::strerror(err), srv->accept_backoff_.count());
    srv->accept_failures_ = 0;
    srv->accept_logged_ = now;
  }
  if (!srv->listener_) return;
  evconnlistener_disable(srv->listener_);
  const long ms = long(srv->accept_backoff_.count());
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(srv->accept_timer_, &tv);
}

void Server::on_accept_resume(int, short, void* arg) {
  auto* srv = static_cast<Server*>(arg);
  if (srv->listener_) evconnlistener_enable(srv->listener_);
}

void Server::on_accept(evconnlistener*, int fd, sockaddr* sa, int, void* arg) {
  auto* srv = static_cast<Server*>(arg);
  if (srv->accept_backoff_.count() != 0) {
    spdlog::info("accepting connections on {} again", srv->opts_.addr);
    srv->accept_backoff_ = {};
  }
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
