#include "src/api/route.hpp"

#include <vector>

#include "src/oci/names.hpp"

namespace wharf::api {

namespace {

RouteError not_found() { return {oci::ErrorCode::Unsupported, 404, "no such registry endpoint"}; }

std::expected<Route, RouteError> with_name(RouteKind kind, std::string_view name, std::string_view ref) {
  if (!oci::valid_repo_name(name))
    return std::unexpected(RouteError{oci::ErrorCode::NameInvalid, 400, "invalid repository name"});
  return Route{kind, std::string(name), std::string(ref)};
}

}  // namespace

std::expected<Route, RouteError> parse_route(std::string_view path) {
  if (path == "/v2" || path == "/v2/") return Route{RouteKind::Base, {}, {}};
  if (!path.starts_with("/v2/")) return std::unexpected(not_found());
  std::string_view rest = path.substr(4);
  if (rest == "_catalog") return Route{RouteKind::Catalog, {}, {}};
  if (rest.size() > 1024) return std::unexpected(RouteError{oci::ErrorCode::NameInvalid, 400, "path too long"});

  // Split into components; the last ones decide the resource, the rest is the repository name.
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = rest.find('/', start);
    parts.push_back(rest.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  const size_t n = parts.size();
  auto name_before = [&](size_t count) {  // the first `count` components joined
    if (count == 0) return std::string_view{};
    const char* b = parts[0].data();
    const char* e = parts[count - 1].data() + parts[count - 1].size();
    return std::string_view(b, size_t(e - b));
  };
  if (n >= 4 && parts[n - 3] == "blobs" && parts[n - 2] == "uploads") {
    if (parts[n - 1].empty()) return with_name(RouteKind::UploadStart, name_before(n - 3), {});
    return with_name(RouteKind::Upload, name_before(n - 3), parts[n - 1]);
  }
  if (n >= 3 && parts[n - 2] == "tags" && parts[n - 1] == "list") return with_name(RouteKind::Tags, name_before(n - 2), {});
  if (n >= 3 && parts[n - 2] == "blobs" && parts[n - 1] == "uploads")
    return with_name(RouteKind::UploadStart, name_before(n - 2), {});
  if (n >= 3 && !parts[n - 1].empty()) {
    if (parts[n - 2] == "manifests") return with_name(RouteKind::Manifest, name_before(n - 2), parts[n - 1]);
    if (parts[n - 2] == "blobs") return with_name(RouteKind::Blob, name_before(n - 2), parts[n - 1]);
    if (parts[n - 2] == "referrers") return with_name(RouteKind::Referrers, name_before(n - 2), parts[n - 1]);
  }
  // A path that names no endpoint; still refuse traversal-looking names clearly.
  for (auto p : parts)
    if (p == ".." || p == ".") return std::unexpected(RouteError{oci::ErrorCode::NameInvalid, 400, "invalid repository name"});
  return std::unexpected(not_found());
}

const char* route_label(RouteKind kind) {
  switch (kind) {
    case RouteKind::Base: return "base";
    case RouteKind::Catalog: return "catalog";
    case RouteKind::Tags: return "tags";
    case RouteKind::Manifest: return "manifest";
    case RouteKind::Blob: return "blob";
    case RouteKind::UploadStart:
    case RouteKind::Upload: return "upload";
    case RouteKind::Referrers: return "referrers";
  }
  return "other";
}

Scope request_scope(const Route& r, std::string_view method, std::string_view mount_from) {
  Scope s;
  s.repo = r.name;
  const bool read = method == "GET" || method == "HEAD";
  switch (r.kind) {
    case RouteKind::Base:
    case RouteKind::Catalog:
      return s;
    case RouteKind::Tags:
    case RouteKind::Referrers:
      s.actions = auth::kPull;
      return s;
    case RouteKind::Manifest:
    case RouteKind::Blob:
      s.actions = read ? auth::kPull : method == "DELETE" ? auth::kDelete : auth::kPush;
      return s;
    case RouteKind::UploadStart:
      s.mount_from = mount_from;
      [[fallthrough]];
    case RouteKind::Upload:
      s.actions = auth::kPush;
      return s;
  }
  return s;
}

bool valid_session_id(std::string_view id) {
  if (id.size() < 8 || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-')) return false;
  return true;
}

}  // namespace wharf::api
