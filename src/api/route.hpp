#pragma once
// Maps a raw /v2 request path to the resource it names. Pure: no I/O.
#include <expected>
#include <string>
#include <string_view>

#include "src/auth/actions.hpp"
#include "src/oci/errors.hpp"

namespace wharf::api {

enum class RouteKind { Base, Catalog, Tags, Manifest, Blob, UploadStart, Upload, Referrers };

struct Route {
  RouteKind kind = RouteKind::Base;
  std::string name;  // repository name (validated)
  std::string ref;   // tag/digest for manifests, digest for blobs/referrers, session id for uploads
};

// Parses a path such as "/v2/library/alpine/manifests/3.19". Fails with NAME_INVALID for a bad repository
// name, and with status 404 (code UNSUPPORTED) for paths that are no registry endpoint.
struct RouteError {
  oci::ErrorCode code;
  int status;
  std::string message;
};
std::expected<Route, RouteError> parse_route(std::string_view path);

// The metrics label of a route kind ("manifest", "blob", "upload", ...).
const char* route_label(RouteKind kind);

// What a request needs: actions (auth::Action bits) on one repository; none for the base endpoint;
// the catalog names no repository and is filtered instead.
struct Scope {
  std::string repo;
  uint8_t actions = 0;
  std::string mount_from;  // POST .../uploads/?mount=&from=: the source repository also needs pull
};

// The scope of `method` on `r`: GET/HEAD pull; PUT/POST/PATCH push (uploads: any method); DELETE of
// a manifest or blob delete.
Scope request_scope(const Route& r, std::string_view method, std::string_view mount_from);

// True if `id` looks like an upload session id wharf issued (lowercase hex and dashes, 8..64 chars).
bool valid_session_id(std::string_view id);

}  // namespace wharf::api
