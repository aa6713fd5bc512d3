#pragma once
// A bounded pool of worker threads for blocking work (fsync, rename, LMDB commits, bcrypt).
// Each job's completion runs back on the event loop thread, so handlers never block the loop.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

struct event_base;
struct event;

namespace wharf::util {

// The thread that runs the server's event loop, where nothing may block: serve() marks it while the loop
// runs, and blocking backends (a networked index) check that they are not called on it.
void mark_event_loop_thread(bool running);
bool on_event_loop_thread();
// True (after reporting an internal error naming `what`: logged, an assertion in debug builds) when called
// on the event loop thread; for blocking calls to refuse or flag there.
bool blocking_on_event_loop(const char* what);

class WorkPool {
 public:
  // Starts `threads` workers; completions are delivered on `base` (libevent must be thread-enabled).
  // `max_queued` bounds the jobs waiting for a worker that try_submit accepts (0: no bound).
  WorkPool(event_base* base, unsigned threads, size_t max_queued = 0);
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Runs `work` on a worker, then `done` on the loop thread. Never throws; exceptions in `work`
  // or `done` are logged (and do not reach the loop).
  void submit(std::function<void()> work, std::function<void()> done);
  // As submit, but refuses (returns false, runs nothing) when `max_queued` jobs already wait or after shutdown.
  bool try_submit(std::function<void()> work, std::function<void()> done);
  // Jobs waiting for a worker (not counting the ones running).
  size_t queued() const;
  // What shutdown does with jobs still waiting for a worker.
  enum class Pending { Finish, Drop };
  // Stops accepting work, finishes (or drops) queued jobs and joins the workers; completions still
  // pending are dropped.
  void shutdown(Pending pending = Pending::Finish);

 private:
  static void on_notify(int, short, void* arg);
  void worker_loop();
  void drain_completions();

  size_t max_queued_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::function<void()>, std::function<void()>>> jobs_;
  std::vector<std::function<void()>> completions_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  event* notify_ = nullptr;
};

}  // namespace wharf::util
