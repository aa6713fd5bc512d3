// The reading half of Connection: request bodies fed to their sink, paused and resumed by it, and the
// bulk reader that takes a plain-TCP body from the socket in large pieces.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "src/http/connection.hpp"

namespace wharf::http {

void Connection::on_bulk_read_cb(int, short what, void* arg) {
  static_cast<Connection*>(arg)->guarded([what](Connection* c) { c->read_bulk(what); });
}

void Connection::sync_reader() {
  ReadMode want = ReadMode::Bev;
  if (state_ == State::Body) want = body_paused_ ? ReadMode::Off : tls_ ? ReadMode::Bev : ReadMode::Bulk;
  if (want == read_mode_) return;
  if (read_mode_ == ReadMode::Bulk) event_del(bulk_);
  if (want == ReadMode::Bev) {
    if (!peer_eof_) bufferevent_enable(bev_, EV_READ);
  } else if (read_mode_ == ReadMode::Bev) {
    bufferevent_disable(bev_, EV_READ);
  }
  if (want == ReadMode::Bulk) {
    if (!bulk_)
      bulk_ = event_new(bufferevent_get_base(bev_), bufferevent_getfd(bev_), EV_READ | EV_PERSIST,
                        &Connection::on_bulk_read_cb, this);
    timeval idle{long(srv_->opts_.idle_timeout.count()), 0};  // as the bufferevent's read timeout
    if (!bulk_ || event_add(bulk_, &idle) != 0) {
      kill();
      return;
    }
  }
  read_mode_ = want;
}

void Connection::read_bulk(short what) {
  if (read_mode_ != ReadMode::Bulk) return;
  if (what & EV_TIMEOUT) return on_event(BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
  evbuffer* in = bufferevent_get_input(bev_);
  // The bufferevent keeps its input's end frozen for everyone but itself: thaw it for this one read.
  evbuffer_unfreeze(in, 0);
  evbuffer_iovec vec[2];
  const int n = evbuffer_reserve_space(in, ev_ssize_t(kBulkRead), vec, 2);
  ssize_t got = -1;
  int err = ENOMEM;
  if (n > 0) {
    iovec iov[2];
    for (int i = 0; i < n; ++i) iov[i] = iovec{vec[i].iov_base, vec[i].iov_len};
    do got = ::readv(bufferevent_getfd(bev_), iov, n);
    while (got < 0 && errno == EINTR);
    err = errno;
    size_t left = got > 0 ? size_t(got) : 0;
    int used = 0;
    for (; used < n && left > 0; ++used) {
      vec[used].iov_len = std::min(vec[used].iov_len, left);
      left -= vec[used].iov_len;
    }
    evbuffer_commit_space(in, vec, used);
  }
  evbuffer_freeze(in, 0);
  if (got < 0) {
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    return on_event(BEV_EVENT_READING | BEV_EVENT_ERROR);
  }
  if (got == 0) return on_event(BEV_EVENT_READING | BEV_EVENT_EOF);
  process();
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
  body_bytes_ = 0;
  rate_mark_ = 0;
  if (srv_->opts_.min_body_rate > 0) arm_timer(srv_->opts_.body_rate_period);
  // Bytes may already be buffered; process them from the read callback path.
  if (depth_ > 0) {
    // Called from within a handler invoked by process(): the loop in process() continues.
    return;
  }
  guarded([](Connection* c) { c->process(); });
}

void Connection::pause_body(Exchange& ex) {
  if (&ex == ex_.get() && state_ == State::Body) body_paused_ = true;  // sync_reader stops the socket
}

void Connection::resume_body(Exchange& ex) {
  if (&ex != ex_.get() || !body_paused_) return;
  body_paused_ = false;
  if (state_ != State::Body) return;
  if (tls_) pull_ssl_pending();
  // Inside this connection's callbacks the running process() (or the guard's sync_reader) carries on.
  if (depth_ == 0) guarded([](Connection* c) { c->process(); });
}

void Connection::pull_ssl_pending() {
  SSL* ssl = bufferevent_openssl_get_ssl(bev_);
  if (!ssl) return;
  evbuffer* in = bufferevent_get_input(bev_);
  char buf[16 * 1024];  // one TLS record at most
  for (int guard = 0; guard < 64 && SSL_pending(ssl) > 0; ++guard) {
    const int got = SSL_read(ssl, buf, int(sizeof buf));  // served from what OpenSSL holds: no socket read
    if (got <= 0) break;
    if (evbuffer_add(in, buf, size_t(got)) != 0) {  // the input's end is frozen outside libevent's reads
      evbuffer_unfreeze(in, 0);
      evbuffer_add(in, buf, size_t(got));
      evbuffer_freeze(in, 0);
    }
  }
}

void Connection::feed_body() {
  evbuffer* in = bufferevent_get_input(bev_);
  while (state_ == State::Body && !body_paused_ && evbuffer_get_length(in) > 0) {
    evbuffer_iovec vec[8];
    int n = evbuffer_peek(in, -1, nullptr, vec, 8);
    size_t consumed_total = 0;
    bool stop = false;
    for (int i = 0; i < std::min(n, 8) && !stop; ++i) {
      std::string_view chunk(static_cast<const char*>(vec[i].iov_base), vec[i].iov_len);
      while (!chunk.empty()) {
        auto step = decoder_.feed(chunk);
        consumed_total += step.consumed;
        body_bytes_ += step.consumed;
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
            linger_ = true;
            body_done_ = false;
            if (state_ == State::Body) state_ = State::Waiting;
            return;
          }
          if (state_ != State::Body) {  // the sink responded from on_data
            evbuffer_drain(in, consumed_total);
            return;
          }
          if (body_paused_ && !decoder_.done()) {  // the sink is behind: keep the rest buffered
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
  sink_->on_end();
}

}  // namespace wharf::http
