// LmdbIndex: opening the environment, read transactions and the read-side queries.
// The table layout and record encodings are in index_records.hpp, the writes in index_write.cpp.
#include "cache/index_lmdb.hpp"

#include <utility>

#include "cache/index_check.hpp"
#include "cache/index_impl.hpp"
#include "cache/index_records.hpp"
#include "cache/lmdb.hpp"

namespace wharf::cache {

using namespace index_detail;

// ---- ReadTxn ----

LmdbIndex::ReadTxn LmdbIndex::read() const {
  return ReadTxn(this, lmdb::Txn::begin(impl_->env.get(), MDB_RDONLY).release());
}

void LmdbIndex::end_read(void* handle) const noexcept { mdb_txn_abort(static_cast<MDB_txn*>(handle)); }

// ---- open ----

std::expected<std::unique_ptr<LmdbIndex>, std::string> LmdbIndex::open(const std::filesystem::path& dir, size_t map_size,
                                                               Damaged damaged) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected("cannot create index directory '" + dir.string() + "': " + ec.message());
  std::unique_ptr<LmdbIndex> index(new LmdbIndex());
  index->impl_ = std::make_unique<Impl>();
  Impl& im = *index->impl_;
  const std::string damaged_hint = "; run `wharf check CONFIG --repair`, or restore the index from a backup";
  try {
    im.env = lmdb::Env::create();
    MDB_env* env = im.env.get();
    lmdb::check(mdb_env_set_maxdbs(env, 16), "mdb_env_set_maxdbs");
    lmdb::check(mdb_env_set_maxreaders(env, 1024), "mdb_env_set_maxreaders");
    lmdb::check(mdb_env_set_mapsize(env, map_size), "mdb_env_set_mapsize");
    lmdb::check(mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0644), "mdb_env_open");
    // Before any page is read through the map: a short file would fault (SIGBUS) on the first read.
    if (auto bad = check_file(env, dir))
      return std::unexpected("index '" + dir.string() + "' is damaged: " + *bad + "; restore it from a backup");
    int stale = 0;
    lmdb::check(mdb_reader_check(env, &stale), "mdb_reader_check");  // slots left by a killed process
    im.max_key = size_t(mdb_env_get_maxkeysize(env));
    struct Tables {
      Impl* im = nullptr;
      std::string error;
      std::string schema;  // the stored schema record, "" if none
    } t;
    t.im = &im;
    auto open_tables = [](void* arg) {
      auto& t = *static_cast<Tables*>(arg);
      Impl& im = *t.im;
      try {
        auto txn = lmdb::Txn::begin(im.env.get(), 0);
        const std::pair<const char*, MDB_dbi*> tables[] = {
            {"repos", &im.repos},         {"tags", &im.tags},   {"manifests", &im.manifests},
            {"repo_manifests", &im.repo_manifests}, {"blobs", &im.blobs}, {"links", &im.links},
            {"referrers", &im.referrers}, {"uploads", &im.uploads}, {"access", &im.access},
            {"meta", &im.meta},
        };
        for (auto [name, dbi] : tables)
          lmdb::check(mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi), std::string("mdb_dbi_open ") + name);
        std::string_view v;
        if (lmdb::get(txn.get(), im.meta, kSchemaKey, &v)) t.schema = std::string(v);
        if (t.schema.empty()) lmdb::put(txn.get(), im.meta, kSchemaKey, kSchema);  // fresh, or from before the record
        txn.commit();
      } catch (const lmdb::Error& e) {
        t.error = e.what();
      }
    };
    if (int sig = guard_faults(open_tables, &t); sig != 0)
      return std::unexpected("index '" + dir.string() + "' is damaged: reading its tables faulted" + damaged_hint);
    if (!t.error.empty()) return std::unexpected("cannot open index '" + dir.string() + "': " + t.error);
    if (!t.schema.empty() && t.schema != kSchema)
      return std::unexpected("index '" + dir.string() + "' is not one this wharf reads: its schema record says '" +
                             t.schema.substr(0, 80) + "', expected '" + std::string(kSchema) + "'");
  } catch (const lmdb::Error& e) {
    return std::unexpected("cannot open index '" + dir.string() + "': " + e.what());
  }
  auto problems = check_records(im, kCheckLimit);
  if (!problems.empty()) {
    if (damaged == Damaged::Refuse) {
      std::string msg = "index '" + dir.string() + "' is damaged: " + problems[0];
      if (problems.size() > 1) msg += " (and " + std::to_string(problems.size() - 1) + " more lines)";
      return std::unexpected(msg + damaged_hint);
    }
    index->damage_ = std::move(problems);
  }
  return index;
}

