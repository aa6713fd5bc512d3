// The LMDB index's write side: each write transaction, update() and the removals it offers.
#include <chrono>
#include <utility>

#include "cache/index_lmdb.hpp"
#include "cache/index_impl.hpp"
#include "cache/index_records.hpp"
#include "cache/lmdb.hpp"

namespace wharf::cache {

using namespace index_detail;

namespace {

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string LmdbIndex::Impl::describe(std::string_view op, const lmdb::Error& e) const {
  std::string msg = "index " + std::string(op) + ": ";
  if (e.code() != MDB_MAP_FULL) return msg + e.what();
  MDB_envinfo info{};
  mdb_env_info(env.get(), &info);
  return msg + "the index is full (MDB_MAP_FULL: map size of " + std::to_string(info.me_mapsize >> 20) +
         " MiB exhausted); raise the index map size";
}

void LmdbIndex::Impl::ensure_repo(MDB_txn* t, std::string_view repo, int64_t now) const {
  lmdb::put(t, repos, repo, encode_i64(now), MDB_NOOVERWRITE);
}

bool LmdbIndex::Impl::remove_from_repo(MDB_txn* t, std::string_view repo, std::string_view digest) const {
  if (!lmdb::del(t, repo_manifests, key(repo, digest))) return false;
  std::vector<std::string> doomed;  // tags of `repo` pointing at `digest`
  {
    const std::string prefix = key(repo, "");
    lmdb::Cursor cur(t, tags);
    MDB_val k{}, v{};
    for (bool ok = cur.seek(prefix, k, v); ok; ok = cur.get(k, v, MDB_NEXT)) {
      std::string_view found = lmdb::view(k);
      if (!found.starts_with(prefix)) break;
      if (lmdb::view(v) == digest) doomed.emplace_back(found);
    }
  }
  for (const auto& k : doomed) lmdb::del(t, tags, k);
  std::string_view v;
  if (lmdb::get(t, manifests, digest, &v)) {
    if (auto m = decode_manifest(v); m && !m->subject.empty()) lmdb::del(t, referrers, key(repo, m->subject, digest));
  }
  return true;
}

void LmdbIndex::Impl::add_blob(MDB_txn* t, std::string_view repo, std::string_view digest, uint64_t size, Origin origin,
                           int64_t now, Backend backend) {
  ensure_repo(t, repo, now);
  std::string_view v;
  std::optional<BlobRecord> rec;
  if (lmdb::get(t, blobs, digest, &v)) rec = decode_blob(v);
  const bool fresh = !rec;
  if (fresh) rec = BlobRecord{size, 0, origin, now, backend};
  const bool linked = lmdb::put(t, links, key(repo, digest), "", MDB_NOOVERWRITE);
  if (linked) ++rec->refcount;
  if (fresh || linked) lmdb::put(t, blobs, digest, encode(*rec));
  lmdb::put(t, access, digest, encode_i64(now));
}

std::optional<std::string> LmdbIndex::Impl::first_missing(MDB_txn* t, std::string_view repo,
                                                      const std::vector<std::string>& required) const {
  for (const auto& d : required)
    if (!lmdb::get(t, links, key(repo, d), nullptr) && !lmdb::get(t, repo_manifests, key(repo, d), nullptr)) return d;
  return std::nullopt;
}

void LmdbIndex::Impl::store_manifest(MDB_txn* t, std::string_view repo, std::string_view digest, const ManifestRecord& rec,
                                 std::optional<std::string_view> tag) {
  {
    const int64_t now = now_seconds();
    ensure_repo(t, repo, now);
    ManifestRecord stored = rec;
    if (stored.created == 0) stored.created = now;
    lmdb::put(t, manifests, digest, encode(stored), MDB_NOOVERWRITE);  // the first put wins
    lmdb::put(t, repo_manifests, key(repo, digest), encode_i64(now), MDB_NOOVERWRITE);
    if (tag) lmdb::put(t, tags, key(repo, *tag), digest);
    if (!rec.subject.empty()) lmdb::put(t, referrers, key(repo, rec.subject, digest), encode_referrer(rec));
    lmdb::put(t, access, digest, encode_i64(now));
  }
}

// ---- update ----

// Index::Update over one LMDB write transaction.
class LmdbUpdate final : public Index::Update {
 public:
  LmdbUpdate(LmdbIndex::Impl& im, MDB_txn* t) : im_(im), t_(t), view_(nullptr, t) {}
  const Index::ReadTxn& txn() const override { return view_; }
  bool remove_from_repo(std::string_view repo, std::string_view digest) override;
  bool remove_manifest_record(std::string_view digest) override;
  bool remove_blob_record(std::string_view digest, const std::vector<std::string>& linked_repos) override;
  bool remove_tag(std::string_view repo, std::string_view tag) override;
  void put_blob_record(std::string_view digest, const BlobRecord& rec) override;
  bool has_record(std::string_view digest) const override;
  void add_blob(std::string_view repo, std::string_view digest, uint64_t size, Origin origin,
                Backend backend) override;
  std::optional<std::string> first_missing(std::string_view repo,
                                           const std::vector<std::string>& required) const override;
  void add_manifest(std::string_view repo, std::string_view digest, const ManifestRecord& rec,
                    std::optional<std::string_view> tag) override;

