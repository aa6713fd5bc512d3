// Pull-through tags lists and catalogs: the upstream's passed through, the cached ones as fallback.
#include "src/api/mirror.hpp"

#include <nlohmann/json.hpp>

#include "src/api/context.hpp"
#include "src/api/handlers.hpp"
#include "src/api/respond.hpp"

namespace wharf::api {

namespace {

// Fetches a small JSON document (tags list, catalog) from `up`; done(body) on a 200, done(nullopt) otherwise.
void fetch_listing(proxy::Upstream& up, std::string path, std::string scope_repo,
                   std::function<void(std::optional<std::string>)> done) {
  auto status = std::make_shared<int>(0);
  auto body = std::make_shared<std::string>();
  proxy::FetchCallbacks cb;
  cb.on_head = [status](const proxy::UpstreamResponse& res) { *status = res.status; };
  cb.on_data = [body](const char* p, size_t n) {
    if (body->size() + n > (8u << 20)) return false;
    body->append(p, n);
    return true;
  };
  cb.on_done = [status, body, done = std::move(done)](bool ok, const std::string&) {
    if (!ok || *status != 200) return done(std::nullopt);
    done(std::move(*body));
  };
  up.fetch("GET", std::move(path), std::move(scope_repo), {}, std::move(cb));
}

// The client's paging parameters (n, last) as a query string for the upstream ("" or "?n=..").
std::string paging_query(const http::Request& req) {
  std::string q;
  for (const char* k : {"n", "last"})
    if (auto v = req.query_param(k)) q += std::string(q.empty() ? "?" : "&") + k + "=" + http::percent_encode(*v);
  return q;
}

// A listing passed through from the upstream.
void respond_listing(const http::ExchangePtr& ex, std::string body) {
  auto res = json_response(200, std::move(body));
  res.cache_status = "MISS";
  ex->respond(std::move(res));
}

// The cached repositories of one upstream ("<ns>/..." in the store), with the prefix removed.
void cached_catalog(Context& ctx, const http::ExchangePtr& ex, const std::string& ns) {
  const std::string prefix = ns + "/";
  std::vector<std::string> names;
  {
    auto txn = ctx.index.read();
    std::string last = prefix;
    for (int page = 0; page < 100; ++page) {
      bool more = false;
      auto repos = ctx.index.repos(txn, last, 1000, &more);
      bool past = false;
      for (auto& r : repos) {
        if (!r.starts_with(prefix)) {
          past = true;
          break;
        }
        names.push_back(r.substr(prefix.size()));
      }
      if (past || !more || repos.empty()) break;
      last = repos.back();
    }
  }
  auto res = json_response(200, nlohmann::json{{"repositories", names}}.dump());
  res.cache_status = "STALE";
  ex->respond(std::move(res));
}

}  // namespace

void Mirror::list_tags(const http::ExchangePtr& ex, const Route&, const proxy::Decision& d) {
  auto* up = upstream(d.upstream);
  Route cached{RouteKind::Tags, d.cache_repo, {}};
  // The cached tags, including those of manifests served moments ago and still being written.
  auto from_cache = [this, ex, cached] {
    if (pending_.empty()) return api::list_tags(ctx_, ex, cached);
    after_pending_.push_back([this, ex, cached] { api::list_tags(ctx_, ex, cached); });
  };
  if (!up || up->backing_off()) return from_cache();
  fetch_listing(*up, "/v2/" + d.remote_repo + "/tags/list" + paging_query(ex->req()), d.remote_repo,
                [ex, from_cache](std::optional<std::string> body) {
                  if (!body) return from_cache();
                  respond_listing(ex, std::move(*body));
                });
}

bool Mirror::catalog(const http::ExchangePtr& ex, const std::string& ns) {
  auto* up = upstream(ns);
  if (!up) return false;
  auto from_cache = [this, ex, ns] {  // as in list_tags: after manifests still being written
    if (pending_.empty()) return cached_catalog(ctx_, ex, ns);
    after_pending_.push_back([this, ex, ns] { cached_catalog(ctx_, ex, ns); });
  };
  if (up->backing_off()) {
    from_cache();
    return true;
  }
  fetch_listing(*up, "/v2/_catalog" + paging_query(ex->req()), "", [ex, from_cache](std::optional<std::string> body) {
    if (!body) return from_cache();
    respond_listing(ex, std::move(*body));
  });
  return true;
}

}  // namespace wharf::api
