#include "src/api/registry.hpp"

#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"
#include "src/api/inflight.hpp"
#include "src/api/mirror.hpp"
#include "src/api/respond.hpp"
#include "src/api/route.hpp"

namespace wharf::api {

namespace {

void method_not_allowed(const http::ExchangePtr& ex) {
  fail(ex, oci::ErrorCode::Unsupported, "method " + ex->req().method + " is not allowed on this endpoint");
}

}  // namespace

void Registry::handle(const http::ExchangePtr& ex) {
  const auto& path = ex->req().path;
  if (path == "/auth/token") return auth_.token_endpoint(ex);
  // Between fronts of a fleet: authenticated by its own token (http.secret), not by the registry's auth.
  if (path.starts_with(kInflightPath))
    return serve_inflight(ctx_.cfg, ctx_.mirror ? &ctx_.mirror->fetches() : nullptr, ex);
  if (!path.starts_with("/v2")) return fail(ex, oci::ErrorCode::Unsupported, "no such endpoint", {}, 404);
  if (ex->req().method == "OPTIONS") {
    // A browser's CORS preflight carries no credentials: 204 with http.headers (added to every response), nothing else.
    ex->req().route = "preflight";
    return ex->respond(http::Response(204));
  }
  auto route = parse_route(path);
  if (!route) {
    // Even a path that names nothing needs a signed-in caller when authentication is on.
    return auth_.check(ex, Scope{}, [ex, e = route.error()](const Caller&) { fail(ex, e.code, e.message, {}, e.status); });
  }
  ex->req().route = route_label(route->kind);
  const bool mount = ex->req().query_param("mount").has_value();
  const Scope scope = request_scope(*route, ex->req().method, mount ? ex->req().query_param("from").value_or("") : "");
  auth_.check(ex, scope, [this, ex, route = std::move(*route)](const Caller& caller) { dispatch(ex, route, caller); });
}

std::optional<std::string> Registry::immutable_conflict(const cache::Index& index, const cache::Index::ReadTxn& txn,
                                                       const Route& r, const std::string& method) const {
  const auth::Rules& rules = auth_.rules();
  if (!rules.has_immutable_tags()) return std::nullopt;
  if (r.ref.find(':') == std::string::npos) {  // a tag
    if (!rules.tag_immutable(r.name, r.ref) || !index.tag(txn, r.name, r.ref)) return std::nullopt;
    return std::string("tag ").append(r.ref) + " of " + r.name + " is immutable (auth.immutabletags); it cannot be " +
           (method == "PUT" ? "overwritten" : "deleted");
  }
  if (method != "DELETE") return std::nullopt;
  bool more = false;
  for (const std::string& t : index.tags(txn, r.name, "", 0, &more)) {
    if (rules.tag_immutable(r.name, t) && index.tag(txn, r.name, t) == r.ref)
      return std::string("manifest ").append(r.ref) + " is tagged " + t + " in " + r.name +
             ", an immutable tag (auth.immutabletags); it cannot be deleted";
  }
  return std::nullopt;
}

Registry::Facts Registry::read_facts(const cache::Index& index, const Route& r, const std::string& m,
                                     const std::string& ns) const {
  Facts f;
  if (r.kind == RouteKind::Manifest && (m == "PUT" || m == "DELETE") && auth_.rules().has_immutable_tags()) {
    auto txn = index.read();
    f.immutable = immutable_conflict(index, txn, r, m);
  }
  if (ctx_.mirror && ctx_.mirror->enabled() && !r.name.empty()) {
    f.decision = ctx_.mirror->decide(index, r.name, ns);
    if (f.decision->proxied && m != "GET" && m != "HEAD") {
      auto txn = index.read();
      f.cached_upstream_repo = index.repo_exists(txn, f.decision->cache_repo);
    }
  }
  return f;
}

void Registry::dispatch(const http::ExchangePtr& ex, const Route& r, const Caller& caller) {
  const std::string& m = ex->req().method;
  const bool immutable_check = r.kind == RouteKind::Manifest && (m == "PUT" || m == "DELETE") &&
                               auth_.rules().has_immutable_tags();
  if (!immutable_check && !(ctx_.mirror && ctx_.mirror->enabled() && !r.name.empty()))
    return dispatch_with(ex, r, caller, Facts{});  // nothing to read
  auto read = [this](const cache::Index& index, const Route& route, const std::string& method, const std::string& ns,
                     const Caller&) {
    return read_facts(index, route, method, ns);
  };
  index_call(
      ctx_.index, ctx_.pool, ex, read,
      [this, ex](Facts facts, const Route& route, const std::string&, const std::string&, const Caller& who) {
        dispatch_with(ex, route, who, facts);
      },
      r, m, ex->req().query_param("ns").value_or(""), caller);
}

void Registry::dispatch_with(const http::ExchangePtr& ex, const Route& r, const Caller& caller, const Facts& facts) {
  const Route* route = &r;
  if (facts.immutable) return fail(ex, oci::ErrorCode::Denied, *facts.immutable);
  const std::string& m = ex->req().method;
  const bool get = m == "GET" || m == "HEAD";
  if (facts.decision) {
    const proxy::Decision& d = *facts.decision;
    if (d.proxied && get && !auth_.may_fetch(caller, d.upstream)) {
      // Not allowed to trigger fetches from this upstream (auth.fetch): what is cached, nothing more.
      const Route cached{route->kind, d.cache_repo, route->ref};
      if (route->kind == RouteKind::Manifest) return get_manifest(ctx_, ex, cached);
      if (route->kind == RouteKind::Blob) return get_blob(ctx_, ex, cached);
      if (route->kind == RouteKind::Tags) return list_tags(ctx_, ex, cached);
      if (route->kind == RouteKind::Referrers) return referrers(ctx_, ex, cached);
    }
    if (d.proxied) {
      if (get && route->kind == RouteKind::Manifest) return ctx_.mirror->get_manifest(ex, *route, d);
      if (get && route->kind == RouteKind::Blob) return ctx_.mirror->get_blob(ex, *route, d);
      if (get && route->kind == RouteKind::Tags) return ctx_.mirror->list_tags(ex, *route, d);
      if (get && route->kind == RouteKind::Referrers) {
        if (!ctx_.mirror->visible(ex->req(), d.cache_repo))  // proxy.forwardcredentials
          return fail(ex, oci::ErrorCode::NameUnknown, "repository " + route->name + " is not known to this registry");
        return referrers(ctx_, ex, Route{route->kind, d.cache_repo, route->ref});
      }
      if (!get) {
        // Writes: refused where the name belongs to an upstream, unless proxy.allowpush.
        if ((d.explicit_upstream || facts.cached_upstream_repo) && !ctx_.cfg.allow_push_to_proxied)
          return fail(ex, oci::ErrorCode::Denied,
                      "repository " + route->name + " is mirrored from " + d.upstream +
                          "; pushing into a proxied namespace is not allowed (set proxy.allowpush or use another name)");
      }
    }
  }
  switch (route->kind) {
    case RouteKind::Base:
      if (!get) return method_not_allowed(ex);
      if (ctx_.cfg.forward_credentials && ex->req().header("authorization").empty()) {
        // proxy.forwardcredentials: invites clients to send the upstream account they signed in with
        // (docker login); without one they still pull what the configured account may.
        auto res = error_response(oci::ErrorCode::Unauthorized, "sign in with your upstream account to pull what it may");
        res.header("WWW-Authenticate", "Basic realm=\"wharf\"");
        return ex->respond(std::move(res));
      }
      return ex->respond(json_response(200, "{}"));
    case RouteKind::Catalog:
      if (!get) return method_not_allowed(ex);
      if (ctx_.mirror) {
        auto may_pull = [gate = &auth_, caller](std::string_view repo) { return (gate->allowed(caller, repo) & auth::kPull) != 0; };
        if (auto ns = ex->req().query_param("ns"); ns && ctx_.mirror->catalog(ex, *ns, may_pull)) return;
      }
      // Called on the loop, possibly after the request's first index read: owns what it uses.
      return catalog(ctx_, ex, *route, [this, ex, caller](std::string_view repo) {
        return (auth_.allowed(caller, repo) & auth::kPull) != 0 &&
               (!ctx_.mirror || ctx_.mirror->visible(ex->req(), std::string(repo)));
      });
    case RouteKind::Tags:
      if (!get) return method_not_allowed(ex);
      return list_tags(ctx_, ex, *route);
    case RouteKind::Referrers:
      if (!get) return method_not_allowed(ex);
      return referrers(ctx_, ex, *route);
    case RouteKind::Manifest:
      if (get) return get_manifest(ctx_, ex, *route);
      if (m == "PUT") return put_manifest(ctx_, ex, *route);
      if (m == "DELETE") return delete_manifest(ctx_, ex, *route);
      return method_not_allowed(ex);
    case RouteKind::Blob:
      if (get) return get_blob(ctx_, ex, *route);
      if (m == "DELETE") return delete_blob(ctx_, ex, *route);
      return method_not_allowed(ex);
    case RouteKind::UploadStart:
      if (m == "POST") return start_upload(ctx_, ex, *route);
      return method_not_allowed(ex);
    case RouteKind::Upload:
      if (m == "PATCH") return patch_upload(ctx_, ex, *route);
      if (m == "PUT") return put_upload(ctx_, ex, *route);
      if (get) return upload_status(ctx_, ex, *route);
      if (m == "DELETE") return cancel_upload(ctx_, ex, *route);
      return method_not_allowed(ex);
  }
  method_not_allowed(ex);
}

}  // namespace wharf::api
