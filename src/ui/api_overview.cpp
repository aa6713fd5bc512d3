// /api/overview and /api/activity: how the mirror is doing, and what happened lately.
#include <ctime>

#include "src/api/mirror.hpp"
#include "src/ui/ratelimit.hpp"
#include "src/ui/reply.hpp"
#include "src/ui/ui.hpp"
#include "src/util/number.hpp"

namespace wharf::ui {
namespace {

nlohmann::json series(const TrafficRing& ring, int64_t now) {
  nlohmann::json out = nlohmann::json::array();
  for (const TrafficBucket& b : ring.series(now))
    out.push_back({{"t", b.t}, {"hits", b.hits}, {"misses", b.misses}, {"bytes_cache", b.bytes_cache},
                   {"bytes_upstream", b.bytes_upstream}});
  return out;
}

nlohmann::json ratio(std::optional<double> r) { return r ? nlohmann::json(*r) : nlohmann::json(nullptr); }

nlohmann::json count_or_null(std::string_view header) {
  auto v = ratelimit_count(header);
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

// ok: the last request went well; down: the last one failed; backing_off: after a 429; unknown: none yet.
std::string state_of(const api::Mirror::UpstreamView& u) {
  if (u.backing_off) return "backing_off";
  if (u.health.last_ok == 0 && u.health.last_error_at == 0) return "unknown";
  return u.health.failing ? "down" : "ok";
}

}  // namespace

void Ui::overview(const http::ExchangePtr& ex) {
  const int64_t now = int64_t(std::time(nullptr));
  const StoreFigures store = sources_.store ? sources_.store() : StoreFigures{};
  nlohmann::json upstreams = nlohmann::json::array();
  uint64_t in_flight = 0;
  if (ctx_.mirror) {
    in_flight = ctx_.mirror->fetches().in_flight();
    for (const auto& u : ctx_.mirror->upstream_views()) {
      upstreams.push_back({{"name", u.name},
                           {"url", u.url},
                           {"state", state_of(u)},
                           {"last_error", u.health.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(u.health.last_error)},
                           {"last_error_at", u.health.last_error_at ? nlohmann::json(u.health.last_error_at) : nlohmann::json(nullptr)},
                           {"ratelimit_limit", count_or_null(u.rate.limit)},
                           {"ratelimit_remaining", count_or_null(u.rate.remaining)}});
    }
  }
  send_json(ex, 200,
            nlohmann::json{{"version", WHARF_VERSION},
                           {"uptime_s", std::max<int64_t>(0, now - sources_.started)},
                           {"store", {{"bytes", store.bytes},
                                      {"blobs", store.blobs},
                                      {"maxsize", ctx_.cfg.cache_max_size ? nlohmann::json(ctx_.cfg.cache_max_size)
                                                                         : nlohmann::json(nullptr)}}},
                           {"traffic", {{"hour", series(traffic_.hour, now)}, {"day", series(traffic_.day, now)}}},
                           {"hit_ratio", {{"hour", ratio(traffic_.hour.hit_ratio(now))}, {"day", ratio(traffic_.day.hit_ratio(now))}}},
                           {"upstreams", std::move(upstreams)},
                           {"uploads_in_progress", ctx_.uploads.size()},
                           {"fetches_in_flight", in_flight}});
}

void Ui::activity(const http::ExchangePtr& ex, const Who& who) {
  uint64_t limit = 100;
  if (auto text = ex->req().query_param("limit")) {
    auto v = util::parse_u64(*text, 1000);
    if (!v || *v == 0) return send_error(ex, oci::ErrorCode::Unsupported, "limit must be a number from 1 to 1000", 400);
    limit = *v;
  }
  nlohmann::json items = nlohmann::json::array();
  for (const ActivityItem& a : activity_.recent(1000)) {
    if (items.size() >= limit) break;
    if (!a.repo.empty() && !visible(who, a.repo)) continue;  // what the caller may not pull stays hidden
    items.push_back({{"time", a.time}, {"event", a.event}, {"user", a.user.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.user)},
                     {"repo", a.repo.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.repo)},
                     {"ref", a.ref.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.ref)},
                     {"remote", a.remote}, {"detail", a.detail}});
  }
  send_json(ex, 200, nlohmann::json{{"items", std::move(items)}});
}

}  // namespace wharf::ui
