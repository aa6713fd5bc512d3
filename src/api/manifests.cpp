// GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>
#include <unistd.h>

#include <ctime>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cache/publish.hpp"
#include "src/api/handlers.hpp"
#include "src/api/respond.hpp"
#include "src/oci/digest.hpp"
#include "src/oci/manifest.hpp"
#include "src/oci/names.hpp"

namespace wharf::api {

namespace {

oci::Detail digest_detail(const std::string& d) { return oci::Detail{{"digest", d}}; }

// Buffers a manifest body up to the size limit; answers 413 past it.
class ManifestSink : public http::BodySink {
 public:
  using Done = std::function<void(std::string)>;
  ManifestSink(http::ExchangePtr ex, Done done) : ex_(std::move(ex)), done_(std::move(done)) {}
  bool on_data(const char* p, size_t n) override {
    if (body_.size() + n > oci::kMaxManifestBytes) {
      fail(ex_, oci::ErrorCode::SizeInvalid,
           "manifest exceeds the limit of " + std::to_string(oci::kMaxManifestBytes) + " bytes", {}, 413);
      return false;
    }
    body_.append(p, n);
    return true;
  }
  void on_end() override { done_(std::move(body_)); }

 private:
  http::ExchangePtr ex_;
  Done done_;
  std::string body_;
};

using Validated = std::expected<oci::ManifestInfo, oci::Error>;

// Bodies larger than this are validated on the work pool (a 4 MiB manifest takes tens of ms).
constexpr size_t kInlineManifestBytes = 64 * 1024;

void store_validated(Context& ctx, const http::ExchangePtr& ex, const Route& r, std::string body, Validated info) {
  if (!info) return fail(ex, info.error().code, info.error().message, info.error().detail);

  const bool by_digest = r.ref.find(':') != std::string::npos;
  oci::Digest digest;
  if (by_digest) {
    auto want = oci::parse_digest(r.ref);
    if (!want) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
    digest = oci::digest_of(body, want->algo);
    if (!(digest == *want))
      return fail(ex, oci::ErrorCode::DigestInvalid,
                  "manifest digest " + digest.str() + " does not match the reference " + want->str(),
                  digest_detail(want->str()));
  } else {
    digest = oci::digest_of(body);
  }

  cache::ManifestRecord rec;
  rec.media_type = info->media_type;
  rec.size = body.size();
  rec.origin = cache::Origin::Pushed;
  rec.created = time(nullptr);
  rec.artifact_type = info->artifact_type;
  rec.annotations_json = info->annotations_json;
  if (info->subject) rec.subject = info->subject->digest.str();
  // Every referenced blob and child manifest must already be in this repository.
  nlohmann::json missing = nlohmann::json::array();
  auto required = std::make_shared<std::vector<std::string>>();  // re-checked inside the index write
  {
    auto txn = ctx.index.read();
    auto need_blob = [&](const oci::Descriptor& d) {
      std::string ds = d.digest.str();
      rec.blobs.push_back(ds);
      if (d.media_type.find("foreign") != std::string::npos) return;  // Windows foreign layers live elsewhere
      required->push_back(ds);
      if (!ctx.index.blob_linked(txn, r.name, ds)) missing.push_back(ds);
    };
    if (info->config) need_blob(*info->config);
    for (const auto& l : info->layers) need_blob(l);
    for (const auto& m : info->manifests) {
      std::string ds = m.digest.str();
      rec.children.push_back(ds);
      required->push_back(ds);
      if (!ctx.index.manifest_in_repo(txn, r.name, ds)) missing.push_back(ds);
    }
  }
  if (!missing.empty()) {
    oci::Detail detail = missing.size() == 1 ? digest_detail(missing[0].get<std::string>())
                                             : oci::Detail().list("digests", missing.get<std::vector<std::string>>());
    return fail(ex, oci::ErrorCode::ManifestBlobUnknown,
                "manifest references " + std::to_string(missing.size()) + " unknown blob(s), first " +
                    missing[0].get<std::string>(),
                detail);
  }

  auto err = std::make_shared<std::string>();
  auto vanished = std::make_shared<std::optional<std::string>>();
  std::optional<std::string> tag;
  if (!by_digest) tag = r.ref;
  std::string repo = r.name;
  auto shared_body = std::make_shared<std::string>(std::move(body));
  ctx.pool.submit(
      [&ctx, err, vanished, required, repo, digest, rec = std::move(rec), tag, shared_body] {
        auto p = cache::publish_manifest_bytes(ctx.index, ctx.store, *shared_body, {{}, digest, repo, rec, tag, *required});
        if (!p) *err = p.error();
        else *vanished = *p;
      },
      [ex, err, vanished, repo, digest, subject = info->subject] {
        if (!err->empty()) return fail(ex, oci::ErrorCode::Unavailable, *err);
        if (*vanished)  // removed by a garbage collection after the check above
          return fail(ex, oci::ErrorCode::ManifestBlobUnknown, "manifest references unknown blob " + **vanished,
                      digest_detail(**vanished));
        http::Response res(201);
        res.header("Location", "/v2/" + repo + "/manifests/" + digest.str());
        res.header("Docker-Content-Digest", digest.str());
        if (subject) res.header("OCI-Subject", subject->digest.str());
        ex->respond(std::move(res));
      });
}

// Validates the body (on the work pool when large, so the loop never stalls on it), then stores it.
void store_manifest(Context& ctx, const http::ExchangePtr& ex, const Route& r, std::string body) {
  auto content_type = std::string(ex->req().header("content-type"));
  if (body.size() <= kInlineManifestBytes) {
    auto info = oci::parse_manifest(body, content_type);
    return store_validated(ctx, ex, r, std::move(body), std::move(info));
  }
  auto shared = std::make_shared<std::string>(std::move(body));
  auto info = std::make_shared<std::optional<Validated>>();
  ctx.pool.submit([shared, info, content_type] { info->emplace(oci::parse_manifest(*shared, content_type)); },
                  [&ctx, ex, r, shared, info] {
                    if (!*info) return fail(ex, oci::ErrorCode::Unavailable, "manifest validation failed");
                    store_validated(ctx, ex, r, std::move(*shared), std::move(**info));
                  });
}

}  // namespace

void get_manifest(Context& ctx, const http::ExchangePtr& ex, const Route& r, const char* cache_status) {
  const bool by_digest = r.ref.find(':') != std::string::npos;
  std::string dstr;
  std::optional<cache::ManifestRecord> rec;
  bool repo_known = true;
  {
    auto txn = ctx.index.read();
    if (by_digest) {
      auto d = oci::parse_digest(r.ref);
      if (!d) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
      dstr = d->str();
      if (ctx.index.manifest_in_repo(txn, r.name, dstr)) rec = ctx.index.manifest(txn, dstr);
    } else {
      if (!oci::valid_tag(r.ref)) return fail(ex, oci::ErrorCode::ManifestUnknown, "invalid tag '" + r.ref + "'", {}, 404);
      if (auto t = ctx.index.tag(txn, r.name, r.ref)) {
        dstr = *t;
        rec = ctx.index.manifest(txn, dstr);
      }
    }
    if (!rec) repo_known = ctx.index.repo_exists(txn, r.name);
  }
  if (!rec) {
    if (!repo_known) return fail(ex, oci::ErrorCode::NameUnknown, {}, oci::Detail{{"name", r.name}});
    return fail(ex, oci::ErrorCode::ManifestUnknown, {}, by_digest ? digest_detail(dstr) : oci::Detail{{"tag", r.ref}});
  }
  http::Response res(200);
  res.cache_status = cache_status;
  res.header("Content-Type", rec->media_type);
  res.header("Docker-Content-Digest", dstr);
  res.header("ETag", "\"" + dstr + "\"");
  ctx.access.touch(dstr, time(nullptr));
  if (ex->req().method == "HEAD") {
    res.content_length = rec->size;
    return ex->respond(std::move(res));
  }
  auto d = oci::parse_digest(dstr);
  if (!d) return fail(ex, oci::ErrorCode::ManifestUnknown, "manifest data missing from the store", digest_detail(dstr));
  if (auto cached = ctx.small.get(dstr); cached && oci::digest_of(*cached, d->algo) == *d) {
    res.body = *cached;
    return ex->respond(std::move(res));
  }
  if (!ctx.store.stat(*d))
    return fail(ex, oci::ErrorCode::ManifestUnknown, "manifest data missing from the store", digest_detail(dstr));
  auto answer = [&ctx, ex, dstr, d = *d](http::Response res, std::optional<std::string> bytes) {
    if (!bytes) return fail(ex, oci::ErrorCode::Unavailable, "cannot read manifest " + dstr);
    // Never serve bytes under a digest they do not have: a damaged file is a storage failure.
    if (auto got = oci::digest_of(*bytes, d.algo); !(got == d)) {
      spdlog::error("stored manifest {} is damaged: its {} bytes hash to {} (run wharf check --repair)", dstr,
                    bytes->size(), got.str());
      return fail(ex, oci::ErrorCode::Unavailable, "stored manifest " + dstr + " is damaged", digest_detail(dstr));
    }
    ctx.small.put(dstr, *bytes);
    res.body = std::move(*bytes);
    ex->respond(std::move(res));
  };
  if (rec->size <= SmallCache::kMaxItem && !ctx.store.reads_block()) {  // small, local: read and hash on the loop
    return answer(std::move(res), ctx.store.read_small(*d, rec->size));
  }
  auto bytes = std::make_shared<std::optional<std::string>>();
  const uint64_t size = rec->size;
  auto shared_res = std::make_shared<http::Response>(std::move(res));
  ctx.pool.submit(
      [&ctx, d = *d, size, bytes] { *bytes = ctx.store.read_small(d, size); },
      [answer, shared_res, bytes] { answer(std::move(*shared_res), std::move(*bytes)); });
}

void put_manifest(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  const bool by_digest = r.ref.find(':') != std::string::npos;
  if (!by_digest && !oci::valid_tag(r.ref))
    return fail(ex, oci::ErrorCode::ManifestInvalid, "invalid tag '" + r.ref + "'", oci::Detail{{"tag", r.ref}});
  if (by_digest && !oci::parse_digest(r.ref)) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
  if (auto len = ex->req().content_length; len && *len > oci::kMaxManifestBytes)
    return fail(ex, oci::ErrorCode::SizeInvalid,
                "manifest exceeds the limit of " + std::to_string(oci::kMaxManifestBytes) + " bytes", {}, 413);
  Route route = r;
  ex->read_body(std::make_unique<ManifestSink>(ex, [&ctx, ex, route](std::string body) {
    store_manifest(ctx, ex, route, std::move(body));
  }));
}

void delete_manifest(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  if (!ctx.cfg.delete_enabled) return fail(ex, oci::ErrorCode::Unsupported, "deletion is disabled (storage.delete.enabled)");
  const bool by_digest = r.ref.find(':') != std::string::npos;
  std::string ref = r.ref;
  if (by_digest) {
    auto d = oci::parse_digest(r.ref);
    if (!d) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
    ref = d->str();
  } else if (!oci::valid_tag(r.ref)) {
    return fail(ex, oci::ErrorCode::ManifestUnknown, "invalid tag '" + r.ref + "'", {}, 404);
  }
  auto result = std::make_shared<std::expected<bool, std::string>>(false);
  std::string repo = r.name;
  ctx.pool.submit(
      [&ctx, result, repo, ref, by_digest] {
        *result = by_digest ? ctx.index.delete_manifest(repo, ref) : ctx.index.delete_tag(repo, ref);
      },
      [ex, result] {
        if (!*result) return fail(ex, oci::ErrorCode::Unavailable, result->error());
        if (!**result) return fail(ex, oci::ErrorCode::ManifestUnknown);
        ex->respond(http::Response(202));
      });
}

}  // namespace wharf::api