LmdbIndex::~LmdbIndex() = default;

// ---- reads ----

std::vector<std::string> LmdbIndex::Impl::page(MDB_txn* t, MDB_dbi dbi, std::string_view prefix, std::string_view last,
                                           size_t n, bool* more) const {
  if (more) *more = false;
  std::vector<std::string> out;
  std::string start = std::string(prefix) + std::string(last);
  // Stored keys are at most max_key long, so the first key > start is the first key > start[:max_key]
  // (bar an exact match with the truncation, which is < start).
  std::string_view seek = std::string_view(start).substr(0, max_key);
  if (prefix.size() > max_key) return out;
  lmdb::Cursor cur(t, dbi);
  MDB_val k{}, v{};
  bool ok = seek.empty() ? cur.get(k, v, MDB_FIRST) : cur.seek(seek, k, v);
  if (ok && !last.empty() && lmdb::view(k) == seek) ok = cur.get(k, v, MDB_NEXT);
  for (; ok; ok = cur.get(k, v, MDB_NEXT)) {
    std::string_view found = lmdb::view(k);
    if (!found.starts_with(prefix)) break;
    if (n != 0 && out.size() == n) {
      if (more) *more = true;
      break;
    }
    out.emplace_back(found.substr(prefix.size()));
  }
  return out;
}

bool LmdbIndex::repo_exists(const ReadTxn& t, std::string_view repo) const {
  return lmdb::get(raw(t), impl_->repos, repo, nullptr);
}

std::optional<BlobRecord> LmdbIndex::blob(const ReadTxn& t, std::string_view digest) const {
  std::string_view v;
  if (!lmdb::get(raw(t), impl_->blobs, digest, &v)) return std::nullopt;
  return decode_blob(v);
}

bool LmdbIndex::blob_linked(const ReadTxn& t, std::string_view repo, std::string_view digest) const {
  return lmdb::get(raw(t), impl_->links, key(repo, digest), nullptr);
}

std::optional<std::string> LmdbIndex::tag(const ReadTxn& t, std::string_view repo, std::string_view tag) const {
  std::string_view v;
  if (!lmdb::get(raw(t), impl_->tags, key(repo, tag), &v)) return std::nullopt;
  return std::string(v);
}

std::optional<ManifestRecord> LmdbIndex::manifest(const ReadTxn& t, std::string_view digest) const {
  std::string_view v;
  if (!lmdb::get(raw(t), impl_->manifests, digest, &v)) return std::nullopt;
  return decode_manifest(v);
}

bool LmdbIndex::manifest_in_repo(const ReadTxn& t, std::string_view repo, std::string_view digest) const {
  return lmdb::get(raw(t), impl_->repo_manifests, key(repo, digest), nullptr);
}

std::vector<std::string> LmdbIndex::tags(const ReadTxn& t, std::string_view repo, std::string_view last, size_t n,
                                     bool* more) const {
  return impl_->page(raw(t), impl_->tags, key(repo, ""), last, n, more);
}

std::vector<std::string> LmdbIndex::repos(const ReadTxn& t, std::string_view last, size_t n, bool* more) const {
  return impl_->page(raw(t), impl_->repos, "", last, n, more);
}

std::vector<Referrer> LmdbIndex::referrers(const ReadTxn& t, std::string_view repo, std::string_view subject) const {
  std::vector<Referrer> out;
  std::string prefix = key(repo, subject, "");
  if (prefix.size() > impl_->max_key) return out;
  lmdb::Cursor cur(raw(t), impl_->referrers);
  MDB_val k{}, v{};
  for (bool ok = cur.seek(prefix, k, v); ok; ok = cur.get(k, v, MDB_NEXT)) {
    std::string_view found = lmdb::view(k);
    if (!found.starts_with(prefix)) break;
    if (auto r = decode_referrer(found.substr(prefix.size()), lmdb::view(v))) out.push_back(std::move(*r));
  }
  return out;
}

