// Blob uploads: POST (session / monolithic / cross-repository mount), PATCH, PUT, GET status, DELETE.
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <spdlog/spdlog.h>

#include <chrono>

#include "cache/publish.hpp"
#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"
#include "src/api/respond.hpp"
#include "src/api/upload_sink.hpp"
#include "src/auth/throttle.hpp"
#include "src/oci/names.hpp"
#include "src/oci/range.hpp"

namespace wharf::api {

namespace {

std::string new_session_id() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(hex[b[i] >> 4]);
    s.push_back(hex[b[i] & 15]);
  }
  return s;
}

std::string upload_location(const std::string& repo, const std::string& id) {
  return "/v2/" + repo + "/blobs/uploads/" + id;
}

std::string range_value(uint64_t offset) { return "0-" + std::to_string(offset == 0 ? 0 : offset - 1); }

// The 202/204 answer that reports an upload's progress.
http::Response progress_response(int status, const UploadSession& s) {
  http::Response res(status);
  res.header("Location", upload_location(s.repo, s.id));
  res.header("Range", range_value(s.offset));
  res.header("Docker-Upload-UUID", s.id);
  res.header("Blob-Upload-Session-ID", s.id);
  return res;
}

void fail_range(const http::ExchangePtr& ex, const UploadSession& s, std::string message) {
  fail_upload_range(ex, s, std::move(message));
}

oci::Detail digest_detail(const std::string& d) { return oci::Detail{{"digest", d}}; }

// Finds a session in memory, or restores it from the index and the store after a restart (on a worker:
// a store may ask the network for the staged size), then runs `then` on the loop with it (nullptr if
// unknown). A session that ended in this process (see UploadTable::ended) is unknown, even while its
// record is still being deleted. When the index or the store cannot answer, the client gets 503
// UNAVAILABLE (never BLOB_UPLOAD_UNKNOWN: the session may well exist) and `then` is not called.
void find_session(Context& ctx, const http::ExchangePtr& ex, const std::string& id, const std::string& repo,
                  std::function<void(std::shared_ptr<UploadSession>)> then) {
  if (!valid_session_id(id) || ctx.uploads.ended(id)) return then(nullptr);
  if (auto s = ctx.uploads.find(id)) return then(s->repo == repo ? s : nullptr);
  struct Found {
    std::optional<cache::UploadRecord> rec;
    std::optional<uint64_t> size;
    std::string error;  // the index or the store failed
  };
  auto found = std::make_shared<Found>();
  ctx.pool.submit(
      [&ctx, found, id, repo] {
        try {
          auto txn = ctx.index.read();
          found->rec = ctx.index.upload(txn, id);
        } catch (const std::exception& e) {
          found->error = std::string("index unavailable: ").append(e.what());
          return;
        }
        if (!found->rec || found->rec->repo != repo) return;
        auto size = ctx.store.upload_size(id);
        if (size) found->size = *size;
        else if (size.error().kind == cache::StoreError::Kind::Failed) found->error = size.error().message;
      },
      [&ctx, ex, found, id, repo, then = std::move(then)] {
        if (auto s = ctx.uploads.find(id)) return then(s->repo == repo ? s : nullptr);  // restored meanwhile
        if (ctx.uploads.ended(id)) return then(nullptr);  // removed while the worker read its old record
        if (!found->error.empty()) return fail(ex, oci::ErrorCode::Unavailable, found->error);
        if (!found->rec || found->rec->repo != repo || !found->size) return then(nullptr);
        auto s = std::make_shared<UploadSession>();
        s->id = id;
        s->repo = repo;
        s->path = ctx.store.upload_key(id);
        s->offset = *found->size;
        s->started = found->rec->started;
        if (s->offset == 0) s->hasher.emplace();
        ctx.uploads.put(s);
        then(s);
      });
}

// A session nobody has written to for this long may be removed when its client (or everyone) is at the
// session cap, to make room for a new one; resuming it afterwards gets BLOB_UPLOAD_UNKNOWN.
constexpr std::chrono::seconds kEvictIdleAfter{15 * 60};

