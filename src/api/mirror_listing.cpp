// Pull-through tags lists and catalogs: the upstream's passed through, the cached ones as fallback.
#include "src/api/mirror.hpp"

#include <nlohmann/json.hpp>

#include "src/api/context.hpp"
#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"
#include "src/api/respond.hpp"
#include "src/util/json.hpp"

namespace wharf::api {

namespace {

// Fetches a small JSON document (tags list, catalog) from `up`; done(body) on a 200, done(nullopt) otherwise.
void fetch_listing(proxy::Upstream& up, std::string path, std::string scope_repo, const proxy::Credential& cred,
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
  up.fetch("GET", std::move(path), std::move(scope_repo), {}, std::move(cb), cred);
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

// Whether the caller may pull `name` of upstream `ns`, with ?ns= or by its explicit name "ns/name".
using MayPull = std::function<bool(std::string_view)>;
bool visible(const MayPull& may_pull, const std::string& ns, const std::string& name) {
  return may_pull(name) || may_pull(std::string(ns).append("/").append(name));
}

// The upstream's catalog with only the visible names; nullopt if it is not a catalog document.
std::optional<std::string> filter_catalog(const std::string& body, const std::string& ns, const MayPull& may_pull) {
  auto doc = util::parse_json(body);
  if (!doc || !doc->is_object()) return std::nullopt;
  auto it = doc->find("repositories");
  if (it == doc->end() || !it->is_array()) return std::nullopt;
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& name : *it)
    if (name.is_string() && visible(may_pull, ns, name.get<std::string>())) kept.push_back(name);
  *it = std::move(kept);
  return doc->dump();
}

// The cached repositories of one upstream ("<ns>/..." in the store), with the prefix removed.
void cached_catalog(Context& ctx, const http::ExchangePtr& ex, const std::string& ns, const MayPull& may_pull) {
  // The names under the prefix are read where the index may block; `may_pull` is asked on the loop.
  auto read = [](const cache::Index& index, const std::string& prefix) {
    std::vector<std::string> names;
    auto txn = index.read();
    std::string last = prefix;
    for (int page = 0; page < 100; ++page) {
      bool more = false;
      auto repos = index.repos(txn, last, 1000, &more);
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
    return names;
  };
  index_call(
      ctx.index, ctx.pool, ex, read,
      [ex, ns, may_pull](std::vector<std::string> found, const std::string&) {
        std::vector<std::string> names;
        for (auto& name : found)
          if (visible(may_pull, ns, name)) names.push_back(std::move(name));
        auto res = json_response(200, nlohmann::json{{"repositories", names}}.dump());
        res.cache_status = "STALE";
        ex->respond(std::move(res));
      },
      ns + "/");
}

}  // namespace

void Mirror::list_tags(const http::ExchangePtr& ex, const Route& r, const proxy::Decision& d) {
  auto* up = upstream(d.upstream);
  Route cached{RouteKind::Tags, d.cache_repo, {}};
  const proxy::Credential cred = credential_of(ex->req());
  // The cached tags, including those of manifests served moments ago and still being written; with
  // proxy.forwardcredentials only for a caller the upstream has let pull the repository.
  auto from_cache = [this, ex, cached, cred, name = r.name] {
    if (!granted(cred, cached.name, GrantAge::Any))
      return fail(ex, oci::ErrorCode::NameUnknown, "repository " + name + " is not known to this registry");
    if (pending_.empty()) return api::list_tags(ctx_, ex, cached);
    after_pending_.push_back([this, ex, cached] { api::list_tags(ctx_, ex, cached); });
  };
  if (!up || up->backing_off()) return from_cache();
  fetch_listing(*up, "/v2/" + d.remote_repo + "/tags/list" + paging_query(ex->req()), d.remote_repo, cred,
                [this, ex, from_cache, cred, repo = d.cache_repo](std::optional<std::string> body) {
                  if (!body) return from_cache();
                  grant(cred, repo);
                  respond_listing(ex, std::move(*body));
                });
}

bool Mirror::catalog(const http::ExchangePtr& ex, const std::string& ns, MayPull allowed) {
  auto* up = upstream(ns);
  if (!up) return false;
  const proxy::Credential cred = credential_of(ex->req());
  // proxy.forwardcredentials: the cached names of only the repositories the caller was let pull.
  MayPull may_pull = [this, allowed, cred, ns](std::string_view name) {
    if (!allowed(name)) return false;
    const std::string repo = name.starts_with(ns + "/") ? std::string(name) : std::string(ns).append("/").append(name);
    return granted(cred, repo, GrantAge::Any);
  };
  auto from_cache = [this, ex, ns, may_pull] {  // as in list_tags: after manifests still being written
    if (pending_.empty()) return cached_catalog(ctx_, ex, ns, may_pull);
    after_pending_.push_back([this, ex, ns, may_pull] { cached_catalog(ctx_, ex, ns, may_pull); });
  };
  if (up->backing_off()) {
    from_cache();
    return true;
  }
  fetch_listing(*up, "/v2/_catalog" + paging_query(ex->req()), "", cred,
                [ex, ns, allowed, from_cache](std::optional<std::string> body) {  // the caller's own view upstream
                  auto filtered = body ? filter_catalog(*body, ns, allowed) : std::nullopt;
                  if (!filtered) return from_cache();
                  respond_listing(ex, std::move(*filtered));
                });
  return true;
}

}  // namespace wharf::api
