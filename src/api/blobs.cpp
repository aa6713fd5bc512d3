// GET/HEAD/DELETE /v2/<name>/blobs/<digest>
#include <ctime>
#include <variant>

#include "src/api/handlers.hpp"
#include "src/api/respond.hpp"
#include "src/oci/range.hpp"

namespace wharf::api {

// Answers `res` (headers set) with the bytes of a backend's read plan: sendfile of a local range, or a
// 307 to the URL the backend gives. The plan's descriptor is handed to the response, which closes it.
void serve_plan(const http::ExchangePtr& ex, http::Response res, cache::ReadPlan plan, const std::string& digest) {
  if (auto* local = std::get_if<cache::LocalRange>(&plan)) {
    res.file = http::FileBody{local->fd, local->first, local->length};
    return ex->respond(std::move(res));
  }
  if (auto* redirect = std::get_if<cache::Redirect>(&plan)) {
    http::Response moved(307);
    moved.cache_status = res.cache_status;
    moved.header("Location", redirect->url);
    moved.header("Docker-Content-Digest", digest);
    return ex->respond(std::move(moved));
  }
  // A ByteStream needs the response to be fed from the event loop: the object-store backend brings it.
  fail(ex, oci::ErrorCode::Unavailable, "this blob store cannot stream the blob");
}

void get_blob(Context& ctx, const http::ExchangePtr& ex, const Route& r, const char* cache_status) {
  auto digest = oci::parse_digest(r.ref);
  if (!digest) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
  const std::string dstr = digest->str();
  std::optional<uint64_t> size;
  {
    auto txn = ctx.index.read();
    if (ctx.index.blob_linked(txn, r.name, dstr)) {
      if (auto rec = ctx.index.blob(txn, dstr)) size = rec->size;
    } else if (ctx.index.manifest_in_repo(txn, r.name, dstr)) {
      if (auto rec = ctx.index.manifest(txn, dstr)) size = rec->size;
    }
  }
  if (!size) return fail(ex, oci::ErrorCode::BlobUnknown, {}, oci::Detail{{"digest", dstr}});
  const auto& req = ex->req();
  const bool head = req.method == "HEAD";
  http::Response res(200);
  res.cache_status = cache_status;
  res.header("Content-Type", "application/octet-stream");
  res.header("Docker-Content-Digest", dstr);
  res.header("Accept-Ranges", "bytes");
  res.header("ETag", "\"" + dstr + "\"");
  res.header("Cache-Control", "max-age=31536000");
  uint64_t first = 0, length = *size;
  auto range = oci::parse_range(req.header("range"), *size);
  if (range.kind == oci::RangeKind::Unsatisfiable) {
    auto err = error_response(oci::ErrorCode::RangeInvalid, {}, {}, 416);
    err.header("Content-Range", "bytes */" + std::to_string(*size));
    return ex->respond(std::move(err));
  }
  if (range.kind == oci::RangeKind::Satisfiable) {
    res.status = 206;
    first = range.range.first;
    length = range.range.length();
    res.header("Content-Range", "bytes " + std::to_string(range.range.first) + "-" +
                                    std::to_string(range.range.last) + "/" + std::to_string(*size));
  }
  ctx.access.touch(dstr, time(nullptr));
  if (head) {
    res.content_length = length;
    return ex->respond(std::move(res));
  }
  auto cached = *size <= SmallCache::kMaxItem ? ctx.small.get(dstr) : nullptr;
  if (!cached && *size > SmallCache::kMaxItem) {
    auto plan = ctx.store.read(*digest, first, length, cache::RedirectPolicy::Never);
    if (!plan) return fail(ex, oci::ErrorCode::Unavailable, "cannot read blob " + dstr + ": " + plan.error());
    if (!*plan) return fail(ex, oci::ErrorCode::BlobUnknown, "blob data missing from the store", oci::Detail{{"digest", dstr}});
    return serve_plan(ex, std::move(res), std::move(**plan), dstr);
  }
  if (!cached) {
    auto bytes = ctx.store.read_small(*digest, SmallCache::kMaxItem);
    if (!bytes) {
      if (!ctx.store.stat(*digest))
        return fail(ex, oci::ErrorCode::BlobUnknown, "blob data missing from the store", oci::Detail{{"digest", dstr}});
      return fail(ex, oci::ErrorCode::Unavailable, "cannot read blob " + dstr);
    }
    if (bytes->size() != *size) return fail(ex, oci::ErrorCode::Unavailable, "stored blob " + dstr + " has the wrong size");
    ctx.small.put(dstr, std::move(*bytes));
    cached = ctx.small.get(dstr);
    if (!cached) return fail(ex, oci::ErrorCode::Unavailable, "cannot read blob " + dstr);
  }
  res.body.assign(*cached, size_t(first), size_t(length));
  ex->respond(std::move(res));
}

void delete_blob(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  if (!ctx.cfg.delete_enabled) return fail(ex, oci::ErrorCode::Unsupported, "deletion is disabled (storage.delete.enabled)");
  auto digest = oci::parse_digest(r.ref);
  if (!digest) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
  auto result = std::make_shared<std::expected<bool, std::string>>(false);
  std::string repo = r.name, dstr = digest->str();
  ctx.pool.submit([&ctx, result, repo, dstr] { *result = ctx.index.unlink_blob(repo, dstr); },
                  [ex, result, dstr] {
                    if (!*result) return fail(ex, oci::ErrorCode::Unavailable, result->error());
                    if (!**result) return fail(ex, oci::ErrorCode::BlobUnknown, {}, oci::Detail{{"digest", dstr}});
                    http::Response res(202);
                    res.header("Docker-Content-Digest", dstr);
                    ex->respond(std::move(res));
                  });
}

}  // namespace wharf::api