// Answers 429 TOOMANYREQUESTS and returns false if `client` may not open another upload session now.
bool admit_session(Context& ctx, const http::ExchangePtr& ex) {
  const std::string client = auth::client_key(ex->req().peer);
  std::string evicted;
  const int64_t idle_before = int64_t(time(nullptr)) - int64_t(kEvictIdleAfter.count());
  switch (ctx.uploads.admit(client, &evicted, idle_before)) {
    case UploadTable::Admit::Ok:
      if (!evicted.empty()) {
        spdlog::info("upload session {} unused for over {} min removed to make room for a new one from {}", evicted,
                     kEvictIdleAfter.count() / 60, client);
        ctx.pool.submit(
            [&ctx, evicted] {
              ctx.store.discard(ctx.store.upload_key(evicted));
              (void)ctx.index.delete_upload(evicted);
            },
            nullptr);
      }
      return true;
    case UploadTable::Admit::ClientFull:
      fail(ex, oci::ErrorCode::TooManyRequests,
           "too many open upload sessions from " + client + " (http.limits.uploadsperclient: " +
               std::to_string(ctx.cfg.max_uploads_per_client) + "); complete or cancel some first");
      return false;
    case UploadTable::Admit::TotalFull:
      fail(ex, oci::ErrorCode::TooManyRequests,
           "too many open upload sessions (http.limits.uploads: " + std::to_string(ctx.cfg.max_uploads) +
               "); retry later");
      return false;
  }
  return false;
}

// Checks a Content-Range header (if any) against the session's offset; answers 416 and returns false if off.
bool check_content_range(const http::ExchangePtr& ex, const UploadSession& s) {
  auto cr = ex->req().header("content-range");
  if (cr.empty()) return true;
  auto range = oci::parse_content_range(cr);
  if (!range) {
    fail_range(ex, s, "invalid Content-Range '" + std::string(cr) + "'");
    return false;
  }
  if (range->first != s.offset) {
    fail_range(ex, s, "chunk starts at " + std::to_string(range->first) + " but the upload is at " +
                          std::to_string(s.offset));
    return false;
  }
  // Without Content-Length (and not chunked) the body is empty: its length must match the range too.
  if (!ex->req().chunked && ex->req().content_length.value_or(0) != range->length()) {
    fail_range(ex, s, "Content-Range length does not match the body length");
    return false;
  }
  return true;
}

// Takes `staged` (what the store holds of the session now) as its offset. When it differs from the
// offset this front knew, bytes were added (or lost) elsewhere: the running digest no longer covers the
// data, so it is dropped and the PUT hashes what the store holds (BlobBackend::hash_staged).
void adopt_offset(UploadSession& s, uint64_t staged) {
  if (staged == s.offset) return;
  spdlog::debug("upload {}: staged size {} differs from this front's offset {}; continuing from the store", s.id,
                staged, s.offset);
  s.offset = staged;
  s.hasher.reset();
}

using Done = std::function<void()>;

// How write_body reaches a session's staged data: a new Temp item (monolithic), or the upload's end.
enum class Open { CreateTemp, Resume };

