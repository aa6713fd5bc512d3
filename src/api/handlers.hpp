#pragma once
#include <functional>
#include <string_view>
// One function per registry endpoint. Each answers on `ex`, possibly later (after a worker job).
#include "src/api/context.hpp"
#include "src/api/route.hpp"
#include "src/http/server.hpp"

namespace wharf::api {

// blobs.cpp
// GET and HEAD; `cache_status` goes to the access log.
void get_blob(Context& ctx, const http::ExchangePtr& ex, const Route& r, const char* cache_status = "LOCAL");
void delete_blob(Context& ctx, const http::ExchangePtr& ex, const Route& r);
// uploads.cpp
void start_upload(Context& ctx, const http::ExchangePtr& ex, const Route& r);  // POST (session, monolithic, mount)
void patch_upload(Context& ctx, const http::ExchangePtr& ex, const Route& r);
void put_upload(Context& ctx, const http::ExchangePtr& ex, const Route& r);
void upload_status(Context& ctx, const http::ExchangePtr& ex, const Route& r);
void cancel_upload(Context& ctx, const http::ExchangePtr& ex, const Route& r);
// Removes upload sessions older than the configured age (and orphaned data files); called on the loop,
// it reads and writes the index on the work pool when the index blocks.
void purge_uploads(Context& ctx);
// manifests.cpp
void get_manifest(Context& ctx, const http::ExchangePtr& ex, const Route& r, const char* cache_status = "LOCAL");
void put_manifest(Context& ctx, const http::ExchangePtr& ex, const Route& r);
void delete_manifest(Context& ctx, const http::ExchangePtr& ex, const Route& r);
// listing.cpp
void list_tags(Context& ctx, const http::ExchangePtr& ex, const Route& r);
// The catalog, listing only the repositories `visible` accepts (the caller may pull them).
void catalog(Context& ctx, const http::ExchangePtr& ex, const Route& r,
             const std::function<bool(std::string_view)>& visible);
void referrers(Context& ctx, const http::ExchangePtr& ex, const Route& r);

}  // namespace wharf::api
