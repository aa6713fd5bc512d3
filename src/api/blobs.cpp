// GET/HEAD/DELETE /v2/<name>/blobs/<digest>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "src/api/handlers.hpp"
#include "src/api/respond.hpp"
#include "src/oci/range.hpp"

namespace wharf::api {

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
  if (!cached) {
    int fd = ctx.store.open_read(*digest);
    if (fd < 0) return fail(ex, oci::ErrorCode::BlobUnknown, "blob data missing from the store", oci::Detail{{"digest", dstr}});
    if (*size > SmallCache::kMaxItem) {
      res.file = http::FileBody{fd, first, length};
      return ex->respond(std::move(res));
    }
    auto bytes = read_small_file(fd, *size);
    ::close(fd);
    if (!bytes) return fail(ex, oci::ErrorCode::Unavailable, "cannot read blob " + dstr);
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