// Opens a session's staged data for appending and streams the request body into it (upload_sink.hpp:
// written and hashed on the work pool); if it cannot be opened, runs `dropped` and answers 404
// BLOB_UPLOAD_UNKNOWN (it is gone) or 503 itself.
void write_body(Context& ctx, const http::ExchangePtr& ex, const std::shared_ptr<UploadSession>& s, Open how,
                Done done, Done dropped = nullptr) {
  using Opened = std::expected<std::unique_ptr<cache::BlobWriter>, cache::StoreError>;
  auto start = [&ctx, ex, s, how, done = std::move(done), dropped = std::move(dropped)](Opened writer) mutable {
    if (!writer) {
      s->set_busy(false);
      if (dropped) dropped();
      if (writer.error().kind == cache::StoreError::Kind::Missing) {
        if (how == Open::Resume) ctx.uploads.erase(s->id);  // completed or cancelled elsewhere
        return fail(ex, oci::ErrorCode::BlobUploadUnknown, "upload data missing");
      }
      return fail(ex, oci::ErrorCode::Unavailable, writer.error().message);
    }
    if (how == Open::CreateTemp) {
      s->path = (*writer)->key();
      s->store = &ctx.store;
    } else {
      // The staged data is the truth: another front (or process) may have continued the session.
      adopt_offset(*s, (*writer)->size());
      if (!check_content_range(ex, *s)) return s->set_busy(false);
    }
    s->set_busy(true);
    ex->read_body(make_upload_sink(ctx.pool, ex, s, std::move(*writer), std::move(done), std::move(dropped)));
  };
  if (how == Open::CreateTemp) return start(ctx.store.begin_write(cache::StageArea::Temp, "upload"));
  // Resuming may ask the store's network (the session's state lives in the bucket): on a worker.
  s->set_busy(true);
  auto opened = std::make_shared<Opened>(std::unexpected(cache::StoreError{}));
  ctx.pool.submit([&ctx, s, opened] { *opened = ctx.store.resume_write(s->id); },
                  [opened, start = std::move(start)]() mutable { start(std::move(*opened)); });
}

struct FinishResult {
  enum class Kind { Ok, Mismatch, Error } kind = Kind::Ok;
  std::string message;
  uint64_t size = 0;
};

// Verifies the digest, publishes the data file into the store and links the blob: one worker job.
void finish_upload(Context& ctx, const http::ExchangePtr& ex, std::shared_ptr<UploadSession> s, oci::Digest want) {
  s->set_busy(true);
  std::optional<oci::Digest> computed;
  if (s->hasher && s->hasher->algo() == want.algo) computed = s->hasher->finish();
  s->hasher.reset();
  const bool recorded = s->kind == UploadSession::Kind::Resumable;
  auto path = s->path;
  auto result = std::make_shared<FinishResult>();
  result->size = s->offset;
  ctx.pool.submit(
      [&ctx, s, want, computed, path, recorded, result] {
        oci::Digest got;
        if (computed) {
          got = *computed;
        } else {
          auto hashed = ctx.store.hash_staged(path, want.algo);
          if (!hashed) {
            result->kind = FinishResult::Kind::Error;
            result->message = hashed.error().kind == cache::StoreError::Kind::Missing ? "upload data missing"
                                                                                      : hashed.error().message;
            return;
          }
          got = hashed->first;
          result->size = hashed->second;
        }
        if (!(got == want)) {
          result->kind = FinishResult::Kind::Mismatch;
          result->message = "content digest " + got.str() + " does not match " + want.str();
          ctx.store.discard(path);
          if (recorded) (void)ctx.index.delete_upload(s->id);
          return;
        }
        auto pub = cache::publish_blobs(ctx.index, ctx.store, {{path, want, s->repo, result->size, cache::Origin::Pushed}});
        if (!pub[0].empty()) {
          result->kind = FinishResult::Kind::Error;
          result->message = pub[0];
          if (!recorded) ctx.store.discard(path);  // a monolithic push is sent again whole
          return;
        }
        if (recorded) (void)ctx.index.delete_upload(s->id);
      },
      [&ctx, ex, s, want, result] {
        ctx.uploads.erase(s->id);
        s->set_busy(false);
        switch (result->kind) {
          case FinishResult::Kind::Mismatch:
            return fail(ex, oci::ErrorCode::DigestInvalid, result->message, digest_detail(want.str()));
          case FinishResult::Kind::Error:
            return fail(ex, oci::ErrorCode::Unavailable, result->message);
          case FinishResult::Kind::Ok: {
            http::Response res(201);
            res.header("Location", "/v2/" + s->repo + "/blobs/" + want.str());
            res.header("Docker-Content-Digest", want.str());
            return ex->respond(std::move(res));
          }
        }
      });
}

