#include "src/http/connection.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace wharf::http {

namespace {

timeval to_timeval(std::chrono::steady_clock::duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us < 0) us = 0;
  return timeval{long(us / 1000000), long(us % 1000000)};
}

}  // namespace

// ---- Connection ----

Connection::Connection(Server* srv, bufferevent* bev, std::string peer, bool tls)
    : srv_(srv), bev_(bev), peer_(std::move(peer)), tls_(tls), files_(&srv->body_pool_), stream_blocks_(srv->body_pool_) {
  srv_->conns_.insert(this);
  timer_ = evtimer_new(bufferevent_get_base(bev_), &Connection::on_timer_cb, this);
  bufferevent_setcb(bev_, &Connection::on_read_cb, &Connection::on_write_cb, &Connection::on_event_cb, this);
  timeval rt{long(srv_->opts_.idle_timeout.count()), 0};
  timeval wt{long(srv_->opts_.write_timeout.count()), 0};
  bufferevent_set_timeouts(bev_, &rt, &wt);
  bufferevent_setwatermark(bev_, EV_READ, 0, kInputHighWater);
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  // The first request's head (and the TLS handshake before it) must arrive within the header deadline.
  head_start_ = Clock::now();
  arm_timer(srv_->opts_.header_timeout);
}

Connection::~Connection() {
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
  if (timer_) event_free(timer_);
  if (ktls_write_) event_free(ktls_write_);
  if (bulk_) event_free(bulk_);
  files_.clear();
  // libevent frees the bufferevent later, from the loop: give pool blocks still queued back now, while
  // the server (and its pool) certainly exists.
  evbuffer* out = bufferevent_get_output(bev_);
  evbuffer_drain(out, evbuffer_get_length(out));
  bufferevent_free(bev_);
  srv_->conns_.erase(this);
}

void Connection::on_read_cb(bufferevent*, void* arg) {
  static_cast<Connection*>(arg)->guarded([](Connection* c) { c->process(); });
}
void Connection::on_write_cb(bufferevent*, void* arg) {
  static_cast<Connection*>(arg)->guarded([](Connection* c) { c->on_written(); });
}
void Connection::on_event_cb(bufferevent*, short what, void* arg) {
  static_cast<Connection*>(arg)->guarded([what](Connection* c) { c->on_event(what); });
}
void Connection::on_timer_cb(int, short, void* arg) {
  static_cast<Connection*>(arg)->guarded([](Connection* c) { c->on_timer(); });
}
size_t Connection::backlog() const {
  return evbuffer_get_length(bufferevent_get_output(bev_)) + size_t(files_.pending());
}

void Connection::arm_timer(Clock::duration after) {
  if (!timer_) return;
  timeval tv = to_timeval(after);
  evtimer_add(timer_, &tv);
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
    if (state_ == State::Lingering) discard_input();
    return;  // Handling, Waiting, Writing: nothing to read now
  }
}

bool Connection::parse_headers() {
  evbuffer* in = bufferevent_get_input(bev_);
  const size_t avail = evbuffer_get_length(in);
  if (avail == 0) return false;
  if (!tls_ && scanner_.scanned() == 0) {
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
  // Scan only the bytes not seen yet (a slow client costs linear time), and no more than the limit.
  const size_t limit = std::min(avail, srv_->opts_.max_header_bytes + 1);
  auto result = HeadScanner::Result::More;
  while (result == HeadScanner::Result::More && scanner_.scanned() < limit) {
    evbuffer_ptr p;
    evbuffer_ptr_set(in, &p, scanner_.scanned(), EVBUFFER_PTR_SET);
    size_t want = limit - scanner_.scanned();
    evbuffer_iovec vec[8];
    int n = evbuffer_peek(in, ssize_t(want), &p, vec, 8);
    if (n <= 0) break;
    for (int i = 0; i < std::min(n, 8) && want > 0 && result == HeadScanner::Result::More; ++i) {
      size_t len = std::min(vec[i].iov_len, want);
      result = scanner_.feed(std::string_view(static_cast<const char*>(vec[i].iov_base), len));
      want -= len;
    }
  }
  if (result == HeadScanner::Result::Error) {
    send_simple_error(scanner_.error().status, scanner_.error().message);
    return false;
  }
  if (result == HeadScanner::Result::More) {
    if (scanner_.scanned() > srv_->opts_.max_header_bytes) {
      send_simple_error(431, "request headers too large");
      return false;
    }
    if (head_start_ == Clock::time_point{}) {  // the first bytes of this head: its deadline starts now
      head_start_ = Clock::now();
      arm_timer(srv_->opts_.header_timeout);  // re-arms the one timer (a heap update, no system call)
    }
    return false;
  }
  const size_t head_len = scanner_.head_length();
  if (head_len > srv_->opts_.max_header_bytes) {
    send_simple_error(431, "request headers too large");
    return false;
  }
  scanner_ = HeadScanner();
  head_start_ = {};
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
  body_paused_ = false;
  decoder_ = BodyDecoder(ex->req_.chunked, ex->req_.content_length.value_or(0));
  state_ = State::Handling;
  srv_->handler_(ex);
  return state_ == State::Headers || state_ == State::Body;  // keep going if more input can be used now
}

void Connection::on_written() {
  if (!files_.empty()) {
    if (!pump_files()) return;
    if (!files_.empty() && state_ != State::Streaming) return;  // more to send: called again on drain
    update_watermark();
  }
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
    if (linger_ && !peer_eof_) start_linger();
    else kill();
    return;
  }
  state_ = State::Headers;
  process();
}

