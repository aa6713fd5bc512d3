// Posting S3 calls to the loop that owns the client and waiting for them (see s3_bridge.hpp).
#include "cache/s3/s3_bridge.hpp"

#include <spdlog/spdlog.h>

namespace wharf::cache {
void S3Bridge::run_posted(evutil_socket_t, short, void* arg) {
  std::unique_ptr<Posted> p(static_cast<Posted*>(arg));
  {
    std::lock_guard lock(p->state->mu);
    p->state->pending.erase(p.get());
  }
  p->fn();
}

S3Bridge::~S3Bridge() {
  std::lock_guard lock(state_->mu);
  for (Posted* p : state_->pending) delete p;  // the loop is stopped: they never run
  state_->pending.clear();
}

S3Bridge::S3Bridge(event_base* base, s3::Client& client, Mode mode)
    : base_(base), client_(client), mode_(mode), loop_thread_(std::this_thread::get_id()),
      state_(std::make_shared<State>()) {}

void S3Bridge::close() {
  std::lock_guard lock(state_->mu);
  state_->closed = true;
  state_->cv.notify_all();
}

std::string S3Bridge::failure_reason() const {
  if (on_loop_thread()) return "internal error: a blocking S3 call on the event loop";
  return state_->closed ? "the server is stopping" : "the S3 call did not complete";
}

void S3Bridge::run(std::function<void()> start, const std::function<bool()>& finished) const {
  if (on_loop_thread()) {
    spdlog::error("internal error: a blocking S3 call was made on the event loop; refused");
    return;
  }
  if (mode_ == Mode::Private) {
    start();
    for (;;) {
      {
        std::lock_guard lock(state_->mu);
        if (finished() || state_->closed) return;
      }
      event_base_loop(base_, EVLOOP_ONCE);
    }
  }
  if (!post_fn(std::move(start))) return;
  // The client's own timeouts and retries bound every call; the wait only ends early on close().
  std::unique_lock lock(state_->mu);
  state_->cv.wait(lock, [&] { return finished() || state_->closed; });
}

bool S3Bridge::post_fn(std::function<void()> fn) const {
  auto* posted = new Posted{state_, std::move(fn)};
  {
    std::lock_guard lock(state_->mu);
    if (state_->closed) {
      delete posted;
      return false;
    }
    state_->pending.insert(posted);
  }
  const timeval now{0, 0};
  if (event_base_once(base_, -1, EV_TIMEOUT, &run_posted, posted, &now) != 0) {
    std::lock_guard lock(state_->mu);
    state_->pending.erase(posted);
    delete posted;
    return false;
  }
  return true;
}

}  // namespace wharf::cache
