// Blob uploads: POST (session / monolithic / cross-repository mount), PATCH, PUT, GET status, DELETE.
#include <dirent.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "cache/publish.hpp"
#include "src/api/handlers.hpp"
#include "src/api/respond.hpp"
#include "src/oci/names.hpp"
#include "src/oci/range.hpp"

namespace wharf::api {

UploadSession::~UploadSession() {
  if (fd >= 0) ::close(fd);
}

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
  auto res = error_response(oci::ErrorCode::RangeInvalid, std::move(message), {}, 416);
  res.header("Location", upload_location(s.repo, s.id));
  res.header("Range", range_value(s.offset));
  res.header("Docker-Upload-UUID", s.id);
  ex->respond(std::move(res));
}

std::string digest_detail(const std::string& d) { return R"({"digest":")" + d + "\"}"; }

// Finds a session in memory, or restores it from the index after a restart. nullptr if unknown.
std::shared_ptr<UploadSession> find_session(Context& ctx, const std::string& id, const std::string& repo) {
  if (!valid_session_id(id)) return nullptr;
  auto s = ctx.uploads.find(id);
  if (s) return s->repo == repo ? s : nullptr;
  std::optional<cache::UploadRecord> rec;
  {
    auto txn = ctx.index.read();
    rec = ctx.index.upload(txn, id);
  }
  if (!rec || rec->repo != repo) return nullptr;
  int fd = ::open(ctx.store.upload_path(id).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat st{};
  fstat(fd, &st);
  s = std::make_shared<UploadSession>();
  s->id = id;
  s->repo = repo;
  s->fd = fd;
  s->offset = uint64_t(st.st_size);
  s->started = rec->started;
  if (s->offset == 0) s->hasher.emplace();
  ctx.uploads.put(s);
  return s;
}

// Appends request body bytes to a session's data file, hashing them as they arrive.
class UploadSink : public http::BodySink {
 public:
  using Done = std::function<void()>;
  UploadSink(http::ExchangePtr ex, std::shared_ptr<UploadSession> s, Done done)
      : ex_(std::move(ex)), s_(std::move(s)), done_(std::move(done)) {}
  ~UploadSink() override {
    if (!finished_) s_->busy = false;
  }
  bool on_data(const char* p, size_t n) override {
    const char* cur = p;
    size_t left = n;
    while (left > 0) {
      ssize_t w = ::write(s_->fd, cur, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        // Roll back to the last complete write so the offset stays truthful.
        fail(ex_, oci::ErrorCode::Unavailable, std::string("cannot store upload data: ") + std::strerror(errno));
        s_->hasher.reset();
        struct stat st{};
        if (fstat(s_->fd, &st) == 0) s_->offset = uint64_t(st.st_size);
        return false;
      }
      cur += w;
      left -= size_t(w);
    }
    if (s_->hasher) s_->hasher->update(p, n);
    s_->offset += n;
    return true;
  }
  void on_end() override {
    finished_ = true;
    done_();
  }
  void on_abort() override {}

 private:
  http::ExchangePtr ex_;
  std::shared_ptr<UploadSession> s_;
  Done done_;
  bool finished_ = false;
};

struct FinishResult {
  enum class Kind { Ok, Mismatch, Error } kind = Kind::Ok;
  std::string message;
  uint64_t size = 0;
};

// Verifies the digest, publishes the data file into the store and links the blob: one worker job.
void finish_upload(Context& ctx, const http::ExchangePtr& ex, std::shared_ptr<UploadSession> s, oci::Digest want,
                   bool recorded) {
  s->busy = true;
  std::optional<oci::Digest> computed;
  if (s->hasher && s->hasher->algo() == want.algo) computed = s->hasher->finish();
  s->hasher.reset();
  if (s->fd >= 0) {
    ::close(s->fd);
    s->fd = -1;
  }
  auto path = recorded ? ctx.store.upload_path(s->id) : ctx.store.tmp_dir() / ("upload-" + s->id);
  auto result = std::make_shared<FinishResult>();
  result->size = s->offset;
  ctx.pool.submit(
      [&ctx, s, want, computed, path, recorded, result] {
        oci::Digest got;
        if (computed) {
          got = *computed;
        } else {
          int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) {
            result->kind = FinishResult::Kind::Error;
            result->message = "upload data missing";
            return;
          }
          oci::Hasher h(want.algo);
          std::vector<char> buf(1 << 20);
          uint64_t total = 0;
          for (;;) {
            ssize_t n = ::read(fd, buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            h.update(buf.data(), size_t(n));
            total += uint64_t(n);
          }
          ::close(fd);
          got = h.finish();
          result->size = total;
        }
        if (!(got == want)) {
          result->kind = FinishResult::Kind::Mismatch;
          result->message = "content digest " + got.str() + " does not match " + want.str();
          std::error_code ec;
          std::filesystem::remove(path, ec);
          if (recorded) (void)ctx.index.delete_upload(s->id);
          return;
        }
        auto pub = cache::publish_blobs(ctx.index, ctx.store, {{path, want, s->repo, result->size, cache::Origin::Pushed}});
        if (!pub[0].empty()) {
          result->kind = FinishResult::Kind::Error;
          result->message = pub[0];
          return;
        }
        if (recorded) (void)ctx.index.delete_upload(s->id);
      },
      [&ctx, ex, s, want, result] {
        ctx.uploads.erase(s->id);
        s->busy = false;
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
  auto len = ex->req().content_length;
  if (len && *len != range->length()) {
    fail_range(ex, s, "Content-Range length does not match Content-Length");
    return false;
  }
  return true;
}

// Creates a new session: data file plus a durable index record, then answers 202.
void open_session(Context& ctx, const http::ExchangePtr& ex, const std::string& repo) {
  auto s = std::make_shared<UploadSession>();
  s->id = new_session_id();
  s->repo = repo;
  s->started = time(nullptr);
  s->hasher.emplace();
  s->busy = true;
  auto err = std::make_shared<std::string>();
  ctx.pool.submit(
      [&ctx, s, err] {
        int fd = ::open(ctx.store.upload_path(s->id).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
          *err = std::string("cannot create upload file: ") + std::strerror(errno);
          return;
        }
        s->fd = fd;
        auto rec = ctx.index.put_upload(s->id, cache::UploadRecord{s->repo, s->started});
        if (!rec) *err = rec.error();
      },
      [&ctx, ex, s, err] {
        s->busy = false;
        if (!err->empty()) return fail(ex, oci::ErrorCode::Unavailable, *err);
        ctx.uploads.put(s);
        ex->respond(progress_response(202, *s));
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
      std::optional<cache::BlobRecord> rec;
      {
        auto txn = ctx.index.read();
        if (ctx.index.blob_linked(txn, *from, digest->str()) || ctx.index.blob_linked(txn, r.name, digest->str()))
          rec = ctx.index.blob(txn, digest->str());
      }
      if (rec && ctx.store.stat(*digest)) {
        auto err = std::make_shared<std::string>();
        std::string repo = r.name, dstr = digest->str();
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
        return;
      }
    }
    // Not mountable: fall back to a normal upload session (202).
    return open_session(ctx, ex, r.name);
  }
  // Monolithic upload: POST ?digest= with the whole blob as the body.
  if (auto d = req.query_param("digest")) {
    auto digest = oci::parse_digest(*d);
    if (!digest) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + *d + "'");
    auto s = std::make_shared<UploadSession>();
    s->id = new_session_id();
    s->repo = r.name;
    s->started = time(nullptr);
    s->hasher.emplace(digest->algo);
    auto path = ctx.store.tmp_dir() / ("upload-" + s->id);
    s->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (s->fd < 0) return fail(ex, oci::ErrorCode::Unavailable, std::string("cannot create upload file: ") + std::strerror(errno));
    s->busy = true;
    oci::Digest want = *digest;
    ex->read_body(std::make_unique<UploadSink>(ex, s, [&ctx, ex, s, want] { finish_upload(ctx, ex, s, want, false); }));
    return;
  }
  open_session(ctx, ex, r.name);
}

void patch_upload(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  auto s = find_session(ctx, r.ref, r.name);
  if (!s) return fail(ex, oci::ErrorCode::BlobUploadUnknown);
  if (s->busy) return fail_range(ex, *s, "another request is writing this upload");
  if (!check_content_range(ex, *s)) return;
  s->busy = true;
  ex->read_body(std::make_unique<UploadSink>(ex, s, [ex, s] {
    s->busy = false;
    ex->respond(progress_response(202, *s));
  }));
}

void put_upload(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  auto s = find_session(ctx, r.ref, r.name);
  if (!s) return fail(ex, oci::ErrorCode::BlobUploadUnknown);
  if (s->busy) return fail_range(ex, *s, "another request is writing this upload");
  auto d = ex->req().query_param("digest");
  if (!d) return fail(ex, oci::ErrorCode::DigestInvalid, "the digest query parameter is required");
  auto digest = oci::parse_digest(*d);
  if (!digest) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + *d + "'");
  if (!check_content_range(ex, *s)) return;
  s->busy = true;
  oci::Digest want = *digest;
  ex->read_body(std::make_unique<UploadSink>(ex, s, [&ctx, ex, s, want] { finish_upload(ctx, ex, s, want, true); }));
}

void upload_status(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  auto s = find_session(ctx, r.ref, r.name);
  if (!s) return fail(ex, oci::ErrorCode::BlobUploadUnknown);
  ex->respond(progress_response(204, *s));
}

void cancel_upload(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  auto s = find_session(ctx, r.ref, r.name);
  if (!s) return fail(ex, oci::ErrorCode::BlobUploadUnknown);
  if (s->busy) return fail(ex, oci::ErrorCode::BlobUploadInvalid, "the upload is in use");
  ctx.uploads.erase(s->id);
  std::string id = s->id;
  ctx.pool.submit(
      [&ctx, id] {
        std::error_code ec;
        std::filesystem::remove(ctx.store.upload_path(id), ec);
        (void)ctx.index.delete_upload(id);
      },
      [ex] { ex->respond(http::Response(204)); });
}

void purge_uploads(Context& ctx) {
  const int64_t cutoff = int64_t(time(nullptr)) - int64_t(ctx.cfg.upload_purge_age.count());
  std::vector<std::string> stale;
  {
    auto txn = ctx.index.read();
    for (auto& [id, rec] : ctx.index.uploads(txn)) {
      auto s = ctx.uploads.find(id);
      if (rec.started < cutoff && !(s && s->busy)) stale.push_back(id);
    }
  }
  if (ctx.cfg.upload_purge_dry_run) {
    for (const auto& id : stale) spdlog::info("upload purging (dry run): would remove session {}", id);
    return;
  }
  for (const auto& id : stale) ctx.uploads.erase(id);
  ctx.pool.submit(
      [&ctx, stale, cutoff] {
        for (const auto& id : stale) {
          std::error_code ec;
          std::filesystem::remove(ctx.store.upload_path(id), ec);
          (void)ctx.index.delete_upload(id);
        }
        // Data files with no session record (a crash between file creation and the record).
        std::error_code ec;
        auto dir = ctx.store.upload_path("x").parent_path();
        for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
             it.increment(ec)) {
          auto name = it->path().filename().string();
          auto txn = ctx.index.read();
          if (ctx.index.upload(txn, name)) continue;
          struct stat st{};
          if (::stat(it->path().c_str(), &st) == 0 && st.st_mtime < cutoff) std::filesystem::remove(it->path(), ec);
        }
        if (!stale.empty()) spdlog::info("purged {} abandoned upload sessions", stale.size());
      },
      nullptr);
}

}  // namespace wharf::api
