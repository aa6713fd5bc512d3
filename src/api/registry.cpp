#include "src/api/registry.hpp"

#include "src/api/handlers.hpp"
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

std::optional<std::string> Registry::immutable_conflict(const Route& r, const std::string& method) {
  const auth::Rules& rules = auth_.rules();
  if (!rules.has_immutable_tags()) return std::nullopt;
  auto txn = ctx_.index.read();
  if (r.ref.find(':') == std::string::npos) {  // a tag
    if (!rules.tag_immutable(r.name, r.ref) || !ctx_.index.tag(txn, r.name, r.ref)) return std::nullopt;
    return std::string("tag ").append(r.ref) + " of " + r.name + " is immutable (auth.immutabletags); it cannot be " +
           (method == "PUT" ? "overwritten" : "deleted");
  }
  if (method != "DELETE") return std::nullopt;
  bool more = false;
  for (const std::string& t : ctx_.index.tags(txn, r.name, "", 0, &more)) {
    if (rules.tag_immutable(r.name, t) && ctx_.index.tag(txn, r.name, t) == r.ref)
      return std::string("manifest ").append(r.ref) + " is tagged " + t + " in " + r.name +
             ", an immutable tag (auth.immutabletags); it cannot be deleted";
  }
  return std::nullopt;
}

void Registry::dispatch(const http::ExchangePtr& ex, const Route& r, const Caller& caller) {
  const Route* route = &r;
  if (route->kind == RouteKind::Manifest && (ex->req().method == "PUT" || ex->req().method == "DELETE")) {
    if (auto why = immutable_conflict(*route, ex->req().method)) return fail(ex, oci::ErrorCode::Denied, *why);
  }
  const std::string& m = ex->req().method;
  const bool get = m == "GET" || m == "HEAD";
  if (ctx_.mirror && ctx_.mirror->enabled() && !route->name.empty()) {
    auto d = ctx_.mirror->decide(route->name, ex->req().query_param("ns").value_or(""));
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
      if (get && route->kind == RouteKind::Referrers) return referrers(ctx_, ex, Route{route->kind, d.cache_repo, route->ref});
      if (!get) {
        // Writes: refused where the name belongs to an upstream, unless proxy.allowpush.
        bool cached_upstream_repo = false;
        {
          auto txn = ctx_.index.read();
          cached_upstream_repo = ctx_.index.repo_exists(txn, d.cache_repo);
        }
        if ((d.explicit_upstream || cached_upstream_repo) && !ctx_.cfg.allow_push_to_proxied)
          return fail(ex, oci::ErrorCode::Denied,
                      "repository " + route->name + " is mirrored from " + d.upstream +
                          "; pushing into a proxied namespace is not allowed (set proxy.allowpush or use another name)");
      }
    }
  }
  switch (route->kind) {
    case RouteKind::Base:
      if (!get) return method_not_allowed(ex);
      return ex->respond(json_response(200, "{}"));
    case RouteKind::Catalog:
      if (!get) return method_not_allowed(ex);
      if (ctx_.mirror) {
        auto may_pull = [gate = &auth_, caller](std::string_view repo) { return (gate->allowed(caller, repo) & auth::kPull) != 0; };
        if (auto ns = ex->req().query_param("ns"); ns && ctx_.mirror->catalog(ex, *ns, may_pull)) return;
      }
      return catalog(ctx_, ex, *route, [&](std::string_view repo) { return (auth_.allowed(caller, repo) & auth::kPull) != 0; });
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
