#include "src/api/registry.hpp"

#include "src/api/handlers.hpp"
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
  if (path == "/debug/health" || path == "/health") {
    http::Response res = json_response(200, "{}");
    return ex->respond(std::move(res));
  }
  if (!path.starts_with("/v2")) return fail(ex, oci::ErrorCode::Unsupported, "no such endpoint", {}, 404);
  auth_.check(ex, [this, ex] { dispatch(ex); });
}

void Registry::dispatch(const http::ExchangePtr& ex) {
  auto route = parse_route(ex->req().path);
  if (!route) return fail(ex, route.error().code, route.error().message, {}, route.error().status);
  const std::string& m = ex->req().method;
  const bool get = m == "GET" || m == "HEAD";
  switch (route->kind) {
    case RouteKind::Base:
      if (!get) return method_not_allowed(ex);
      return ex->respond(json_response(200, "{}"));
    case RouteKind::Catalog:
      if (!get) return method_not_allowed(ex);
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
