// PgIndex's write side: one transaction per write under the writer advisory lock, update() and the
// removals it offers. Each statement mirrors the LMDB index's (cache/index_write.cpp).
#include <chrono>
#include <map>
#include <utility>

#include "cache/pg/pg_index.hpp"
#include "cache/pg/pg_rows.hpp"
#include "cache/pg/pg_schema.hpp"

namespace wharf::cache {

using pg::exec;
using namespace pg::rows;

namespace {

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string num(int64_t v) { return std::to_string(v); }

// Writes run at READ COMMITTED whatever the server's default_transaction_isolation: each statement then
// sees every transaction committed before it, so a statement after the writer lock sees every earlier
// writer's commit (under REPEATABLE READ the snapshot would date from the lock statement itself, and a
// garbage collection's re-mark could miss a manifest committed while it waited for the lock).
constexpr std::string_view kBeginWrite = "BEGIN ISOLATION LEVEL READ COMMITTED";

void ensure_repo(PGconn* c, std::string_view repo, int64_t now) {
  exec(c, "INSERT INTO repos (name, created) VALUES ($1::text, $2::bigint) ON CONFLICT DO NOTHING", {repo, num(now)});
}

void set_access(PGconn* c, std::string_view digest, int64_t when) {
  exec(c,
       "INSERT INTO access (digest, at) VALUES ($1::text, $2::bigint) ON CONFLICT (digest) DO UPDATE SET at = "
       "EXCLUDED.at",
       {digest, num(when)});
}

bool has_blob(PGconn* c, std::string_view digest) {
  return exec(c, "SELECT 1 FROM blobs WHERE digest = $1::text", {digest}).rows() > 0;
}

void add_blob(PGconn* c, std::string_view repo, std::string_view digest, uint64_t size, Origin origin, int64_t now,
              Backend backend) {
  ensure_repo(c, repo, now);
  exec(c,
       "INSERT INTO blobs (digest, size, refcount, origin, created, backend) "
       "VALUES ($1::text, $2::bigint, 0, $3::smallint, $4::bigint, $5::smallint) ON CONFLICT DO NOTHING",
       {digest, num(int64_t(size)), num(int(origin)), num(now), num(int(backend))});
  if (exec(c, "INSERT INTO links (repo, digest) VALUES ($1::text, $2::text) ON CONFLICT DO NOTHING", {repo, digest})
          .affected() > 0)
    exec(c, "UPDATE blobs SET refcount = refcount + 1 WHERE digest = $1::text", {digest});
  set_access(c, digest, now);
}

std::optional<std::string> first_missing(PGconn* c, std::string_view repo, const std::vector<std::string>& required) {
  for (const auto& d : required) {
    auto r = exec(c,
                  "SELECT EXISTS (SELECT 1 FROM links WHERE repo = $1::text AND digest = $2::text) OR "
                  "EXISTS (SELECT 1 FROM repo_manifests WHERE repo = $1::text AND digest = $2::text)",
                  {repo, d});
    if (r.text(0, 0) != "t") return d;
  }
  return std::nullopt;
}

void store_manifest(PGconn* c, std::string_view repo, std::string_view digest, const ManifestRecord& rec,
                    std::optional<std::string_view> tag) {
  const int64_t now = now_seconds();
  ensure_repo(c, repo, now);
  const int64_t created = rec.created == 0 ? now : rec.created;
  exec(c,
       "INSERT INTO manifests (digest, media_type, size, blobs, children, subject, artifact_type, annotations, origin, "
       "created) VALUES ($1::text, $2::text, $3::bigint, string_to_array($4::text, E'\\n'), "
       "string_to_array($5::text, E'\\n'), $6::text, $7::text, $8::text, $9::smallint, $10::bigint) "
       "ON CONFLICT DO NOTHING",  // the first put wins
       std::vector<std::string>{std::string(digest), rec.media_type, num(int64_t(rec.size)), join_lines(rec.blobs),
                                join_lines(rec.children), rec.subject, rec.artifact_type, rec.annotations_json,
                                num(int(rec.origin)), num(created)});
  exec(c, "INSERT INTO repo_manifests (repo, digest, added) VALUES ($1::text, $2::text, $3::bigint) ON CONFLICT DO NOTHING",
       {repo, digest, num(now)});
  if (tag)
    exec(c,
         "INSERT INTO tags (repo, tag, digest) VALUES ($1::text, $2::text, $3::text) "
         "ON CONFLICT (repo, tag) DO UPDATE SET digest = EXCLUDED.digest",
         {repo, *tag, digest});
  if (!rec.subject.empty())
    exec(c,
         "INSERT INTO referrers (repo, subject, digest, media_type, size, artifact_type, annotations) "
         "VALUES ($1::text, $2::text, $3::text, $4::text, $5::bigint, $6::text, $7::text) "
         "ON CONFLICT (repo, subject, digest) DO UPDATE SET media_type = EXCLUDED.media_type, size = EXCLUDED.size, "
         "artifact_type = EXCLUDED.artifact_type, annotations = EXCLUDED.annotations",
         std::vector<std::string>{std::string(repo), rec.subject, std::string(digest), rec.media_type,
                                  num(int64_t(rec.size)), rec.artifact_type, rec.annotations_json});
  set_access(c, digest, now);
}

bool remove_from_repo(PGconn* c, std::string_view repo, std::string_view digest) {
  if (exec(c, "DELETE FROM repo_manifests WHERE repo = $1::text AND digest = $2::text", {repo, digest}).affected() == 0)
    return false;
  exec(c, "DELETE FROM tags WHERE repo = $1::text AND digest = $2::text", {repo, digest});
  exec(c,
       "DELETE FROM referrers WHERE repo = $1::text AND digest = $2::text AND subject = "
       "(SELECT subject FROM manifests WHERE digest = $2::text)",
       {repo, digest});
  return true;
}

}  // namespace

template <class F>
auto PgIndex::write(std::string_view op, F&& f) -> std::expected<std::invoke_result_t<F, PGconn*>, std::string> {
  try {
    auto session = begin(kBeginWrite);
    PGconn* c = session->lease.get();
    exec(c, "SELECT pg_advisory_xact_lock($1::bigint)", {std::to_string(pg::kWriterLock)});
    if constexpr (std::is_void_v<std::invoke_result_t<F, PGconn*>>) {
      f(c);
      exec(c, "COMMIT");
      return {};
    } else {
      auto result = f(c);
      exec(c, "COMMIT");
      return result;
    }
  } catch (const pg::PgError& e) {  // the lease rolls back whatever is open
    return std::unexpected(std::string("index ").append(op).append(": ").append(e.what()));
  }
}

// ---- update ----

// Index::Update over one PostgreSQL write transaction.
class PgUpdate final : public Index::Update {
 public:
  explicit PgUpdate(PgIndex::Session& s) : c_(s.lease.get()), view_(nullptr, &s) {}
  const Index::ReadTxn& txn() const override { return view_; }
  bool remove_from_repo(std::string_view repo, std::string_view digest) override {
    return cache::remove_from_repo(c_, repo, digest);
  }
  bool remove_manifest_record(std::string_view digest) override {
    exec(c_, "DELETE FROM access WHERE digest = $1::text", {digest});
    return exec(c_, "DELETE FROM manifests WHERE digest = $1::text", {digest}).affected() > 0;
  }
  bool remove_blob_record(std::string_view digest, const std::vector<std::string>& linked_repos) override {
    for (const auto& repo : linked_repos)
      exec(c_, "DELETE FROM links WHERE repo = $1::text AND digest = $2::text", {repo, digest});
    exec(c_, "DELETE FROM access WHERE digest = $1::text", {digest});
    return exec(c_, "DELETE FROM blobs WHERE digest = $1::text", {digest}).affected() > 0;
  }
  bool remove_tag(std::string_view repo, std::string_view tag) override {
    return exec(c_, "DELETE FROM tags WHERE repo = $1::text AND tag = $2::text", {repo, tag}).affected() > 0;
  }
  void put_blob_record(std::string_view digest, const BlobRecord& rec) override {
    exec(c_,
         "INSERT INTO blobs (digest, size, refcount, origin, created, backend) VALUES ($1::text, $2::bigint, "
         "$3::integer, $4::smallint, $5::bigint, $6::smallint) ON CONFLICT (digest) DO UPDATE SET size = "
         "EXCLUDED.size, refcount = EXCLUDED.refcount, origin = EXCLUDED.origin, created = EXCLUDED.created, "
         "backend = EXCLUDED.backend",
         {digest, num(int64_t(rec.size)), num(rec.refcount), num(int(rec.origin)), num(rec.created),
          num(int(rec.backend))});
  }
  bool has_record(std::string_view digest) const override {
    return exec(c_,
                "SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = $1::text) OR "
                "EXISTS (SELECT 1 FROM manifests WHERE digest = $1::text)",
                {digest})
               .text(0, 0) == "t";
  }
  void add_blob(std::string_view repo, std::string_view digest, uint64_t size, Origin origin,
                Backend backend) override {
    cache::add_blob(c_, repo, digest, size, origin, now_seconds(), backend);
  }
  std::optional<std::string> first_missing(std::string_view repo,
                                           const std::vector<std::string>& required) const override {
    return cache::first_missing(c_, repo, required);
  }
  void add_manifest(std::string_view repo, std::string_view digest, const ManifestRecord& rec,
                    std::optional<std::string_view> tag) override {
    store_manifest(c_, repo, digest, rec, tag);
  }

