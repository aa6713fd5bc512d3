#include "src/app.hpp"

#include <event2/event.h>
#include <event2/thread.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "cache/fs/fs_store.hpp"
#include "cache/fs/root_lock.hpp"
#include "cache/s3/s3_env.hpp"
#include "cache/evict.hpp"
#include "cache/gc.hpp"
#include "cache/index.hpp"
#include "cache/index_lmdb.hpp"
#include "cache/pg/open_index.hpp"
#include "cache/pg/pg_index.hpp"
#include "cache/pg/pg_listener.hpp"
#include "src/api/auth_gate.hpp"
#include "src/api/context.hpp"
#include "src/preflight.hpp"
#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"
#include "src/api/metrics.hpp"
#include "src/ui/ui.hpp"
#include "src/api/respond.hpp"
#include "src/api/route.hpp"
#include "src/health.hpp"
#include "src/api/mirror.hpp"
#include "proxy/http_client.hpp"
#include "proxy/token_cache.hpp"
#include "src/api/registry.hpp"
#include "src/http/server.hpp"
#include "src/util/work_pool.hpp"

namespace wharf {

namespace {

struct EventBaseOwner {
  event_base* base = nullptr;
  ~EventBaseOwner() {
    if (base) event_base_free(base);
  }
};

struct EventFree {
  void operator()(event* ev) const { event_free(ev); }
};
using EventOwner = std::unique_ptr<event, EventFree>;

// Everything a running server needs, in destruction-safe order.
struct Runtime {
  Runtime(const config::Config& c, event_base* b) : cfg(c), base(b) {}
  const config::Config& cfg;
  event_base* base;
  std::unique_ptr<cache::Index> index;
  std::optional<cache::RootLock> root_lock;  // tells offline verbs that need the store alone it is in use
  std::optional<cache::FsBlobStore> local;  // the filesystem store, or the S3 store's local staging
  std::unique_ptr<cache::S3Env> s3;          // storage.s3: the bucket's store and its clients
  cache::BlobBackend* store = nullptr;       // the one in use: *local or *s3->store
  std::unique_ptr<util::WorkPool> pool;
  api::AccessTracker access;
  api::UploadTable uploads;
  std::unique_ptr<api::Context> ctx;
  std::unique_ptr<cache::pg::Listener> listener;  // database.notifycache: keeps ctx->tags fresh
  std::unique_ptr<proxy::HttpClient> http_client;
  std::unique_ptr<proxy::TokenCache> tokens;
  std::unique_ptr<api::Mirror> mirror;
  std::unique_ptr<api::AuthGate> auth;
  std::unique_ptr<api::Registry> registry;
  ui::Traffic traffic;    // mirror hits and misses over time, for the web page
  ui::Activity activity;  // recent audit events, for the web page
  std::unique_ptr<ui::Ui> ui;  // null with http.ui.enabled: false
  std::unique_ptr<http::Server> server;
  std::unique_ptr<http::Server> debug_server;
  api::Metrics metrics;
  std::unique_ptr<HealthCheck> health;
  std::atomic<uint64_t> store_bytes{0};
  std::atomic<uint64_t> store_blobs{0};  // blob records in the index
  std::atomic<uint64_t> cache_bytes{0};  // proxied blobs (what storage.cache.maxsize bounds)
  std::atomic<bool> measuring{false};           // a store measurement is queued or running
  std::atomic<int64_t> measured_at{0};          // steady-clock seconds of the last one
  std::vector<std::unique_ptr<std::pair<Runtime*, void (*)(Runtime&)>>> timer_args;  // outlive `events`
  std::vector<EventOwner> events;
  bool stopping = false;
  std::atomic<bool> gc_busy{false};
  std::atomic<bool> evict_busy{false};
};

// What a maintenance run on a worker came to.
enum class Ran { Yes, Skipped, Failed };

// Online garbage collection on a worker (skipped while the previous run is still going, or while another
// front sharing the database holds the maintenance lock: one front collects at a time).
void schedule_gc(Runtime& rt) {
  if (rt.gc_busy.exchange(true)) return;
  auto* index = rt.index.get();
  auto* store = rt.store;
  struct Outcome {
    Ran ran = Ran::Failed;
    uint64_t freed = 0;
  };
  auto out = std::make_shared<Outcome>();
  rt.pool->submit(
      [index, store, out, grace = rt.cfg.gc_grace, retention = rt.cfg.retention, immutable = rt.cfg.immutable_tags] {
        auto lock = index->try_maintenance_lock();
        if (!lock) {
          spdlog::warn("garbage collection failed: {}", lock.error());
          return;
        }
        if (!*lock) {
          out->ran = Ran::Skipped;
          spdlog::debug("garbage collection skipped: another front holds the maintenance lock");
          return;
        }
        spdlog::info("garbage collection: started (this front holds the maintenance lock)");
        cache::GcOptions opts;
        opts.grace = grace;
        opts.retention = retention;
        opts.immutable_tags = immutable;
        auto r = cache::collect(*index, *store, opts);
        if (!r) {
          spdlog::warn("garbage collection failed: {}", r.error());
          return;
        }
        *out = {Ran::Yes, r->bytes_freed};
        spdlog::info("garbage collection: {} tags (retention), {} manifests, {} blobs, {} files, {} bytes freed, "
                     "{} expired claims", r->tags_deleted, r->manifests_deleted, r->blobs_deleted, r->files_deleted,
                     r->bytes_freed, r->claims_deleted);
      },
      [&rt, out] {
        if (out->ran == Ran::Skipped) rt.metrics.gc_skipped();
        else rt.metrics.gc_run(out->freed);
        rt.gc_busy = false;
      });
}

// Size-bounded cache: evicts least recently used proxied content on a worker, under the maintenance lock
// (taken only once the store is found over its bound; a run is skipped while another front holds it).
void schedule_evict(Runtime& rt) {
  if (rt.evict_busy.exchange(true)) return;
  auto* index = rt.index.get();
  auto* store = rt.store;
  const uint64_t max = rt.cfg.cache_max_size;
  struct Outcome {
    Ran ran = Ran::Failed;
    uint64_t items = 0, bytes = 0;
  };
  auto out = std::make_shared<Outcome>();
  rt.pool->submit(
      [index, store, max, out] {
        auto total = cache::stored_total(*index);
        if (!total) {
          spdlog::warn("cache eviction failed: {}", total.error());
          return;
        }
        if (*total <= max) {
          out->ran = Ran::Yes;
          return;
        }
        auto lock = index->try_maintenance_lock();
        if (!lock) {
          spdlog::warn("cache eviction failed: {}", lock.error());
          return;
        }
        if (!*lock) {
          out->ran = Ran::Skipped;
          spdlog::debug("cache eviction skipped: another front holds the maintenance lock");
          return;
        }
        auto r = cache::evict(*index, *store, max);
        if (!r) {
          spdlog::warn("cache eviction failed: {}", r.error());
          return;
        }
        *out = {Ran::Yes, r->manifests_evicted + r->swept.blobs_deleted, r->swept.bytes_freed};
        if (r->manifests_evicted > 0 || r->swept.files_deleted > 0)
          spdlog::info("cache eviction: {} manifests, {} blobs, {} bytes freed ({} of {} bytes stored)",
                       r->manifests_evicted, r->swept.blobs_deleted, r->swept.bytes_freed, r->bytes_after, max);
      },
      [&rt, out] {
        if (out->ran == Ran::Skipped) rt.metrics.evict_skipped();
        if (out->items) rt.metrics.evicted(out->items, out->bytes);
        rt.evict_busy = false;
      });
}

void flush_access(Runtime& rt) {
  auto batch = rt.access.take();
  if (batch.empty()) return;
  auto* index = rt.index.get();
  rt.pool->submit([index, batch = std::move(batch)] {
    if (auto r = index->touch(batch); !r) spdlog::warn("recording access times failed: {}", r.error());
  }, nullptr);
}

// Sums the sizes of the stored blobs (a worker job; the result feeds the store-size gauge).
uint64_t disk_usage(const std::filesystem::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code fe;
    if (it->is_regular_file(fe)) total += it->file_size(fe);
  }
  return total;
}

int64_t steady_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Measures the store (bytes, blob records, proxied bytes) on a worker; one measurement at a time.
void measure_store(Runtime& r) {
  if (r.measuring.exchange(true)) return;
  auto* rp = &r;
  r.pool->submit(
      [rp] {
        uint64_t proxied = 0, in_bucket = 0, blobs = 0;
        try {
          auto txn = rp->index->read();
          for (const auto& [digest, rec] : rp->index->all_blobs(txn)) {
            ++blobs;
            if (rec.origin == cache::Origin::Proxied) proxied += rec.size;
            if (rec.backend == cache::Backend::S3) in_bucket += rec.size;
          }
        } catch (const std::exception& e) {  // the database is away: keep the last figures, measure next time
          spdlog::warn("store size not measured: {}", e.what());
          rp->measuring = false;
          return;
        }
        rp->store_bytes = rp->s3 ? in_bucket : disk_usage(rp->local->root() / "blobs");
        rp->cache_bytes = proxied;
        rp->store_blobs = blobs;
        rp->measured_at = steady_seconds();
        rp->measuring = false;
      },
      nullptr);
}

void add_timer(Runtime& rt, std::chrono::seconds every, void (*fn)(Runtime&)) {
  struct Tick {
    static void cb(evutil_socket_t, short, void* arg) {
      auto* p = static_cast<std::pair<Runtime*, void (*)(Runtime&)>*>(arg);
      p->second(*p->first);
    }
  };
  rt.timer_args.push_back(std::make_unique<std::pair<Runtime*, void (*)(Runtime&)>>(&rt, fn));
  EventOwner o(event_new(rt.base, -1, EV_PERSIST, &Tick::cb, rt.timer_args.back().get()));
  timeval tv{long(every.count()), 0};
  event_add(o.get(), &tv);
  rt.events.push_back(std::move(o));
}

void on_signal(evutil_socket_t sig, short, void* arg) {
  auto* rt = static_cast<Runtime*>(arg);
  if (sig == SIGHUP) {
    spdlog::info("SIGHUP: reloading credentials and TLS files");
    if (rt->auth) rt->auth->reload();
    if (rt->server) {
      if (auto r = rt->server->reload_tls(); !r) spdlog::error("TLS reload failed, keeping the previous certificate: {}", r.error());
    }
    return;
  }
  if (rt->stopping) {
    spdlog::warn("second signal: exiting now");
    event_base_loopbreak(rt->base);
    return;
  }
  rt->stopping = true;
  sd_notify(0, "STOPPING=1");
  const long drain = rt->cfg.drain_timeout.count() > 0 ? long(rt->cfg.drain_timeout.count()) : 10;
  spdlog::info("shutting down: no new connections, finishing in-flight requests ({}s at most)", drain);
  rt->server->stop_accepting();
  flush_access(*rt);
  // Poll until connections drain, or give up after the deadline.
  struct Drain {
    static void cb(evutil_socket_t, short, void* a) {
      auto* rt = static_cast<Runtime*>(a);
      if (rt->server->open_connections() == 0) event_base_loopexit(rt->base, nullptr);
    }
  };
  EventOwner poll(event_new(rt->base, -1, EV_PERSIST, &Drain::cb, rt));
  timeval tick{0, 100000};
  event_add(poll.get(), &tick);
  rt->events.push_back(std::move(poll));
  timeval deadline{drain, 0};
  event_base_loopexit(rt->base, &deadline);
}

// /debug/health: 200 {} while storage, index and the htpasswd file are fine, else 503 naming each failing check.
void answer_health(Runtime& rt, const http::ExchangePtr& ex) {
  nlohmann::json body = nlohmann::json::object();
  std::string error;
  if (rt.health && !rt.health->healthy(&error)) body[rt.s3 ? "storagedriver_s3" : "storagedriver_filesystem"] = error;
  if (rt.health && !rt.health->database_healthy(&error)) body["database"] = error;
  if (rt.auth) {
    if (auto problem = rt.auth->problem()) body["auth_htpasswd"] = *problem;
  }
  ex->respond(api::json_response(body.empty() ? 200 : 503, body.dump()));
}

std::map<std::string, api::Metrics::Sample> gauges(Runtime& rt) {
  std::map<std::string, api::Metrics::Sample> g;
  g["wharf_store_size_bytes"] = {"Bytes of blobs and manifests in the store.", "gauge", double(rt.store_bytes.load())};
  g["wharf_cache_size_bytes"] = {"Bytes of proxied (cached) blobs.", "gauge", double(rt.cache_bytes.load())};
  g["wharf_cache_max_size_bytes"] = {"storage.cache.maxsize (0: unbounded).", "gauge", double(rt.cfg.cache_max_size)};
  g["wharf_http_open_connections"] = {"Open client connections.", "gauge",
                                      double(rt.server ? rt.server->open_connections() : 0)};
  if (rt.listener) {
    const auto& t = rt.ctx->tags;
    g["wharf_index_cache_enabled"] = {"1 while the LISTEN connection is up and the manifest lookup cache is used.",
                                      "gauge", t.enabled() ? 1.0 : 0.0};
    g["wharf_index_cache_entries"] = {"Manifest lookups held by the cache.", "gauge", double(t.size())};
    g["wharf_index_cache_hits_total"] = {"Manifest GETs answered without a database call.", "counter",
                                         double(t.hits())};
    g["wharf_index_cache_misses_total"] = {"Manifest GETs that asked the database.", "counter", double(t.misses())};
    g["wharf_index_notifications_total"] = {"Index change notifications received.", "counter",
                                            double(t.notifications())};
    g["wharf_index_notify_lag_seconds"] = {"Lag of the last notification (trigger to this front).", "gauge",
                                           t.last_lag()};
    g["wharf_index_notify_lag_max_seconds"] = {"Largest notification lag seen.", "gauge", t.max_lag()};
    g["wharf_index_listen_drops_total"] = {"LISTEN connections lost (the cache is emptied each time).", "counter",
                                           double(rt.listener->drops())};
  }
  g["wharf_upload_sessions"] = {"Open upload sessions in memory.", "gauge", double(rt.uploads.size())};
  g["wharf_upload_refused_total"] = {"Upload sessions refused with 429 (http.limits.uploads / uploadsperclient).",
                                     "counter", double(rt.uploads.refused())};
  g["wharf_upload_evicted_total"] = {"Upload sessions unused for 15 minutes removed to make room at a session cap.",
                                     "counter", double(rt.uploads.evicted())};
  if (rt.auth && rt.auth->enabled()) {
    const auto& a = rt.auth->stats();
    g["wharf_auth_checks_total"] = {"Password (bcrypt) checks run.", "counter", double(a.checks)};
    g["wharf_auth_failures_total"] = {"Password checks that failed (wrong password or unknown user).", "counter",
                                      double(a.failures)};
    g["wharf_auth_throttled_total"] = {"Logins refused with 429: the address had too many checks in flight or was "
                                       "backing off after failures (http.limits.authfailures).",
                                       "counter", double(a.throttled)};
    g["wharf_auth_overloaded_total"] = {"Logins refused with 503: the password check queue was full "
                                        "(http.limits.passwordchecks).", "counter", double(a.overloaded)};
  }
  if (rt.s3) {
    for (const auto& [key, e] : rt.s3->stats->snapshot()) {
      const std::string labels = "{operation=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"}";
      g["wharf_s3_requests_total" + labels] = {"S3 calls by operation and final HTTP status (0: no answer).", "counter",
                                               double(e.count)};
      g["wharf_s3_request_seconds_total" + labels] = {"Time spent in S3 calls, retries included.", "counter", e.seconds};
    }
  }
  if (rt.mirror) {
    g["wharf_inflight_fetches"] = {"Blob downloads from upstreams in progress.", "gauge",
                                   double(rt.mirror->fetches().in_flight())};
    g["wharf_upstream_fetched_bytes_total"] = {"Blob bytes fetched from upstreams.", "counter",
                                               double(rt.mirror->fetches().bytes_fetched())};
    g["wharf_prefetched_blobs_total"] = {"Blob downloads started by a manifest fetch, before a client asked (proxy.prefetch).",
                                         "counter", double(rt.mirror->stats().prefetched)};
    if (rt.ctx->index.blocks()) api::add_fleet_samples(g, rt.mirror->fleet_stats(), rt.mirror->fleet_leases());
    for (const auto& [name, remaining] : rt.mirror->rate_limits()) {
      if (remaining < 0) continue;
      g["wharf_upstream_ratelimit_remaining{upstream=\"" + name + "\"}"] = {
          "The last ratelimit-remaining an upstream sent.", "gauge", remaining};
    }
  }
  return g;
}

