// Single flight for cold blobs across fronts sharing one database: a lease row per blob in the claims
// table (Index::claim), taken with INSERT ... ON CONFLICT and renewed while the holder downloads. Fronts
// without the lease wait for the blob to be published in the shared store, polling the index, and take
// the lease over once it expires (the holder died): at most one more upstream fetch, never mixed bytes.
// With http.secret set, a waiting client is streamed the holder's download as it arrives, over the
// holder's /internal/inflight/<digest> (inflight.hpp, inflight_relay.hpp); it falls back to polling when
// the holder cannot serve it.
#include <event2/event.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <random>

#include <spdlog/spdlog.h>

#include "src/api/context.hpp"
#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"
#include "src/api/inflight.hpp"
#include "src/api/inflight_relay.hpp"
#include "src/api/inflight_token.hpp"
#include "src/api/mirror.hpp"
#include "src/api/respond.hpp"

namespace wharf::api {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kLease = std::chrono::milliseconds(15000);  // a dead holder's lease lapses after this

constexpr auto kPoll = std::chrono::milliseconds(250);
constexpr int kRelayTries = 8;  // relays tried per waiting client (the holder may not have started yet)

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
                              const proxy::Credential& cred, FleetWait wait) {
  auto take = [owner = owner_](cache::Index& index, const std::string& key) { return index.claim(key, owner, kLease); };
  run_index(
      ctx_.index, ctx_.pool, take,
      [this, ex, d, dig, cred, wait](std::expected<bool, std::string> mine, const std::string&) mutable {
        if (!ex->alive() || ex->responded()) return;
        const std::string ds = dig.str();
        if (fetches_->in_flight(dig) || fleet_held_.count(ds)) return fetch_unlinked_blob(ex, d, dig, cred);
        if (!mine || *mine) {
          if (!mine) spdlog::warn("fetching {} without the fleet lease: {}", ds, mine.error());
          else if (wait.mark) ++fleet_->takeovers;  // waited on another front whose lease lapsed
          fleet_held_[ds] = true;
          fetch_unlinked_blob(ex, d, dig, cred);
          if (!fetches_->in_flight(dig)) fleet_held_.erase(ds);  // it failed to start
          else after(kFleetRenewEvery, [this, dig] { fleet_renew(dig); });
          return;
        }
        if (Clock::now() > wait.deadline)
          return fail(ex, oci::ErrorCode::Unavailable, "blob " + ds + " is still being fetched by another front; retry",
                      oci::Detail{{"digest", ds}}, 503);
        if (!wait.mark) {  // this client starts waiting on another front
          ++fleet_->remote_waits;
          ++fleet_->remote_waits_now;
          wait.mark = std::shared_ptr<void>(static_cast<void*>(fleet_.get()),
                                            [f = fleet_](void*) { --f->remote_waits_now; });
          wait.relays_left = relay_possible(ex) ? kRelayTries : 0;
        }
        if (wait.relays_left > 0) {
          --wait.relays_left;
          return fleet_relay(ex, d, dig, cred, std::move(wait));
        }
        after(kPoll, [this, ex, d, dig, cred, wait] { fleet_recheck(ex, d, dig, cred, wait); });
      },
      lease_key(dig.str()));
}

bool Mirror::relay_possible(const http::ExchangePtr& ex) {
  if (ctx_.cfg.http_secret.empty() || self_addr_.empty()) {
    if (!told_no_relay_)
      spdlog::info("clients waiting on another front's download get the blob once it is published, not as it "
                   "arrives: {}",
                   ctx_.cfg.http_secret.empty() ? "http.secret is not set (it authenticates fronts to each other)"
                                                : "this front has no address other fronts can reach (http.addr)");
    told_no_relay_ = true;
    return false;
  }
  return !ex->req().has_header("range");
}

void Mirror::fleet_relay(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& dig,
                         const proxy::Credential& cred, FleetWait wait) {
  auto holder = [](cache::Index& index, const std::string& key) { return index.claim_holder(key); };
  run_index(
      ctx_.index, ctx_.pool, holder,
      [this, ex, d, dig, cred, wait](std::expected<std::optional<std::string>, std::string> who, const std::string&) {
        if (!ex->alive() || ex->responded()) return;
        const std::string addr = who && *who ? owner_address(**who) : std::string();
        auto poll = [this, ex, d, dig, cred, wait] {
          ++fleet_->poll_fallbacks;
          after(kPoll, [this, ex, d, dig, cred, wait] { fleet_recheck(ex, d, dig, cred, wait); });
        };
        if (!who) spdlog::warn("who holds the fleet lease on {}: {}", dig.str(), who.error());
        if (addr.empty() || addr == self_addr_) return poll();
        const auto expires = static_cast<int64_t>(std::time(nullptr)) + kInflightTokenLife;
        RelaySource src{addr, !ctx_.cfg.tls_certificate.empty(), inflight_token(ctx_.cfg.http_secret, dig.str(), expires)};
        relay_inflight(client_, src, ex, dig, &fleet_->relayed_bytes, [this, addr, poll](RelayEnd end) {
          if (end == RelayEnd::Completed) return void(++fleet_->relays);
          if (end == RelayEnd::Cut) return void(++fleet_->relays_cut);  // the client retries
          if (end == RelayEnd::Unauthorized && !told_bad_secret_) {
            told_bad_secret_ = true;
            spdlog::warn("the front at {} refused this front's in-flight token: give every front the same "
                         "http.secret (until then, clients waiting on another front's download get the blob "
                         "once it is published)",
                         addr);
          }
          poll();
        });
      },
      lease_key(dig.str()));
}

void Mirror::fleet_recheck(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& dig,
                           const proxy::Credential& cred, FleetWait wait) {
  if (!ex->alive() || ex->responded()) return;
  auto lookup = [](const cache::Index& index, const std::string& ds) {
    auto txn = index.read();
    return index.blob(txn, ds);
  };
  index_call(
      ctx_.index, ctx_.pool, ex, lookup,
      [this, ex, d, dig, cred, wait](std::optional<cache::BlobRecord> published, const std::string&) {
        // Published by the holder: serve it from the store (get_unlinked_blob links it to this repository).
        if (published && ctx_.store.stat_recorded(dig, cache::Recorded::of(*published))) {
          if (wait.mark) ++fleet_->served_published;
          return get_unlinked_blob(ex, d, dig, cred);
        }
        fleet_fetch_blob(ex, d, dig, cred, wait);
      },
      dig.str());
}

void Mirror::fleet_prefetch_claims(cache::Index& index, const std::string& owner,
                                   const std::vector<oci::Descriptor>& list, std::vector<bool>& skip) {
  for (size_t i = 0; i < list.size(); ++i) {
    if (skip[i]) continue;  // recorded: stored already
    auto mine = index.claim(lease_key(list[i].digest.str()), owner, kLease);
    // Not ours: another front downloads it. An index failure: no prefetch (a client's GET still fetches).
    if (!mine || !*mine) skip[i] = true;
  }
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
        after(kFleetRenewEvery, [this, dig] { fleet_renew(dig); });
      },
      lease_key(ds));
}

}  // namespace wharf::api