 private:
  LmdbIndex::Impl& im_;
  MDB_txn* t_;
  Index::ReadTxn view_;  // borrows t_ (null owner: never aborts it)
};

bool LmdbUpdate::remove_from_repo(std::string_view repo, std::string_view digest) {
  return im_.remove_from_repo(t_, repo, digest);
}

bool LmdbUpdate::remove_manifest_record(std::string_view digest) {
    lmdb::del(t_, im_.access, digest);
  return lmdb::del(t_, im_.manifests, digest);
}

bool LmdbUpdate::remove_blob_record(std::string_view digest, const std::vector<std::string>& linked_repos) {
    for (const auto& repo : linked_repos) lmdb::del(t_, im_.links, key(repo, digest));
  lmdb::del(t_, im_.access, digest);
  return lmdb::del(t_, im_.blobs, digest);
}

bool LmdbUpdate::remove_tag(std::string_view repo, std::string_view tag) {
  return lmdb::del(t_, im_.tags, key(repo, tag));
}

void LmdbUpdate::put_blob_record(std::string_view digest, const BlobRecord& rec) {
  lmdb::put(t_, im_.blobs, digest, encode(rec));
}

bool LmdbUpdate::has_record(std::string_view digest) const {
    return lmdb::get(t_, im_.blobs, digest, nullptr) || lmdb::get(t_, im_.manifests, digest, nullptr);
}

void LmdbUpdate::add_blob(std::string_view repo, std::string_view digest, uint64_t size, Origin origin,
                             Backend backend) {
  im_.add_blob(t_, repo, digest, size, origin, now_seconds(), backend);
}

std::optional<std::string> LmdbUpdate::first_missing(std::string_view repo,
                                                        const std::vector<std::string>& required) const {
  return im_.first_missing(t_, repo, required);
}

void LmdbUpdate::add_manifest(std::string_view repo, std::string_view digest, const ManifestRecord& rec,
                                 std::optional<std::string_view> tag) {
  im_.store_manifest(t_, repo, digest, rec, tag);
}

std::expected<void, std::string> LmdbIndex::update(std::string_view op, const std::function<void(Update&)>& f) {
  return impl_->write(op, [&](MDB_txn* t) {
    LmdbUpdate u(*impl_, t);
    f(u);
  });
}

// ---- writes ----

std::expected<void, std::string> LmdbIndex::link_blobs(const std::vector<NewLink>& links) {
  auto missing = impl_->write("link_blob", [&](MDB_txn* t) -> std::string {
    for (const auto& l : links)
      if (!lmdb::get(t, impl_->blobs, l.digest, nullptr)) return l.digest;
    const int64_t now = now_seconds();
    for (const auto& l : links) impl_->add_blob(t, l.repo, l.digest, l.size, l.origin, now);
    return {};
  });
  if (!missing) return std::unexpected(missing.error());
  if (!missing->empty()) return std::unexpected("blob " + *missing + " is not in the store (collected meanwhile?)");
  return {};
}

std::expected<bool, std::string> LmdbIndex::unlink_blob(std::string_view repo, std::string_view digest) {
  return impl_->write("unlink_blob", [&](MDB_txn* t) {
    if (!lmdb::del(t, impl_->links, key(repo, digest))) return false;
    std::string_view v;
    if (lmdb::get(t, impl_->blobs, digest, &v)) {
      if (auto rec = decode_blob(v); rec && rec->refcount > 0) {
        --rec->refcount;
        lmdb::put(t, impl_->blobs, digest, encode(*rec));
      }
    }
    return true;
  });
}

std::expected<void, std::string> LmdbIndex::put_manifest(std::string_view repo, std::string_view digest,
                                                     const ManifestRecord& rec, std::optional<std::string_view> tag) {
  return impl_->write("put_manifest", [&](MDB_txn* t) { impl_->store_manifest(t, repo, digest, rec, tag); });
}

std::expected<std::optional<std::string>, std::string> LmdbIndex::put_manifest_checked(
    std::string_view repo, std::string_view digest, const ManifestRecord& rec, std::optional<std::string_view> tag,
    const std::vector<std::string>& required) {
  return impl_->write("put_manifest", [&](MDB_txn* t) -> std::optional<std::string> {
    if (auto missing = impl_->first_missing(t, repo, required)) return missing;
    impl_->store_manifest(t, repo, digest, rec, tag);
    return std::nullopt;
  });
}

std::expected<bool, std::string> LmdbIndex::delete_tag(std::string_view repo, std::string_view tag) {
  return impl_->write("delete_tag", [&](MDB_txn* t) { return lmdb::del(t, impl_->tags, key(repo, tag)); });
}

std::expected<bool, std::string> LmdbIndex::delete_manifest(std::string_view repo, std::string_view digest) {
  return impl_->write("delete_manifest", [&](MDB_txn* t) { return impl_->remove_from_repo(t, repo, digest); });
}

std::expected<void, std::string> LmdbIndex::put_upload(std::string_view uuid, const UploadRecord& rec) {
  return impl_->write("put_upload", [&](MDB_txn* t) { lmdb::put(t, impl_->uploads, uuid, encode(rec)); });
}

std::expected<void, std::string> LmdbIndex::delete_upload(std::string_view uuid) {
  return impl_->write("delete_upload", [&](MDB_txn* t) { lmdb::del(t, impl_->uploads, uuid); });
}

std::expected<void, std::string> LmdbIndex::touch(const std::vector<std::pair<std::string, int64_t>>& accesses) {
  if (accesses.empty()) return {};
  return impl_->write("touch", [&](MDB_txn* t) {
    for (const auto& [digest, when] : accesses) lmdb::put(t, impl_->access, digest, encode_i64(when));
  });
}

std::expected<void, std::string> LmdbIndex::put_tags(const std::vector<TagEntry>& entries) {
  if (entries.empty()) return {};
  return impl_->write("put_tags", [&](MDB_txn* t) {
    const int64_t now = now_seconds();
    for (const auto& e : entries) {
      impl_->ensure_repo(t, e.repo, now);
      lmdb::put(t, impl_->tags, key(e.repo, e.tag), e.digest);
    }
  });
}

}  // namespace wharf::cache
