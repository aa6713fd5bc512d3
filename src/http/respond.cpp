// The writing half of Connection and the Exchange API on top of it: response heads, bodies, file
// streaming, and the answers the connection gives itself (malformed requests, timeouts).
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
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