// Lingering close (as nginx does): the answer is out; shut down our side, then read and discard what the
// client still sends for a bounded time and amount, so that closing does not reset the connection
// (a reset makes the client's TCP stack drop the answer it has not read yet).
void Connection::start_linger() {
  state_ = State::Lingering;
  if (!tls_) ::shutdown(bufferevent_getfd(bev_), SHUT_WR);
  bufferevent_setwatermark(bev_, EV_READ, 0, 0);
  timeval idle = to_timeval(kLingerIdle);
  bufferevent_set_timeouts(bev_, &idle, nullptr);
  bufferevent_enable(bev_, EV_READ);
  linger_end_ = Clock::now() + kLingerTime;
  arm_timer(kLingerTime);
  discard_input();
}

void Connection::discard_input() {
  evbuffer* in = bufferevent_get_input(bev_);
  size_t n = evbuffer_get_length(in);
  evbuffer_drain(in, n);
  linger_bytes_ += n;
  if (linger_bytes_ > kLingerBytes) kill();
}

void Connection::on_timer() {
  const auto& o = srv_->opts_;
  switch (state_) {
    case State::Headers: {
      if (head_start_ == Clock::time_point{}) return;  // waiting for a request: the idle timeout applies
      auto left = head_start_ + o.header_timeout - Clock::now();
      if (left > Clock::duration::zero()) return arm_timer(left);
      return time_out("request head not received within " + std::to_string(o.header_timeout.count()) + "s");
    }
    case State::Body: {
      if (o.min_body_rate == 0) return;
      if (body_paused_) {  // we are the slow party: the period starts again
        rate_mark_ = body_bytes_;
        return arm_timer(o.body_rate_period);
      }
      const uint64_t period = uint64_t(std::max<int64_t>(1, o.body_rate_period.count()));
      const uint64_t need = o.min_body_rate > UINT64_MAX / period ? UINT64_MAX : o.min_body_rate * period;
      if (body_bytes_ - rate_mark_ < need)
        return time_out("request body slower than " + std::to_string(o.min_body_rate) + " bytes/s");
      rate_mark_ = body_bytes_;
      return arm_timer(o.body_rate_period);
    }
    case State::Lingering: {
      auto left = linger_end_ - Clock::now();
      if (left > Clock::duration::zero()) return arm_timer(left);
      return kill();
    }
    default:
      return;  // handling or answering: the write timeout applies
  }
}

void Connection::time_out(std::string_view what) {
  if (sink_ && state_ == State::Body) sink_->on_abort();
  sink_.reset();
  // Nothing ever arrived over TLS (maybe not even a handshake), or an answer has begun: just close.
  const bool silent = tls_ && scanner_.scanned() == 0 && state_ == State::Headers;
  if (silent || (ex_ && ex_->responded_)) return kill();
  // The answer is followed by a lingering close like any early answer: a plain close while the client's
  // next bytes are in flight resets the connection, and the reset can destroy the 408 before the client
  // reads it. Lingering is bounded (kLingerTime, kLingerIdle, kLingerBytes), so a trickle gains little.
  send_simple_error(408, what);
}

void Connection::on_event(short what) {
  if (what & BEV_EVENT_CONNECTED) return;
  if (state_ == State::Lingering) {
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) kill();
    return;
  }
  const bool busy = state_ != State::Headers && state_ != State::Body;
  if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && busy) {
    // No bytes from the client while we work on or send its response: that is normal.
    bufferevent_enable(bev_, EV_READ);
    return;
  }
  if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && busy && !(what & BEV_EVENT_ERROR)) {
    // The client finished sending (half-close); answer, then close.
    close_after_ = true;
    peer_eof_ = true;
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

}  // namespace wharf::http
