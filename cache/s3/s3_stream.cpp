// ObjectStream: one GetObject per range, paused while the reader is not asking (see s3_stream.hpp).
#include "cache/s3/s3_stream.hpp"

#include <event2/event.h>

namespace wharf::cache {

void ObjectStream::EventFree::operator()(event* e) const { event_free(e); }

ObjectStream::ObjectStream(s3::Client& client, event_base* base, std::string key, uint64_t first, uint64_t end)
    : client_(client), base_(base), key_(std::move(key)), pos_(first), end_(end) {}

ObjectStream::~ObjectStream() {
  if (id_) client_.cancel(id_);
}

void ObjectStream::next(std::function<void(std::expected<std::string_view, std::string>)> done) {
  if (failure_) return done(std::unexpected(*failure_));
  if (ended_) return done(std::string_view());
  waiter_ = std::move(done);
  if (paused_) {
    paused_ = false;
    if (idle_) evtimer_del(idle_.get());
    client_.resume(id_);  // curl may hand over the held piece right here (the waiter then runs)
    return;
  }
  if (!id_) start();
}

void ObjectStream::start() {
  if (pos_ >= end_) {
    ended_ = true;
    return settle(std::string_view());
  }
  attempt_start_ = pos_;
  head_error_.clear();
  s3::GetHandlers h;
  h.on_head = [this](const s3::ObjectInfo& info) { on_head(info); };
  h.hold = [this] { return hold(); };
  h.on_data = [this](const char* p, size_t n) { return on_data(p, n); };
  h.on_done = [this](std::expected<void, s3::S3Error> r) { on_done(std::move(r)); };
  id_ = client_.get_object(key_, s3::ByteRange{pos_, end_ - 1}, std::move(h));
}

void ObjectStream::on_head(const s3::ObjectInfo& info) {
  const uint64_t want = end_ - pos_;
  if (info.size != want) {
    head_error_ = std::string("S3 GetObject ").append(key_).append(": answered ").append(std::to_string(info.size))
                      .append(" bytes for a range of ").append(std::to_string(want));
  } else if (etag_.empty()) {
    etag_ = info.etag;
  } else if (info.etag != etag_) {
    head_error_ = std::string("S3 GetObject ").append(key_).append(": the object changed while it was streamed");
  }
}

bool ObjectStream::hold() {
  if (waiter_ || !head_error_.empty()) return false;  // on_data takes the piece (or aborts)
  paused_ = true;
  if (!idle_) idle_.reset(evtimer_new(base_, &ObjectStream::on_idle, this));
  if (idle_) {
    const timeval tv{static_cast<time_t>(kIdleDrop.count() / 1000), static_cast<suseconds_t>((kIdleDrop.count() % 1000) * 1000)};
    evtimer_add(idle_.get(), &tv);
  }
  return true;
}

bool ObjectStream::on_data(const char* p, size_t n) {
  if (!head_error_.empty()) return false;
  if (!waiter_ || n > end_ - pos_) {
    head_error_ = std::string("S3 GetObject ").append(key_).append(": more bytes than the range");
    return false;
  }
  pos_ += n;
  auto done = std::move(waiter_);
  waiter_ = nullptr;
  done(std::string_view(p, n));  // may destroy this stream: nothing of it is touched afterwards
  return true;
}

void ObjectStream::on_done(std::expected<void, s3::S3Error> r) {
  id_ = 0;
  paused_ = false;
  if (idle_) evtimer_del(idle_.get());
  if (!head_error_.empty()) return settle(std::unexpected(head_error_));
  if (r) {
    if (pos_ != end_) {
      return settle(std::unexpected(std::string("S3 GetObject ").append(key_).append(": the answer ended ")
                                        .append(std::to_string(end_ - pos_)).append(" bytes early")));
    }
    ended_ = true;
    return settle(std::string_view());
  }
  // A transfer that moved and then broke (S3 closed a connection that sat paused, a reset): go on from here.
  if (pos_ > attempt_start_ && r.error().status < 300 && failures_ < kRestarts) {
    ++failures_;
    if (waiter_) start();
    return;
  }
  settle(std::unexpected(std::string("S3 GetObject ").append(key_).append(": ").append(r.error().str())));
}

void ObjectStream::settle(std::expected<std::string_view, std::string> piece) {
  if (!piece) failure_ = piece.error();
  if (!waiter_) return;  // next() reports it
  auto done = std::move(waiter_);
  waiter_ = nullptr;
  done(std::move(piece));
}

void ObjectStream::on_idle(int, short, void* arg) {
  auto* self = static_cast<ObjectStream*>(arg);
  if (!self->paused_ || !self->id_) return;
  // The reader is slow: give the pooled connection back; the next next() starts from pos_.
  self->client_.cancel(self->id_);
  self->id_ = 0;
  self->paused_ = false;
}

}  // namespace wharf::cache