// Raises the open-files soft limit to the hard limit (each connection, upload and download holds an fd).
void raise_open_files_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised{rl.rlim_max, rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  spdlog::info("open files limit: {}", rl.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : std::to_string(rl.rlim_cur));
}

}  // namespace

int serve(const config::Config& cfg) {
  if (auto problems = preflight(cfg); !problems.empty()) {
    for (const auto& p : problems) spdlog::critical("invalid configuration: {}", p);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_open_files_limit();
  evthread_use_pthreads();
  // The epoll changelist folds an add and a delete of the same interest within one loop turn into
  // nothing, saving epoll_ctl calls on every request.
  event_config* ecfg = event_config_new();
  event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  EventBaseOwner base{event_base_new_with_config(ecfg)};
  event_config_free(ecfg);
  if (!base.base) {
    spdlog::critical("cannot create the event loop");
    return 1;
  }
  Runtime rt{cfg, base.base};

  std::filesystem::path root = cfg.root_directory;
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) {
    spdlog::critical("storage.filesystem.rootdirectory: cannot create '{}': {}", root.string(), ec.message());
    return 1;
  }
  auto lock = cache::RootLock::take(root, cache::RootLock::Mode::Shared);
  if (!lock) {
    spdlog::critical("storage.filesystem.rootdirectory: {}", lock.error());
    return 1;
  }
  rt.root_lock.emplace(std::move(*lock));
  auto store = cache::FsBlobStore::open(root);
  if (!store) {
    spdlog::critical("storage.filesystem.rootdirectory: {}", store.error());
    return 1;
  }
  store->clean_temp();
  auto index = cache::open_index(cfg);  // PostgreSQL with database.dsn, else LMDB under the root
  if (!index) {
    spdlog::critical("{}", index.error());
    return 1;
  }
  rt.index = std::move(*index);
  if (cfg.storage_driver == config::StorageDriver::S3) {  // staging stays local, blobs go to the bucket
    auto s3 = cache::open_s3_store(cfg, base.base, *store);
    if (!s3) {
      spdlog::critical("{}", s3.error());
      return 1;
    }
    rt.s3 = std::move(*s3);
    rt.store = rt.s3->store.get();
    spdlog::info("blobs in S3 bucket {} at {} (redirects {})", cfg.s3.bucket, cfg.s3.endpoint_url(),
                 cfg.redirect_disabled ? "off" : "on");
  }
  rt.local.emplace(std::move(*store));
  if (!rt.store) rt.store = &*rt.local;
  // With S3, a worker mostly waits for the loop (an upload to the bucket in prepare): more of them keep
  // index commits and small reads moving while large blobs upload.
  rt.pool = std::make_unique<util::WorkPool>(base.base, rt.s3 ? 8 : 2);
  rt.uploads.set_limits(size_t(cfg.max_uploads), size_t(cfg.max_uploads_per_client));
  rt.ctx.reset(new api::Context{.cfg = cfg, .index = *rt.index, .store = *rt.store, .pool = *rt.pool, .base = base.base,
                                .access = rt.access, .uploads = rt.uploads, .mirror = nullptr, .small = {}, .tags = {}});
  if (rt.s3) rt.ctx->small.set_capacity(cfg.s3.small_cache_size);  // S3: hot manifests and configs stay local
  if (rt.index->blocks() && !cfg.database_dsn.empty() && cfg.database_notify_cache) {
    auto* tags = &rt.ctx->tags;
    rt.listener = cache::pg::Listener::start(
        base.base, cfg.database_dsn, "wharf_index",
        [tags](std::string_view payload) {
          const auto now = std::chrono::system_clock::now().time_since_epoch();
          tags->apply(payload, std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
        },
        [tags](bool up) { tags->set_enabled(up); });
  }
  if (rt.s3) {  // multipart uploads a killed wharf left behind (nothing of this process is uploading yet)
    rt.pool->submit([store = rt.s3->store.get()] {
      const auto n = store->abort_stale_uploads(int64_t(time(nullptr)) - 3600);
      if (n > 0) spdlog::info("S3: aborted {} multipart uploads left by an earlier run", n);
    }, nullptr);
  }
  if (!cfg.upstreams.empty()) {
    auto client = proxy::HttpClient::create(base.base);
    if (!client) {
      spdlog::critical("cannot start the upstream client: {}", client.error());
      return 1;
    }
    rt.http_client = std::move(*client);
    rt.tokens = std::make_unique<proxy::TokenCache>();
    rt.mirror = std::make_unique<api::Mirror>(*rt.ctx, *rt.http_client, *rt.tokens);
    rt.ctx->mirror = rt.mirror.get();
    for (const auto& u : cfg.upstreams) spdlog::info("mirroring {} from {}", u.name, u.url);
  }
  auto auth = api::AuthGate::create(cfg, base.base,
                                    api::AuthLimits{cfg.password_checks, cfg.auth_failures_per_client, 1});
  if (!auth) {
    spdlog::critical("{}", auth.error());
    return 1;
  }
  rt.auth = std::move(*auth);
  rt.registry = std::make_unique<api::Registry>(*rt.ctx, *rt.auth);
  rt.auth->observe_audit([&rt](const auth::AuditEvent& e) { rt.activity.add(e, int64_t(std::time(nullptr))); });
  if (cfg.ui_enabled) {
    // The page shows the last measurement and asks for a new one when it is older than 5 s.
    ui::UiSources sources{[&rt] {
                            if (steady_seconds() - rt.measured_at.load() >= 5) measure_store(rt);
                            return ui::StoreFigures{rt.store_bytes.load(), rt.store_blobs.load()};
                          },
                          int64_t(std::time(nullptr))};
    rt.ui = std::make_unique<ui::Ui>(*rt.ctx, *rt.auth, rt.traffic, rt.activity, std::move(sources));
  }

  http::ServerOptions opts;
  opts.addr = cfg.http_addr;
  opts.tls_certificate = cfg.tls_certificate;
  opts.tls_key = cfg.tls_key;
  opts.location_base = cfg.http_host;
  opts.header_timeout = cfg.header_timeout;
  opts.min_body_rate = cfg.min_body_rate;
  opts.body_rate_period = cfg.body_rate_period;
  while (!opts.location_base.empty() && opts.location_base.back() == '/') opts.location_base.pop_back();
  opts.extra_headers.emplace_back("Docker-Distribution-API-Version", "registry/2.0");
  for (const auto& h : cfg.http_headers) opts.extra_headers.push_back(h);
  auto* registry = rt.registry.get();
  const bool access_log = cfg.access_log;
  rt.health = std::make_unique<HealthCheck>(rt.local->tmp_dir(), *rt.index, cfg.health_storage_threshold);
  if (rt.s3) rt.health->add_check([env = rt.s3.get()] { return env->probe_bucket(); });
  if (auto* pg = dynamic_cast<cache::PgIndex*>(rt.index.get()))
    rt.health->set_database_check([pg] {
      auto r = pg->ping(std::chrono::seconds(2));
      return r ? std::string() : r.error();
    });
  rt.metrics.set_gauges([&rt] { return gauges(rt); });
  if (rt.mirror)
    rt.mirror->observe_upstreams([&rt](const std::string& name, int status, double secs) {
      rt.metrics.upstream(name, status, secs);
    });
  auto* rtp = &rt;
  auto server = http::Server::start(
      base.base, opts,
      [registry, rtp](const http::ExchangePtr& ex) {
        if (ex->req().path == "/debug/health") {
          ex->req().route = "health";
          return answer_health(*rtp, ex);
        }
        try {
          if (rtp->ui && rtp->ui->owns(ex->req().path)) return rtp->ui->handle(ex);
          registry->handle(ex);
        } catch (const std::exception& e) {  // an index that cannot answer (database.dsn: server gone) throws
          api::fail_escaped(ex, e);
        }
      },
      [access_log, rtp](const http::Request& req, int status, uint64_t bytes, double secs, const std::string& cache) {
        rtp->metrics.request(req.method, req.route, status, secs, bytes, cache);
        rtp->traffic.record(int64_t(std::time(nullptr)), req.route, req.method, status, cache, bytes);
        if (rtp->ui) rtp->ui->observe(req.method, status, cache);
        if (!access_log) return;
        spdlog::info("{} {} {} {} {}B {:.1f}ms user={} cache={}", req.peer, req.method, req.target, status, bytes,
                     secs * 1000, req.user.empty() ? "-" : req.user, cache.empty() ? "-" : cache);
      });
  if (!server) {
    spdlog::critical("{}", server.error());
    return 1;
  }
  rt.server = std::move(*server);
  if (!cfg.debug_addr.empty()) {
    http::ServerOptions dopts;
    dopts.addr = cfg.debug_addr;
    const bool prometheus = cfg.prometheus_enabled;
    const std::string metrics_path = cfg.prometheus_path.empty() ? "/metrics" : cfg.prometheus_path;
    auto debug = http::Server::start(
        base.base, dopts,
        [rtp, prometheus, metrics_path](const http::ExchangePtr& ex) {
          const auto& path = ex->req().path;
          if (path == "/debug/health") return answer_health(*rtp, ex);
          if (prometheus && path == metrics_path) {
            http::Response res(200);
            res.body = rtp->metrics.render();
            res.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            return ex->respond(std::move(res));
          }
          api::fail(ex, oci::ErrorCode::Unsupported, "no such debug endpoint", {}, 404);
        },
        nullptr);
    if (!debug) {
      spdlog::critical("http.debug.addr: {}", debug.error());
      return 1;
    }
    rt.debug_server = std::move(*debug);
    spdlog::info("debug listener on {} (health{})", cfg.debug_addr, prometheus ? ", metrics at " + metrics_path : "");
  }

  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    EventOwner o(evsignal_new(base.base, sig, &on_signal, &rt));
    event_add(o.get(), nullptr);
    rt.events.push_back(std::move(o));
  }
  add_timer(rt, std::chrono::seconds(10), &flush_access);
  auto measure = [](Runtime& r) { measure_store(r); };
  measure(rt);
  add_timer(rt, std::chrono::seconds(60), measure);

  if (cfg.health_storage_enabled) {
    if (rt.s3 || rt.index->blocks())  // S3 or a networked index: never on the loop
      rt.pool->submit([h = rt.health.get()] { h->probe(); }, nullptr);
    else rt.health->probe();
    add_timer(rt, std::max(cfg.health_storage_interval, std::chrono::seconds(1)), [](Runtime& r) {
      auto* rp = &r;
      r.pool->submit([rp] { rp->health->probe(); }, nullptr);
    });
  }
  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    // Ping at half the interval, from the loop: a stuck loop stops the pings and systemd restarts wharf.
    add_timer(rt, std::max(std::chrono::seconds(1), std::chrono::seconds(watchdog_usec / 2000000)),
              [](Runtime&) { sd_notify(0, "WATCHDOG=1"); });
  }
  if (cfg.upload_purging) {
    api::purge_uploads(*rt.ctx);  // at start too: sessions a stopped process left (in S3: their multipart uploads)
    add_timer(rt, std::max(cfg.upload_purge_interval, std::chrono::seconds(1)),
              [](Runtime& r) { api::purge_uploads(*r.ctx); });
  }

  if (cfg.gc_interval.count() > 0) {
    add_timer(rt, cfg.gc_interval, &schedule_gc);
    spdlog::info("online garbage collection every {}s (grace {}s)", cfg.gc_interval.count(), cfg.gc_grace.count());
  }
  if (cfg.cache_max_size > 0) {
    add_timer(rt, std::chrono::seconds(5), &schedule_evict);
    spdlog::info("proxied cache bounded to {} bytes", cfg.cache_max_size);
  }
  spdlog::info("wharf {} listening on {}{} (root {}, auth {}, delete {})", WHARF_VERSION, cfg.http_addr,
               cfg.tls_certificate.empty() ? "" : " (TLS)", root.string(), rt.auth->describe(),
               cfg.delete_enabled ? "enabled" : "disabled");
  spdlog::default_logger()->flush();
  sd_notify(0, "READY=1");
  util::mark_event_loop_thread(true);
  event_base_dispatch(base.base);
  util::mark_event_loop_thread(false);
  rt.server.reset();
  rt.debug_server.reset();
  if (rt.mirror) rt.mirror->fetches().flush();  // verified downloads still waiting for their group
  if (rt.s3) rt.s3->bridge->close();  // the loop has stopped: workers waiting on S3 calls give up
  rt.pool->shutdown();
  rt.mirror.reset();
  rt.http_client.reset();
  rt.events.clear();
  spdlog::info("stopped");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace wharf
