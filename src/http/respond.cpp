// The writing half of Connection and the Exchange API on top of it: response heads, bodies, file
// streaming, and the answers the connection gives itself (malformed requests, timeouts).
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <ctime>

#include "src/http/connection.hpp"
#include "src/oci/errors.hpp"

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

// Bodies up to this size are copied behind their head (one TLS record; nginx's ssl_buffer_size is 16k).
constexpr size_t kInlineBody = 16 * 1024 - 512;

// The OCI error code for a status the connection itself answers (malformed requests, timeouts).
oci::ErrorCode code_for_status(int status) {
  if (status == 429) return oci::ErrorCode::TooManyRequests;
  if (status == 503) return oci::ErrorCode::Unavailable;
  return oci::ErrorCode::Unsupported;
}

}  // namespace

// ---- Exchange ----

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

void Exchange::stream_data(std::string_view bytes) {
  if (conn_) conn_->stream_data(*this, bytes);
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

void Exchange::pause_body() {
  if (conn_) conn_->pause_body(*this);
}

void Exchange::resume_body() {
  if (conn_) conn_->resume_body(*this);
}

void Exchange::read_body(std::unique_ptr<BodySink> sink) {
  if (conn_) conn_->read_body(*this, std::move(sink));
  else if (sink) sink->on_abort();
}

void Connection::stream_file(Exchange& ex, int fd, uint64_t offset, uint64_t len) {
  if (&ex != ex_.get() || dead_ || state_ != State::Streaming || len == 0) return;
  if (ex.req_.method == "HEAD") return;
  int dupfd = ::dup(fd);
  if (dupfd < 0) {
    abort(ex);
    return;
  }
  bytes_ += len;
  guarded([&](Connection* c) { c->queue_file(dupfd, offset, len); });
}

void Connection::stream_data(Exchange& ex, std::string_view bytes) {
  if (&ex != ex_.get() || dead_ || state_ != State::Streaming || bytes.empty()) return;
  if (ex.req_.method == "HEAD") return;
  bytes_ += bytes.size();
  if (!stream_blocks_.add(bufferevent_get_output(bev_), bytes)) kill();  // `this` may be gone
}

void Connection::queue_file(int fd, uint64_t offset, uint64_t len) {
  evbuffer* out = bufferevent_get_output(bev_);
  if (!tls_) {
    if (!add_sendfile_body(out, fd, offset, len)) {
      spdlog::warn("{}: cannot queue a file body for sending; closing the connection", peer_);
      kill();
    }
    return;
  }
  files_.push(fd, offset, len);
  update_watermark();
  // The kernel-TLS path waits until the head's TLS record is out; the pool path reads ahead now.
  pump_files();
}

bool Connection::pump_files() {
  if (files_.empty() || dead_) return !dead_;
  evbuffer* out = bufferevent_get_output(bev_);
  SSL* ssl = bufferevent_openssl_get_ssl(bev_);
  const bool ktls = ssl && BIO_get_ktls_send(SSL_get_wbio(ssl));
  if (choose_body_path(tls_, ktls) == BodyPath::KernelTls) {
    if (evbuffer_get_length(out) > 0) return true;  // records still queued: called again once they are out
    auto sent = files_.send_ktls(ssl);
    if (!sent) {
      spdlog::warn("{}: {}; closing the connection", peer_, sent.error());
      kill();
      return false;
    }
    if (!*sent) {
      if (!ktls_write_)
        ktls_write_ = event_new(bufferevent_get_base(bev_), bufferevent_getfd(bev_), EV_WRITE,
                                &Connection::on_ktls_writable_cb, this);
      timeval wt{long(srv_->opts_.write_timeout.count()), 0};
      if (!ktls_write_ || event_add(ktls_write_, &wt) != 0) {
        kill();
        return false;
      }
    }
    return true;
  }
  auto filled = files_.fill(out, kPumpHigh);
  if (!filled) {
    spdlog::warn("{}: file body: {}; closing the connection", peer_, filled.error());
    kill();
    return false;
  }
  return true;
}

void Connection::on_ktls_writable_cb(int, short what, void* arg) {
  static_cast<Connection*>(arg)->guarded([what](Connection* c) {
    if (what & EV_TIMEOUT) {  // the client stopped reading: guarded() closes the connection
      c->dead_ = true;
      return;
    }
    c->on_written();
  });
}

void Connection::update_watermark() {
  size_t low = 0;
  if (!files_.empty()) {
    SSL* ssl = bufferevent_openssl_get_ssl(bev_);
    low = ssl && BIO_get_ktls_send(SSL_get_wbio(ssl)) ? 0 : kPumpLow;
  } else if (state_ == State::Streaming) {
    low = kStreamLowWater;
  }
  if (low == write_low_) return;
  write_low_ = low;
  bufferevent_setwatermark(bev_, EV_WRITE, low, 0);
}

void Connection::end_stream(Exchange& ex) {
  if (&ex != ex_.get() || dead_ || state_ != State::Streaming) return;
  state_ = State::Writing;
  stream_blocks_.retire();
  update_watermark();
  guarded([](Connection* c) { c->on_written(); });
}

void Connection::abort(Exchange& ex) {
  if (&ex != ex_.get() || dead_) return;
  ex.conn_ = nullptr;
  ex_.reset();
  kill();
}

void Connection::respond(Exchange& ex, Response r, bool streaming) {
  // Queuing a file body may fail and close the connection: delete it only after the whole answer.
  guarded([&](Connection* c) { c->respond_now(ex, std::move(r), streaming); });
}

void Connection::respond_now(Exchange& ex, Response r, bool streaming) {
  if (&ex != ex_.get() || dead_) return;
  if (state_ == State::Body || !body_done_) {  // unread body: cannot reuse the connection
    close_after_ = true;
    linger_ = true;
  }
  if (r.close) close_after_ = true;
  evbuffer* out = bufferevent_get_output(bev_);
  const bool head = ex.req_.method == "HEAD";
  const bool no_body_status = r.status == 204 || r.status == 304 || r.status < 200;
  uint64_t length = r.file ? r.file->length : r.body.size();
  if ((head || streaming) && r.content_length) length = *r.content_length;

  std::string h;
  h.reserve(256 + r.headers.size() * 64 + srv_->extra_header_block_.size() +
            (r.body.size() <= kInlineBody ? r.body.size() : 0));
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
  // A small body goes out with its head in one piece: over TLS that is one record and one write
  // instead of two (bufferevent_openssl writes each buffer chain separately).
  const bool inline_body = !streaming && !head && !no_body_status && !r.file && r.body.size() <= kInlineBody;
  if (inline_body) h += r.body;
  evbuffer_add(out, h.data(), h.size());
  bytes_ = 0;
  if (streaming) {
    status_ = r.status;
    cache_status_ = std::move(r.cache_status);
    state_ = head || no_body_status ? State::Writing : State::Streaming;
    if (state_ == State::Streaming && !tls_) bufferevent_set_max_single_write(bev_, kStreamWrite);
    update_watermark();
    bufferevent_enable(bev_, EV_WRITE);
    return;
  }
  if (!head && !no_body_status) {
    if (r.file) {
      if (r.file->length == 0) {
        ::close(r.file->fd);
      } else {
        queue_file(r.file->fd, r.file->offset, r.file->length);
      }
      bytes_ = r.file->length;
    } else {
      if (!inline_body) evbuffer_add(out, r.body.data(), r.body.size());
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
  bufferevent_enable(bev_, EV_WRITE);
}

void Connection::send_raw_and_close(std::string_view raw, int status) {
  close_after_ = true;
  linger_ = true;  // the client may be sending more (a body, the rest of a long head)
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
  std::string body = oci::error_body(oci::Error{code_for_status(status), std::string(msg), {}});
  send_raw_and_close("HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) +
                         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body,
                     status);
}

}  // namespace wharf::http
