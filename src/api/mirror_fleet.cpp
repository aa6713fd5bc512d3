// Single flight for cold blobs across fronts sharing one database: a lease row per blob in the claims
// table (Index::claim), taken with INSERT ... ON CONFLICT and renewed while the holder downloads. Fronts
// without the lease wait for the blob to be published in the shared store, polling the index, and take
// the lease over once it expires (the holder died): at most one more upstream fetch, never mixed bytes.
#include <event2/event.h>
#include <unistd.h>

#include <cstdio>
#include <random>

#include <spdlog/spdlog.h>

#include "src/api/context.hpp"
#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"
#include "src/api/mirror.hpp"
#include "src/api/respond.hpp"

namespace wharf::api {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kLease = std::chrono::milliseconds(15000);  // a dead holder's lease lapses after this
constexpr auto kRenewEvery = std::chrono::milliseconds(5000);
constexpr auto kPoll = std::chrono::milliseconds(250);

std::string lease_key(const std::string& digest) { return std::string("blob\t").append(digest); }

}  // namespace

struct Mirror::Timer {
  Mirror* mirror = nullptr;
  event* ev = nullptr;
  std::function<void()> job;
  // Runs the job once, after taking it out of the mirror's table (which frees the timer).
  static void fire(evutil_socket_t, short, void* arg) {
    auto* t = static_cast<Timer*>(arg);
    auto job = std::move(t->job);
    t->mirror->timers_.erase(t);
    job();
  }
};

void Mirror::TimerFree::operator()(Timer* t) const noexcept {
  if (t->ev) event_free(t->ev);
  delete t;
}

std::string Mirror::fleet_owner_id() {
  std::random_device rd;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%08x%08x-%d", unsigned(rd()), unsigned(rd()), int(getpid()));
  return buf;
}

void Mirror::after(std::chrono::milliseconds delay, std::function<void()> f) {
  std::unique_ptr<Timer, TimerFree> t(new Timer{this, nullptr, std::move(f)});
  t->ev = event_new(ctx_.base, -1, 0, &Timer::fire, t.get());
  timeval tv{static_cast<time_t>(delay.count() / 1000), static_cast<suseconds_t>((delay.count() % 1000) * 1000)};
  if (!t->ev || event_add(t->ev, &tv) != 0) {
    spdlog::error("cannot schedule a timer on the event loop");
    return;
  }
  Timer* key = t.get();
  timers_.emplace(key, std::move(t));
}

void Mirror::fleet_fetch_blob(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& dig,
                              const proxy::Credential& cred, Clock::time_point deadline) {
  auto take = [owner = owner_](cache::Index& index, const std::string& key) { return index.claim(key, owner, kLease); };
  run_index(
      ctx_.index, ctx_.pool, take,
      [this, ex, d, dig, cred, deadline](std::expected<bool, std::string> mine, const std::string&) {
        if (!ex->alive() || ex->responded()) return;
        const std::string ds = dig.str();
        if (fetches_->in_flight(dig) || fleet_held_.count(ds)) return fetch_unlinked_blob(ex, d, dig, cred);
        if (!mine || *mine) {
          if (!mine) spdlog::warn("fetching {} without the fleet lease: {}", ds, mine.error());
          fleet_held_[ds] = true;
          fetch_unlinked_blob(ex, d, dig, cred);
          if (!fetches_->in_flight(dig)) fleet_held_.erase(ds);  // it failed to start
          else after(kRenewEvery, [this, dig] { fleet_renew(dig); });
          return;
        }
        if (Clock::now() > deadline)
          return fail(ex, oci::ErrorCode::Unavailable, "blob " + ds + " is still being fetched by another front; retry",
                      oci::Detail{{"digest", ds}}, 503);
        after(kPoll, [this, ex, d, dig, cred, deadline] { fleet_recheck(ex, d, dig, cred, deadline); });
      },
      lease_key(dig.str()));
}

void Mirror::fleet_recheck(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& dig,
                           const proxy::Credential& cred, Clock::time_point deadline) {
  if (!ex->alive() || ex->responded()) return;
  auto lookup = [](const cache::Index& index, const std::string& ds) {
    auto txn = index.read();
    return index.blob(txn, ds).has_value();
  };
  index_call(
      ctx_.index, ctx_.pool, ex, lookup,
      [this, ex, d, dig, cred, deadline](bool published, const std::string&) {
        // Published by the holder: serve it from the store (get_unlinked_blob links it to this repository).
        if (published && ctx_.store.stat(dig)) return get_unlinked_blob(ex, d, dig, cred);
        fleet_fetch_blob(ex, d, dig, cred, deadline);
      },
      dig.str());
}

void Mirror::fleet_renew(const oci::Digest& dig) {
  const std::string ds = dig.str();
  if (!fetches_->in_flight(dig)) {  // done (published or failed): the lease lapses by itself
    fleet_held_.erase(ds);
    return;
  }
  auto take = [owner = owner_](cache::Index& index, const std::string& key) { return index.claim(key, owner, kLease); };
  run_index(
      ctx_.index, ctx_.pool, take,
      [this, dig](std::expected<bool, std::string> mine, const std::string& key) {
        if (!mine) spdlog::warn("renewing the fleet lease {}: {}", key, mine.error());
        else if (!*mine) spdlog::warn("the fleet lease {} was taken over by another front", key);
        after(kRenewEvery, [this, dig] { fleet_renew(dig); });
      },
      lease_key(ds));
}

}  // namespace wharf::api