// Creates a new session: data file plus a durable index record, then answers 202. The session holds
// its client's slot from now on; if the client is gone before it learns the session, it is removed.
void open_session(Context& ctx, const http::ExchangePtr& ex, const std::string& repo) {
  if (!admit_session(ctx, ex)) return;
  auto s = std::make_shared<UploadSession>();
  s->id = new_session_id();
  s->repo = repo;
  s->client = auth::client_key(ex->req().peer);
  s->path = ctx.store.upload_key(s->id);
  s->started = time(nullptr);
  s->hasher.emplace();
  s->set_busy(true);
  ctx.uploads.put(s);
  auto err = std::make_shared<std::string>();
  ctx.pool.submit(
      [&ctx, s, err] {
        if (auto w = ctx.store.begin_write(cache::StageArea::Upload, s->id); !w) {
          *err = w.error().message;
          return;
        }
        auto rec = ctx.index.put_upload(s->id, cache::UploadRecord{s->repo, s->started});
        if (!rec) {
          *err = rec.error();
          ctx.store.discard(s->path);
        }
      },
      [&ctx, ex, s, err] {
        s->set_busy(false);
        if (!err->empty()) {
          ctx.uploads.erase(s->id);
          return fail(ex, oci::ErrorCode::Unavailable, *err);
        }
        if (!ex->alive()) {  // nobody knows this session: drop it now rather than at the purge
          ctx.uploads.erase(s->id);
          ctx.pool.submit(
              [&ctx, s] {
                ctx.store.discard(s->path);
                (void)ctx.index.delete_upload(s->id);
              },
              nullptr);
          return;
        }
        ex->respond(progress_response(202, *s));
      });
}

}  // namespace

namespace {

// A cross-repository mount once the index gave the blob's record (nullopt: not linked in either
// repository): links it on a worker and answers 201, or opens a normal upload session (202).
void mount_blob(Context& ctx, const http::ExchangePtr& ex, const std::string& repo, const oci::Digest& digest,
                const std::string& dstr, const std::optional<cache::BlobRecord>& rec) {
  if (!rec || !ctx.store.stat_recorded(digest, cache::Recorded::of(*rec))) return open_session(ctx, ex, repo);
  auto err = std::make_shared<std::string>();
  uint64_t size = rec->size;
  auto origin = rec->origin;
  ctx.pool.submit(
      [&ctx, err, repo, dstr, size, origin] {
        auto res = ctx.index.link_blob(repo, dstr, size, origin);
        if (!res) *err = res.error();
      },
      [ex, err, repo, dstr] {
        if (!err->empty()) return fail(ex, oci::ErrorCode::Unavailable, *err);
        http::Response res(201);
        res.header("Location", "/v2/" + repo + "/blobs/" + dstr);
        res.header("Docker-Content-Digest", dstr);
        ex->respond(std::move(res));
      });
}

}  // namespace

void start_upload(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  const auto& req = ex->req();
  // Cross-repository mount.
  if (auto mount = req.query_param("mount")) {
    auto from = req.query_param("from");
    auto digest = oci::parse_digest(*mount);
    if (digest && from && oci::valid_repo_name(*from)) {
      auto read = [](const cache::Index& index, const std::string& source, const std::string& repo,
                     const std::string& dstr) -> std::optional<cache::BlobRecord> {
        auto txn = index.read();
        if (index.blob_linked(txn, source, dstr) || index.blob_linked(txn, repo, dstr)) return index.blob(txn, dstr);
        return std::nullopt;
      };
      return index_call(
          ctx.index, ctx.pool, ex, read,
          [&ctx, ex, digest = *digest](std::optional<cache::BlobRecord> rec, const std::string&, const std::string& repo,
                                       const std::string& dstr) { mount_blob(ctx, ex, repo, digest, dstr, rec); },
          std::string(*from), r.name, digest->str());
    }
    // Not mountable: fall back to a normal upload session (202).
    return open_session(ctx, ex, r.name);
  }
  // Monolithic upload: POST ?digest= with the whole blob as the body.
  if (auto d = req.query_param("digest")) {
    auto digest = oci::parse_digest(*d);
    if (!digest) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + *d + "'");
    if (!admit_session(ctx, ex)) return;
    auto s = std::make_shared<UploadSession>();
    s->id = new_session_id();
    s->repo = r.name;
    s->client = auth::client_key(req.peer);
    s->kind = UploadSession::Kind::Monolithic;
    s->started = time(nullptr);
    s->hasher.emplace(digest->algo);
    ctx.uploads.put(s);
    oci::Digest want = *digest;
    // An aborted body frees the slot; the last reference to the session then removes its file.
    write_body(ctx, ex, s, Open::CreateTemp, [&ctx, ex, s, want] { finish_upload(ctx, ex, s, want); },
               [&ctx, id = s->id] { ctx.uploads.erase(id); });
    return;
  }
  open_session(ctx, ex, r.name);
}

