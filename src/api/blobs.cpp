// GET/HEAD/DELETE /v2/<name>/blobs/<digest>
#include <ctime>
#include <variant>

#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"
#include "src/api/respond.hpp"
#include "src/oci/range.hpp"

#include <spdlog/spdlog.h>

namespace wharf::api {

namespace {

// Feeds a ByteStream to a streamed response: the next piece is asked for only once the client has taken
// most of the previous one, so a slow client holds back the object-store transfer.
struct StreamFeed : std::enable_shared_from_this<StreamFeed> {
  static constexpr size_t kLowWater = 1 << 20;
  http::ExchangePtr ex;
  std::unique_ptr<cache::ByteStream> stream;
  bool waiting = false;  // a piece is being fetched

  void pump() {
    if (waiting || !ex->alive()) return;
    if (ex->stream_backlog() > kLowWater) return;  // on_drain calls again
    waiting = true;
    stream->next([self = shared_from_this()](std::expected<std::string_view, std::string> piece) {
      self->waiting = false;
      if (!piece) {
        spdlog::warn("blob stream to {} failed: {}", self->ex->req().peer, piece.error());
        return self->finish(false);
      }
      if (piece->empty()) return self->finish(true);
      self->ex->stream_data(*piece);
      self->pump();
    });
  }
  void finish(bool complete) {
    auto keep = shared_from_this();
    ex->on_drain(nullptr);
    ex->on_close(nullptr);
    if (complete) ex->end_stream();
    else ex->abort();  // the head promised a length: a cut connection tells the client to retry
  }
};

void stream_plan(const http::ExchangePtr& ex, http::Response res, std::unique_ptr<cache::ByteStream> stream) {
  auto feed = std::make_shared<StreamFeed>();
  feed->ex = ex;
  feed->stream = std::move(stream);
  ex->begin_stream(std::move(res));
  std::weak_ptr<StreamFeed> weak = feed;
  ex->on_drain([feed] { feed->pump(); });  // the exchange owns the feed until the stream ends
  ex->on_close([weak] {  // drops the exchange's hold; a piece in flight finishes and is dropped
    if (auto f = weak.lock()) f->ex->on_drain(nullptr);
  });
  feed->pump();
}

}  // namespace

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
  stream_plan(ex, std::move(res), std::move(std::get<std::unique_ptr<cache::ByteStream>>(plan)));  // content_length set
}

namespace {
void answer_blob(Context& ctx, const http::ExchangePtr& ex, const oci::Digest& digest, const std::string& dstr,
                 const cache::Recorded& recorded, const char* cache_status);
}  // namespace

void get_blob(Context& ctx, const http::ExchangePtr& ex, const Route& r, const char* cache_status) {
  auto digest = oci::parse_digest(r.ref);
  if (!digest) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
  auto lookup = [](const cache::Index& index, const std::string& repo, const std::string& dstr, const oci::Digest&) {
    std::optional<cache::Recorded> found;
    auto txn = index.read();
    if (index.blob_linked(txn, repo, dstr)) {
      if (auto rec = index.blob(txn, dstr)) found = cache::Recorded::of(*rec);
    } else if (index.manifest_in_repo(txn, repo, dstr)) {
      if (auto rec = index.manifest(txn, dstr)) found = cache::Recorded::of(*rec);
    }
    return found;
  };
  index_call(
      ctx.index, ctx.pool, ex, lookup,
      [&ctx, ex, cache_status](std::optional<cache::Recorded> found, const std::string&, const std::string& dstr,
                               const oci::Digest& d) {
        if (!found) return fail(ex, oci::ErrorCode::BlobUnknown, {}, oci::Detail{{"digest", dstr}});
        answer_blob(ctx, ex, d, dstr, *found, cache_status);
      },
      r.name, digest->str(), *digest);
}

namespace {

// Answers a blob GET/HEAD once the index gave its record.
void answer_blob(Context& ctx, const http::ExchangePtr& ex, const oci::Digest& dg, const std::string& dstr,
                 const cache::Recorded& recorded, const char* cache_status) {
  const auto* digest = &dg;
  const std::optional<uint64_t> size = recorded.size;
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
    const auto policy = ctx.cfg.redirect_disabled ? cache::RedirectPolicy::Never : cache::RedirectPolicy::Allow;
    auto plan = ctx.store.read(*digest, recorded, first, length, policy);
    if (!plan) return fail(ex, oci::ErrorCode::Unavailable, "cannot read blob " + dstr + ": " + plan.error());
    if (!*plan) return fail(ex, oci::ErrorCode::BlobUnknown, "blob data missing from the store", oci::Detail{{"digest", dstr}});
    if (std::holds_alternative<std::unique_ptr<cache::ByteStream>>(**plan)) res.content_length = length;
    return serve_plan(ex, std::move(res), std::move(**plan), dstr);
  }
  if (!cached && ctx.store.reads_block()) {  // an object store: fetch on a worker, then answer from memory
    if (!ctx.store.stat_recorded(*digest, recorded))
      return fail(ex, oci::ErrorCode::BlobUnknown, "blob data missing from the store", oci::Detail{{"digest", dstr}});
    auto bytes = std::make_shared<std::optional<std::string>>();
    auto shared_res = std::make_shared<http::Response>(std::move(res));
    return ctx.pool.submit([&ctx, d = *digest, bytes] { *bytes = ctx.store.read_small(d, SmallCache::kMaxItem); },
                           [&ctx, ex, dstr, size = *size, first, length, bytes, shared_res] {
                             if (!*bytes || (*bytes)->size() != size)
                               return fail(ex, oci::ErrorCode::Unavailable, "cannot read blob " + dstr + " from the store");
                             shared_res->body.assign(**bytes, size_t(first), size_t(length));
                             ctx.small.put(dstr, std::move(**bytes));
                             ex->respond(std::move(*shared_res));
                           });
  }
  if (!cached) {
    auto bytes = ctx.store.read_small(*digest, SmallCache::kMaxItem);
    if (!bytes) {
      if (!ctx.store.stat_recorded(*digest, recorded))
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

}  // namespace

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
