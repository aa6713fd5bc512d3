#include "src/app.hpp"

#include <event2/event.h>
#include <event2/thread.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <filesystem>

#include "cache/blob_store.hpp"
#include "cache/index.hpp"
#include "src/api/auth_gate.hpp"
#include "src/api/context.hpp"
#include "src/api/handlers.hpp"
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
  const config::Config& cfg;
  event_base* base;
  std::unique_ptr<cache::Index> index;
  std::optional<cache::BlobStore> store;
  std::unique_ptr<util::WorkPool> pool;
  api::AccessTracker access;
  api::UploadTable uploads;
  std::unique_ptr<api::Context> ctx;
  std::unique_ptr<proxy::HttpClient> http_client;
  std::unique_ptr<proxy::TokenCache> tokens;
  std::unique_ptr<api::Mirror> mirror;
  std::unique_ptr<api::AuthGate> auth;
  std::unique_ptr<api::Registry> registry;
  std::unique_ptr<http::Server> server;
  std::vector<EventOwner> events;
  bool stopping = false;
};

void flush_access(Runtime& rt) {
  auto batch = rt.access.take();
  if (batch.empty()) return;
  auto* index = rt.index.get();
  rt.pool->submit([index, batch = std::move(batch)] {
    if (auto r = index->touch(batch); !r) spdlog::warn("recording access times failed: {}", r.error());
  }, nullptr);
}

void add_timer(Runtime& rt, std::chrono::seconds every, void (*fn)(Runtime&)) {
  struct Tick {
    static void cb(evutil_socket_t, short, void* arg) {
      auto* p = static_cast<std::pair<Runtime*, void (*)(Runtime&)>*>(arg);
      p->second(*p->first);
    }
  };
  auto* arg = new std::pair<Runtime*, void (*)(Runtime&)>(&rt, fn);  // lives as long as the process
  EventOwner o(event_new(rt.base, -1, EV_PERSIST, &Tick::cb, arg));
  timeval tv{long(every.count()), 0};
  event_add(o.get(), &tv);
  rt.events.push_back(std::move(o));
}

void on_signal(evutil_socket_t sig, short, void* arg) {
  auto* rt = static_cast<Runtime*>(arg);
  if (sig == SIGHUP) {
    spdlog::info("SIGHUP: reloading credentials");
    if (rt->auth) rt->auth->reload();
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

}  // namespace

int serve(const config::Config& cfg) {
  signal(SIGPIPE, SIG_IGN);
  evthread_use_pthreads();
  EventBaseOwner base{event_base_new()};
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
  auto store = cache::BlobStore::open(root);
  if (!store) {
    spdlog::critical("storage.filesystem.rootdirectory: {}", store.error());
    return 1;
  }
  rt.store.emplace(std::move(*store));
  rt.store->clean_tmp();
  auto index = cache::Index::open(root / "index");
  if (!index) {
    spdlog::critical("storage.filesystem.rootdirectory: cannot open the index: {}", index.error());
    return 1;
  }
  rt.index = std::move(*index);
  rt.pool = std::make_unique<util::WorkPool>(base.base, 2);
  rt.ctx.reset(new api::Context{cfg, *rt.index, *rt.store, *rt.pool, base.base, rt.access, rt.uploads});
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
  auto auth = api::AuthGate::create(cfg.htpasswd_realm, cfg.htpasswd_path, *rt.pool);
  if (!auth) {
    spdlog::critical("{}", auth.error());
    return 1;
  }
  rt.auth = std::move(*auth);
  rt.registry = std::make_unique<api::Registry>(*rt.ctx, *rt.auth);

  http::ServerOptions opts;
  opts.addr = cfg.http_addr;
  opts.tls_certificate = cfg.tls_certificate;
  opts.tls_key = cfg.tls_key;
  opts.location_base = cfg.http_host;
  while (!opts.location_base.empty() && opts.location_base.back() == '/') opts.location_base.pop_back();
  opts.extra_headers.emplace_back("Docker-Distribution-API-Version", "registry/2.0");
  for (const auto& h : cfg.http_headers) opts.extra_headers.push_back(h);
  auto* registry = rt.registry.get();
  const bool access_log = cfg.access_log;
  auto server = http::Server::start(
      base.base, opts, [registry](const http::ExchangePtr& ex) { registry->handle(ex); },
      [access_log](const http::Request& req, int status, uint64_t bytes, double secs, const std::string& cache) {
        if (!access_log) return;
        spdlog::info("{} {} {} {} {}B {:.1f}ms user={} cache={}", req.peer, req.method, req.target, status, bytes,
                     secs * 1000, req.user.empty() ? "-" : req.user, cache.empty() ? "-" : cache);
      });
  if (!server) {
    spdlog::critical("{}", server.error());
    return 1;
  }
  rt.server = std::move(*server);

  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    EventOwner o(evsignal_new(base.base, sig, &on_signal, &rt));
    event_add(o.get(), nullptr);
    rt.events.push_back(std::move(o));
  }
  add_timer(rt, std::chrono::seconds(10), &flush_access);
  if (cfg.upload_purging) {
    add_timer(rt, std::max(cfg.upload_purge_interval, std::chrono::seconds(1)),
              [](Runtime& r) { api::purge_uploads(*r.ctx); });
  }

  spdlog::info("wharf {} listening on {}{} (root {}, auth {}, delete {})", WHARF_VERSION, cfg.http_addr,
               cfg.tls_certificate.empty() ? "" : " (TLS)", root.string(), rt.auth->enabled() ? "htpasswd" : "off",
               cfg.delete_enabled ? "enabled" : "disabled");
  sd_notify(0, "READY=1");
  event_base_dispatch(base.base);
  rt.server.reset();
  rt.pool->shutdown();
  rt.mirror.reset();
  rt.http_client.reset();
  rt.events.clear();
  spdlog::info("stopped");
  return 0;
}

}  // namespace wharf