void patch_upload(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  find_session(ctx, ex, r.ref, r.name, [&ctx, ex](std::shared_ptr<UploadSession> s) {
    if (!s) return fail(ex, oci::ErrorCode::BlobUploadUnknown);
    if (s->busy) return fail_range(ex, *s, "another request is writing this upload");
    write_body(ctx, ex, s, Open::Resume, [ex, s] {
      s->set_busy(false);
      ex->respond(progress_response(202, *s));
    });
  });
}

void put_upload(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  find_session(ctx, ex, r.ref, r.name, [&ctx, ex](std::shared_ptr<UploadSession> s) {
    if (!s) return fail(ex, oci::ErrorCode::BlobUploadUnknown);
    if (s->busy) return fail_range(ex, *s, "another request is writing this upload");
    auto d = ex->req().query_param("digest");
    if (!d) return fail(ex, oci::ErrorCode::DigestInvalid, "the digest query parameter is required");
    auto digest = oci::parse_digest(*d);
    if (!digest) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + *d + "'");
    oci::Digest want = *digest;
    write_body(ctx, ex, s, Open::Resume, [&ctx, ex, s, want] { finish_upload(ctx, ex, s, want); });
  });
}

void upload_status(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  find_session(ctx, ex, r.ref, r.name, [&ctx, ex](std::shared_ptr<UploadSession> s) {
    if (!s) return fail(ex, oci::ErrorCode::BlobUploadUnknown);
    if (s->busy) return ex->respond(progress_response(204, *s));  // this front is writing: its offset is current
    // Another front may have continued the session: report what the store holds (on a worker: S3 asks the network).
    auto staged = std::make_shared<std::expected<uint64_t, cache::StoreError>>(0);
    ctx.pool.submit([&ctx, s, staged] { *staged = ctx.store.upload_size(s->id); },
                    [&ctx, ex, s, staged] {
                      if (!*staged && staged->error().kind == cache::StoreError::Kind::Failed)
                        return fail(ex, oci::ErrorCode::Unavailable, staged->error().message);
                      if (!*staged) {
                        if (!s->busy) ctx.uploads.erase(s->id);
                        return fail(ex, oci::ErrorCode::BlobUploadUnknown);
                      }
                      if (!s->busy) adopt_offset(*s, **staged);
                      ex->respond(progress_response(204, *s));
                    });
  });
}

void cancel_upload(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  find_session(ctx, ex, r.ref, r.name, [&ctx, ex](std::shared_ptr<UploadSession> s) {
    if (!s) return fail(ex, oci::ErrorCode::BlobUploadUnknown);
    if (s->busy) return fail(ex, oci::ErrorCode::BlobUploadInvalid, "the upload is in use");
    ctx.uploads.erase(s->id);
    std::string id = s->id;
    ctx.pool.submit(
        [&ctx, id] {
          ctx.store.discard(ctx.store.upload_key(id));
          (void)ctx.index.delete_upload(id);
        },
        [ex] { ex->respond(http::Response(204)); });
  });
}

}  // namespace wharf::api
