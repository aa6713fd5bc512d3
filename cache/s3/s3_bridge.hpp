#pragma once
// Runs S3 client calls to completion for callers that block (the BlobBackend calls marked blocking).
// The client lives on one event loop and is only touched from that loop's thread:
// - Shared: the server's loop runs on another thread; a worker posts the call to the loop
//   (event_base_once, thread-safe with evthread_use_pthreads) and waits for its completion. A call
//   from the loop thread itself fails at once instead of deadlocking the loop.
// - Private: an offline verb owns the loop; the caller's thread runs it until the call completes.
// close() (shutdown) wakes every waiter with a failure; later calls fail at once.
#include <event2/event.h>

#include <condition_variable>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "src/s3/client.hpp"

namespace wharf::cache {

class S3Bridge {
 public:
  // Who runs the loop of `base`: the server (on the thread constructing the bridge), or the caller.
  enum class Mode { Shared, Private };
  // `client` must live on `base`; both outlive the bridge.
  S3Bridge(event_base* base, s3::Client& client, Mode mode);
  // Frees calls posted to a loop that stopped before running them.
  ~S3Bridge();
  S3Bridge(const S3Bridge&) = delete;
  S3Bridge& operator=(const S3Bridge&) = delete;

  // True on the thread that runs the loop in Shared mode (where blocking is forbidden).
  bool on_loop_thread() const { return mode_ == Mode::Shared && std::this_thread::get_id() == loop_thread_; }
  // The client, for calls made on the loop thread (reads, presigning).
  s3::Client& client() const { return client_; }
  // Fails every waiting and later call (the loop is about to stop).
  void close();

  // Starts a call with `start(client, done)` and waits for `done`; fails with a Transport error when
  // called on the loop thread, after close(), or when the loop never runs it.
  template <typename T>
  std::expected<T, s3::S3Error> call(std::function<uint64_t(s3::Client&, s3::Done<T>)> start) const {
    auto slot = std::make_shared<std::optional<std::expected<T, s3::S3Error>>>();
    auto st = state_;
    run([this, slot, st, start] {
      start(client_, [slot, st](std::expected<T, s3::S3Error> r) {
        std::lock_guard lock(st->mu);
        *slot = std::move(r);
        st->cv.notify_all();
      });
    }, [slot] { return slot->has_value(); });
    std::lock_guard lock(st->mu);
    if (!slot->has_value()) return std::unexpected(s3::transport_error(failure_reason()));
    return std::move(**slot);
  }

  // Starts a call with `start(client, done)` without waiting for it: `done` runs later on the loop thread
  // (Shared), or before post() returns (Private, and on the loop thread itself); at once with a Transport
  // error after close(). If the loop stops before running it, `done` never runs.
  template <typename T>
  void post(std::function<uint64_t(s3::Client&, s3::Done<T>)> start, s3::Done<T> done) const {
    if (on_loop_thread()) {
      start(client_, std::move(done));
      return;
    }
    if (mode_ == Mode::Private) return done(call<T>(std::move(start)));
    auto shared = std::make_shared<s3::Done<T>>(std::move(done));
    if (!post_fn([this, start = std::move(start), shared] { start(client_, std::move(*shared)); }))
      (*shared)(std::unexpected(s3::transport_error(failure_reason())));
  }

  // Starts every call at once and waits for all of them; results in order (each as call() gives it).
  template <typename T>
  std::vector<std::expected<T, s3::S3Error>> call_all(
      std::vector<std::function<uint64_t(s3::Client&, s3::Done<T>)>> starts) const {
    const size_t n = starts.size();
    auto slots = std::make_shared<std::vector<std::optional<std::expected<T, s3::S3Error>>>>(n);
    auto left = std::make_shared<size_t>(n);
    auto st = state_;
    run([this, slots, left, st, starts = std::move(starts)] {
      for (size_t i = 0; i < starts.size(); ++i) {
        starts[i](client_, [slots, left, st, i](std::expected<T, s3::S3Error> r) {
          std::lock_guard lock(st->mu);
          (*slots)[i] = std::move(r);
          --*left;
          st->cv.notify_all();
        });
      }
    }, [left] { return *left == 0; });
    std::lock_guard lock(st->mu);
    std::vector<std::expected<T, s3::S3Error>> out;
    for (auto& slot : *slots)
      out.push_back(slot ? std::move(*slot) : std::expected<T, s3::S3Error>(std::unexpected(s3::transport_error(failure_reason()))));
    return out;
  }

 private:
  struct Posted;
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool closed = false;
    std::set<Posted*> pending;  // posted to the loop, not run yet
  };
  struct Posted {
    std::shared_ptr<State> state;
    std::function<void()> fn;
  };
  static void run_posted(evutil_socket_t, short, void* arg);
  // Posts (Shared) or runs (Private) `start`, then waits until `finished()` (checked under the mutex).
  void run(std::function<void()> start, const std::function<bool()>& finished) const;
  // Posts `fn` to the loop (Shared); false after close() or if libevent refuses it.
  bool post_fn(std::function<void()> fn) const;
  std::string failure_reason() const;

  event_base* base_;
  s3::Client& client_;
  Mode mode_;
  std::thread::id loop_thread_;
  std::shared_ptr<State> state_;
};

}  // namespace wharf::cache
