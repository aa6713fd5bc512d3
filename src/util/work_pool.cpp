#include "src/util/work_pool.hpp"

#include <event2/event.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cassert>
#include <exception>
#include <thread>

namespace wharf::util {

namespace {
std::atomic<std::thread::id> g_loop_thread{};
}  // namespace

void mark_event_loop_thread(bool running) {
  g_loop_thread.store(running ? std::this_thread::get_id() : std::thread::id());
}
bool on_event_loop_thread() { return g_loop_thread.load() == std::this_thread::get_id(); }

bool blocking_on_event_loop(const char* what) {
  if (!on_event_loop_thread()) return false;
  static std::atomic<int> reported{0};  // a bug repeats per request: the first few say it
  if (reported.fetch_add(1) < 10) spdlog::error("internal error: a blocking {} on the event loop", what);
  assert(!"a blocking call on the event loop");
  return true;
}

WorkPool::WorkPool(event_base* base, unsigned threads, size_t max_queued) : max_queued_(max_queued) {
  notify_ = event_new(base, -1, 0, &WorkPool::on_notify, this);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { worker_loop(); });
}

WorkPool::~WorkPool() {
  shutdown();
  if (notify_) event_free(notify_);
}

void WorkPool::submit(std::function<void()> work, std::function<void()> done) {
  std::lock_guard lock(mu_);
  jobs_.emplace_back(std::move(work), std::move(done));
  cv_.notify_one();
}

bool WorkPool::try_submit(std::function<void()> work, std::function<void()> done) {
  std::lock_guard lock(mu_);
  if (stopping_ || (max_queued_ > 0 && jobs_.size() >= max_queued_)) return false;
  jobs_.emplace_back(std::move(work), std::move(done));
  cv_.notify_one();
  return true;
}

size_t WorkPool::queued() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void WorkPool::shutdown(Pending pending) {
  {
    std::lock_guard lock(mu_);
    if (pending == Pending::Drop) jobs_.clear();
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void WorkPool::worker_loop() {
  for (;;) {
    std::pair<std::function<void()>, std::function<void()>> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    try {
      job.first();
    } catch (const std::exception& e) {
      spdlog::error("worker job failed: {}", e.what());
    }
    if (job.second) {
      std::lock_guard lock(mu_);
      completions_.push_back(std::move(job.second));
      event_active(notify_, EV_READ, 0);
    }
  }
}

void WorkPool::on_notify(int, short, void* arg) { static_cast<WorkPool*>(arg)->drain_completions(); }

void WorkPool::drain_completions() {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mu_);
    ready.swap(completions_);
  }
  for (auto& f : ready) {
    // A completion runs on the loop under libevent's C callback: an exception leaving it would end the
    // process (every client's). Handlers answer their own failures; one that escapes is a bug: logged, and
    // the loop goes on.
    try {
      f();
    } catch (const std::exception& e) {
      spdlog::error("internal error: a work completion threw on the event loop: {}", e.what());
    } catch (...) {
      spdlog::error("internal error: a work completion threw on the event loop");
    }
  }
}

}  // namespace wharf::util