 private:
  PGconn* c_;
  Index::ReadTxn view_;  // borrows the session (null owner: never ends it)
};

std::expected<void, std::string> PgIndex::update(std::string_view op, const std::function<void(Update&)>& f) {
  try {
    auto s = begin(kBeginWrite);
    exec(s->lease.get(), "SELECT pg_advisory_xact_lock($1::bigint)", {std::to_string(pg::kWriterLock)});
    PgUpdate u(*s);
    f(u);
    exec(s->lease.get(), "COMMIT");
    return {};
  } catch (const pg::PgError& e) {  // the lease rolls back whatever is open
    return std::unexpected(std::string("index ").append(op).append(": ").append(e.what()));
  }
}

// ---- writes ----

std::expected<void, std::string> PgIndex::link_blobs(const std::vector<NewLink>& links) {
  auto missing = write("link_blob", [&](PGconn* c) -> std::string {
    for (const auto& l : links)
      if (!has_blob(c, l.digest)) return l.digest;
    const int64_t now = now_seconds();
    for (const auto& l : links) {
      // The record's own backend is kept: add_blob only creates records that do not exist, and they all do.
      add_blob(c, l.repo, l.digest, l.size, l.origin, now, Backend::Filesystem);
    }
    return {};
  });
  if (!missing) return std::unexpected(missing.error());
  if (!missing->empty()) return std::unexpected("blob " + *missing + " is not in the store (collected meanwhile?)");
  return {};
}

std::expected<bool, std::string> PgIndex::unlink_blob(std::string_view repo, std::string_view digest) {
  return write("unlink_blob", [&](PGconn* c) {
    if (exec(c, "DELETE FROM links WHERE repo = $1::text AND digest = $2::text", {repo, digest}).affected() == 0)
      return false;
    exec(c, "UPDATE blobs SET refcount = refcount - 1 WHERE digest = $1::text AND refcount > 0", {digest});
    return true;
  });
}

std::expected<void, std::string> PgIndex::put_manifest(std::string_view repo, std::string_view digest,
                                                       const ManifestRecord& rec, std::optional<std::string_view> tag) {
  return write("put_manifest", [&](PGconn* c) { store_manifest(c, repo, digest, rec, tag); });
}

std::expected<std::optional<std::string>, std::string> PgIndex::put_manifest_checked(
    std::string_view repo, std::string_view digest, const ManifestRecord& rec, std::optional<std::string_view> tag,
    const std::vector<std::string>& required) {
  return write("put_manifest", [&](PGconn* c) -> std::optional<std::string> {
    if (auto missing = first_missing(c, repo, required)) return missing;
    store_manifest(c, repo, digest, rec, tag);
    return std::nullopt;
  });
}

std::expected<bool, std::string> PgIndex::delete_tag(std::string_view repo, std::string_view tag) {
  return write("delete_tag", [&](PGconn* c) {
    return exec(c, "DELETE FROM tags WHERE repo = $1::text AND tag = $2::text", {repo, tag}).affected() > 0;
  });
}

std::expected<bool, std::string> PgIndex::delete_manifest(std::string_view repo, std::string_view digest) {
  return write("delete_manifest", [&](PGconn* c) { return remove_from_repo(c, repo, digest); });
}

std::expected<void, std::string> PgIndex::put_upload(std::string_view uuid, const UploadRecord& rec) {
  return write("put_upload", [&](PGconn* c) {
    exec(c,
         "INSERT INTO uploads (uuid, repo, started) VALUES ($1::text, $2::text, $3::bigint) "
         "ON CONFLICT (uuid) DO UPDATE SET repo = EXCLUDED.repo, started = EXCLUDED.started",
         {uuid, rec.repo, num(rec.started)});
  });
}

std::expected<void, std::string> PgIndex::delete_upload(std::string_view uuid) {
  return write("delete_upload", [&](PGconn* c) { exec(c, "DELETE FROM uploads WHERE uuid = $1::text", {uuid}); });
}

std::expected<void, std::string> PgIndex::touch(const std::vector<std::pair<std::string, int64_t>>& accesses) {
  if (accesses.empty()) return {};
  return write("touch", [&](PGconn* c) {
    for (const auto& [digest, when] : accesses) set_access(c, digest, when);
  });
}

std::expected<void, std::string> PgIndex::put_tags(const std::vector<TagEntry>& entries) {
  if (entries.empty()) return {};
  // One statement per table for the whole batch (imports put many): the columns travel as newline-joined
  // text, so an entry holding a newline (no valid name does) takes the row-by-row path instead.
  std::map<std::pair<std::string, std::string>, std::string> last;  // (repo, tag) → digest; the last entry wins
  bool plain = true;
  for (const auto& e : entries) {
    last[{e.repo, e.tag}] = e.digest;
    for (const std::string* f : {&e.repo, &e.tag, &e.digest})
      if (f->empty() || f->find('\n') != std::string::npos) plain = false;
  }
  return write("put_tags", [&](PGconn* c) {
    const int64_t now = now_seconds();
    if (!plain) {
      for (const auto& [key, digest] : last) {
        ensure_repo(c, key.first, now);
        exec(c,
             "INSERT INTO tags (repo, tag, digest) VALUES ($1::text, $2::text, $3::text) "
             "ON CONFLICT (repo, tag) DO UPDATE SET digest = EXCLUDED.digest",
             {key.first, key.second, digest});
      }
      return;
    }
    std::vector<std::string> repos, tags, digests;
    for (const auto& [key, digest] : last) {
      repos.push_back(key.first);
      tags.push_back(key.second);
      digests.push_back(digest);
    }
    const std::string r = join_lines(repos), t = join_lines(tags), d = join_lines(digests);
    exec(c,
         "INSERT INTO repos (name, created) SELECT DISTINCT unnest(string_to_array($1::text, E'\\n')), $2::bigint "
         "ON CONFLICT DO NOTHING",
         {r, num(now)});
    exec(c,
         "INSERT INTO tags (repo, tag, digest) SELECT * FROM unnest(string_to_array($1::text, E'\\n'), "
         "string_to_array($2::text, E'\\n'), string_to_array($3::text, E'\\n')) "
         "ON CONFLICT (repo, tag) DO UPDATE SET digest = EXCLUDED.digest",
         {r, t, d});
  });
}

}  // namespace wharf::cache
