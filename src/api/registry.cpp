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
  if (!path.starts_with("/v2")) return fail(ex, oci::ErrorCode::Unsupported, "no such endpoint", {}, 404);
  auth_.check(ex, [this, ex] { dispatch(ex); });
}

void Registry::dispatch(const http::ExchangePtr& ex) {
  auto route = parse_route(ex->req().path);
  if (!route) return fail(ex, route.error().code, route.error().message, {}, route.error().status);
  ex->req().route = route_label(route->kind);
  const std::string& m = ex->req().method;
  const bool get = m == "GET" || m == "HEAD";
  if (ctx_.mirror && ctx_.mirror->enabled() && !route->name.empty()) {
    auto d = ctx_.mirror->decide(route->name, ex->req().query_param("ns").value_or(""));
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
        if (auto ns = ex->req().query_param("ns"); ns && ctx_.mirror->catalog(ex, *ns)) return;
      }
      return catalog(ctx_, ex, *route);
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