std::optional<UploadRecord> LmdbIndex::upload(const ReadTxn& t, std::string_view uuid) const {
  std::string_view v;
  if (!lmdb::get(raw(t), impl_->uploads, uuid, &v)) return std::nullopt;
  return decode_upload(v);
}

std::optional<int64_t> LmdbIndex::last_access(const ReadTxn& t, std::string_view digest) const {
  std::string_view v;
  if (!lmdb::get(raw(t), impl_->access, digest, &v)) return std::nullopt;
  return decode_i64(v);
}

std::vector<std::pair<std::string, UploadRecord>> LmdbIndex::uploads(const ReadTxn& t) const {
  std::vector<std::pair<std::string, UploadRecord>> out;
  lmdb::Cursor cur(raw(t), impl_->uploads);
  MDB_val k{}, v{};
  for (bool ok = cur.get(k, v, MDB_FIRST); ok; ok = cur.get(k, v, MDB_NEXT)) {
    if (auto u = decode_upload(lmdb::view(v))) out.emplace_back(std::string(lmdb::view(k)), std::move(*u));
  }
  return out;
}

// ---- enumeration ----

std::vector<TagEntry> LmdbIndex::all_tags(const ReadTxn& t) const {
  std::vector<TagEntry> out;
  impl_->each(raw(t), impl_->tags, [&](std::string_view k, std::string_view v) {
    std::string_view repo, tag;
    if (split_key(k, repo, tag)) out.push_back({std::string(repo), std::string(tag), std::string(v)});
  });
  return out;
}

std::vector<RepoManifest> LmdbIndex::all_repo_manifests(const ReadTxn& t) const {
  std::vector<RepoManifest> out;
  impl_->each(raw(t), impl_->repo_manifests, [&](std::string_view k, std::string_view v) {
    std::string_view repo, digest;
    if (split_key(k, repo, digest)) out.push_back({std::string(repo), std::string(digest), decode_i64(v).value_or(0)});
  });
  return out;
}

std::vector<std::pair<std::string, ManifestRecord>> LmdbIndex::all_manifests(const ReadTxn& t) const {
  std::vector<std::pair<std::string, ManifestRecord>> out;
  impl_->each(raw(t), impl_->manifests, [&](std::string_view k, std::string_view v) {
    if (auto m = decode_manifest(v)) out.emplace_back(std::string(k), std::move(*m));
  });
  return out;
}

std::vector<std::pair<std::string, BlobRecord>> LmdbIndex::all_blobs(const ReadTxn& t) const {
  std::vector<std::pair<std::string, BlobRecord>> out;
  impl_->each(raw(t), impl_->blobs, [&](std::string_view k, std::string_view v) {
    if (auto b = decode_blob(v)) out.emplace_back(std::string(k), *b);
  });
  return out;
}

std::vector<BlobLink> LmdbIndex::all_links(const ReadTxn& t) const {
  std::vector<BlobLink> out;
  impl_->each(raw(t), impl_->links, [&](std::string_view k, std::string_view) {
    std::string_view repo, digest;
    if (split_key(k, repo, digest)) out.push_back({std::string(repo), std::string(digest)});
  });
  return out;
}

std::vector<std::pair<std::string, int64_t>> LmdbIndex::all_access(const ReadTxn& t) const {
  std::vector<std::pair<std::string, int64_t>> out;
  impl_->each(raw(t), impl_->access, [&](std::string_view k, std::string_view v) {
    if (auto when = decode_i64(v)) out.emplace_back(std::string(k), *when);
  });
  return out;
}

// ---- repair ----

std::vector<std::string> LmdbIndex::undecodable(std::string_view table) const {
  auto txn = read();
  return undecodable_keys(*impl_, raw(txn), table);
}

std::expected<bool, std::string> LmdbIndex::drop_raw(std::string_view table, std::string_view key) {
  auto dbi = table_named(*impl_, table);
  if (!dbi) return false;
  return impl_->write("drop_raw", [&](MDB_txn* t) { return lmdb::del(t, *dbi, key); });
}

// ---- backup ----

std::expected<void, std::string> LmdbIndex::copy_to(const std::filesystem::path& dir) const {
  int rc = mdb_env_copy2(impl_->env.get(), dir.c_str(), MDB_CP_COMPACT);
  if (rc != MDB_SUCCESS)
    return std::unexpected("cannot copy the index to '" + dir.string() + "': " + mdb_strerror(rc));
  return {};
}

}  // namespace wharf::cache
