#include <doctest/doctest.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "src/util/work_pool.hpp"

using namespace wharf::util;

namespace {

struct Base {
  event_base* base;
  Base() {
    evthread_use_pthreads();
    base = event_base_new();
  }
  ~Base() { event_base_free(base); }
};

// A job that blocks its worker until released.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [this] { return open; });
  }
  void release() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};

}  // namespace

TEST_CASE("WorkPool::try_submit") {
  Base b;
  SUBCASE("refuses beyond the queue bound while the worker is busy, then accepts again") {
    WorkPool pool(b.base, 1, 2);
    Gate gate;
    std::atomic<int> started{0}, ran{0};
    REQUIRE(pool.try_submit([&] { ++started; gate.wait(); ++ran; }, nullptr));
    for (int i = 0; i < 200 && started == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(started == 1);
    CHECK(pool.try_submit([&] { ++ran; }, nullptr));
    CHECK(pool.try_submit([&] { ++ran; }, nullptr));
    CHECK(pool.queued() == 2);
    CHECK_FALSE(pool.try_submit([&] { ++ran; }, nullptr));
    gate.release();
    pool.shutdown();
    CHECK(ran == 3);
  }
  SUBCASE("completions run on the loop") {
    WorkPool pool(b.base, 1, 4);
    int done = 0;
    REQUIRE(pool.try_submit([] {}, [&] {
      ++done;
      event_base_loopbreak(b.base);
    }));
    timeval limit{10, 0};
    event_base_loopexit(b.base, &limit);
    event_base_dispatch(b.base);
    CHECK(done == 1);
  }
  SUBCASE("shutdown can drop the jobs still queued") {
    WorkPool pool(b.base, 1, 0);
    Gate gate;
    std::atomic<int> started{0}, ran{0};
    pool.submit([&] { ++started; gate.wait(); }, nullptr);
    for (int i = 0; i < 200 && started == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (int i = 0; i < 5; ++i) pool.submit([&] { ++ran; }, nullptr);
    std::thread releaser([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      gate.release();
    });
    pool.shutdown(WorkPool::Pending::Drop);
    releaser.join();
    CHECK(ran == 0);
    CHECK_FALSE(pool.try_submit([] {}, nullptr));
  }
}
