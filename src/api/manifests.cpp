// GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>
#include <unistd.h>

#include <ctime>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cache/publish.hpp"
#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"
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

// A validated manifest waiting for its index check and write.
struct Publish {
  std::string body;
  oci::Digest digest;
  cache::ManifestRecord rec;
  std::shared_ptr<std::vector<std::string>> required;
  std::optional<std::string> tag;
  std::string subject;  // OCI-Subject header, or empty
};

void publish(Context& ctx, const http::ExchangePtr& ex, const std::string& repo, const std::shared_ptr<Publish>& p);

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
  auto required = std::make_shared<std::vector<std::string>>();  // re-checked inside the index write
  std::vector<bool> is_blob;  // per entry of *required: a blob (else a child manifest)
  auto need_blob = [&](const oci::Descriptor& d) {
    std::string ds = d.digest.str();
    rec.blobs.push_back(ds);
    if (d.media_type.find("foreign") != std::string::npos) return;  // Windows foreign layers live elsewhere
    required->push_back(ds);
    is_blob.push_back(true);
  };
  if (info->config) need_blob(*info->config);
  for (const auto& l : info->layers) need_blob(l);
  for (const auto& m : info->manifests) {
    std::string ds = m.digest.str();
    rec.children.push_back(ds);
    required->push_back(ds);
    is_blob.push_back(false);
  }
  auto check = [required, is_blob](const cache::Index& index, const std::string& repo) {
    std::vector<std::string> missing;
    auto txn = index.read();
    for (size_t i = 0; i < required->size(); ++i) {
      const std::string& ds = (*required)[i];
      if (is_blob[i] ? !index.blob_linked(txn, repo, ds) : !index.manifest_in_repo(txn, repo, ds)) missing.push_back(ds);
    }
    return missing;
  };
  auto pending = std::make_shared<Publish>(Publish{std::move(body), digest, std::move(rec), std::move(required),
                                                   by_digest ? std::nullopt : std::optional<std::string>(r.ref),
                                                   info->subject ? info->subject->digest.str() : std::string()});
  index_call(
      ctx.index, ctx.pool, ex, check,
      [&ctx, ex, pending](std::vector<std::string> missing, const std::string& repo) {
        if (!missing.empty()) {
          oci::Detail detail = missing.size() == 1 ? digest_detail(missing[0]) : oci::Detail().list("digests", missing);
          return fail(ex, oci::ErrorCode::ManifestBlobUnknown,
                      "manifest references " + std::to_string(missing.size()) + " unknown blob(s), first " + missing[0],
                      detail);
        }
        publish(ctx, ex, repo, pending);
      },
      r.name);
}

// Writes the checked manifest on a worker and answers 201.
void publish(Context& ctx, const http::ExchangePtr& ex, const std::string& repo, const std::shared_ptr<Publish>& p) {
  auto err = std::make_shared<std::string>();
  auto vanished = std::make_shared<std::optional<std::string>>();
  ctx.pool.submit(
      [&ctx, err, vanished, repo, p] {
        auto r = cache::publish_manifest_bytes(ctx.index, ctx.store, p->body,
                                               {{}, p->digest, repo, p->rec, p->tag, *p->required});
        if (!r) *err = r.error();
        else *vanished = *r;
      },
      [&ctx, ex, err, vanished, repo, p] {
        if (p->tag) ctx.tags.forget(repo, *p->tag);  // this front's next read sees the move without the notify
        if (!err->empty()) return fail(ex, oci::ErrorCode::Unavailable, *err);
        if (*vanished)  // removed by a garbage collection after the check above
          return fail(ex, oci::ErrorCode::ManifestBlobUnknown, "manifest references unknown blob " + **vanished,
                      digest_detail(**vanished));
        http::Response res(201);
        res.header("Location", "/v2/" + repo + "/manifests/" + p->digest.str());
        res.header("Docker-Content-Digest", p->digest.str());
        if (!p->subject.empty()) res.header("OCI-Subject", p->subject);
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

namespace {

// What a manifest GET learns from the index.
struct ManifestLookup {
  std::optional<cache::ManifestRecord> rec;
  bool repo_known = true;
};

void answer_manifest(Context& ctx, const http::ExchangePtr& ex, const Route& r, const char* cache_status,
                     const std::string& dstr, const ManifestLookup& found);

}  // namespace

void get_manifest(Context& ctx, const http::ExchangePtr& ex, const Route& r, const char* cache_status) {
  const bool by_digest = r.ref.find(':') != std::string::npos;
  std::string dstr;
  if (by_digest) {
    auto d = oci::parse_digest(r.ref);
    if (!d) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
    dstr = d->str();
  } else if (!oci::valid_tag(r.ref)) {
    return fail(ex, oci::ErrorCode::ManifestUnknown, "invalid tag '" + r.ref + "'", {}, 404);
  }
  // Yields the tag's digest (empty when asked by digest: the caller has it) and what the index holds.
  auto lookup = [by_digest](const cache::Index& index, const Route& r, const std::string& want) {
    std::pair<std::string, ManifestLookup> out;
    auto& [digest, found] = out;
    auto txn = index.read();
    if (by_digest) {
      if (index.manifest_in_repo(txn, r.name, want)) found.rec = index.manifest(txn, want);
    } else if (auto t = index.tag(txn, r.name, r.ref)) {
      digest = *t;
      found.rec = index.manifest(txn, digest);
    }
    if (!found.rec) found.repo_known = index.repo_exists(txn, r.name);
    return out;
  };
  // With a blocking index, a lookup the notifications keep fresh answers without a database call.
  const std::string& key = by_digest ? dstr : r.ref;
  if (const auto* hit = ctx.tags.get(r.name, key))
    return answer_manifest(ctx, ex, r, cache_status, hit->digest, ManifestLookup{.rec = hit->rec, .repo_known = true});
  const uint64_t seen = ctx.tags.generation();
  index_call(
      ctx.index, ctx.pool, ex, lookup,
      [&ctx, ex, cache_status, seen](std::pair<std::string, ManifestLookup> out, const Route& r,
                                     const std::string& want) {
        const std::string& digest = out.first.empty() ? want : out.first;
        if (out.second.rec && ctx.tags.enabled())
          ctx.tags.put(seen, r.name, out.first.empty() ? want : r.ref, TagCache::Entry{digest, *out.second.rec});
        answer_manifest(ctx, ex, r, cache_status, digest, out.second);
      },
      r, dstr);
}

namespace {

void answer_manifest(Context& ctx, const http::ExchangePtr& ex, const Route& r, const char* cache_status,
                     const std::string& dstr, const ManifestLookup& found) {
  const bool by_digest = r.ref.find(':') != std::string::npos;
  const auto& rec = found.rec;
  if (!rec) {
    if (!found.repo_known) return fail(ex, oci::ErrorCode::NameUnknown, {}, oci::Detail{{"name", r.name}});
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
  if (!ctx.store.stat_recorded(*d, cache::Recorded::of(*rec)))
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

}  // namespace

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
      [&ctx, ex, result, repo, ref, by_digest] {
        ctx.tags.forget(repo, by_digest ? std::string() : ref);  // a manifest leaves the whole repository
        if (!*result) return fail(ex, oci::ErrorCode::Unavailable, result->error());
        if (!**result) return fail(ex, oci::ErrorCode::ManifestUnknown);
        ex->respond(http::Response(202));
      });
}

}  // namespace wharf::api
