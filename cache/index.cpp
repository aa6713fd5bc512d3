// The LMDB index: table layout, record encodings and the read/write operations on them.
//
// Tables (keys are binary; '\0' separates a repository name from the rest):
//   repos           repo                  → created (i64)
//   tags            repo\0tag             → digest string
//   manifests       digest                → ManifestRecord
//   repo_manifests  repo\0digest          → created (i64)
//   blobs           digest                → BlobRecord
//   links           repo\0digest          → "" (blob visible in repo)
//   referrers       repo\0subject\0digest → referrer info
//   uploads         uuid                  → UploadRecord
//   access          digest                → last access (i64)
// Records are little-endian, length-prefixed and start with a version byte; a value that does not
// decode (truncated, unknown version) is treated as absent.
#include "cache/index.hpp"

#include <chrono>
#include <type_traits>
#include <utility>

#include "cache/lmdb.hpp"

namespace wharf::cache {
namespace {

constexpr uint8_t kVersion = 1;

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string key(std::string_view a, std::string_view b) {
  std::string k;
  k.reserve(a.size() + 1 + b.size());
  k.append(a).push_back('\0');
  k.append(b);
  return k;
}

std::string key(std::string_view a, std::string_view b, std::string_view c) { return key(key(a, b), c); }

// ---- encoding ----

class Writer {
 public:
  Writer& u8(uint8_t v) {
    out_.push_back(char(v));
    return *this;
  }
  Writer& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(char((v >> (8 * i)) & 0xff));
    return *this;
  }
  Writer& i64(int64_t v) { return u64(uint64_t(v)); }
  Writer& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(char((v >> (8 * i)) & 0xff));
    return *this;
  }
  Writer& str(std::string_view s) {
    u32(uint32_t(s.size()));
    out_.append(s);
    return *this;
  }
  Writer& strs(const std::vector<std::string>& v) {
    u32(uint32_t(v.size()));
    for (const auto& s : v) str(s);
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads what Writer wrote; any overrun clears ok() and yields zero values.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  uint64_t uint(int bytes) {
    if (!need(size_t(bytes))) return 0;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(uint8_t(in_[pos_ + size_t(i)])) << (8 * i);
    pos_ += size_t(bytes);
    return v;
  }
  uint8_t u8() { return uint8_t(uint(1)); }
  uint32_t u32() { return uint32_t(uint(4)); }
  uint64_t u64() { return uint(8); }
  int64_t i64() { return int64_t(uint(8)); }
  std::string str() {
    size_t n = u32();
    if (!need(n)) return {};
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::vector<std::string> strs() {
    size_t n = u32();
    if (!need(n * 4)) return {};  // every string takes at least its length prefix
    std::vector<std::string> v;
    v.reserve(n);
    for (size_t i = 0; i < n && ok_; ++i) v.push_back(str());
    return v;
  }
  bool version() { return u8() == kVersion && ok_; }

 private:
  bool need(size_t n) {
    if (ok_ && in_.size() - pos_ >= n) return true;
    ok_ = false;
    return false;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

Origin to_origin(uint8_t v) { return v == uint8_t(Origin::Proxied) ? Origin::Proxied : Origin::Pushed; }

std::string encode_i64(int64_t v) { return Writer().i64(v).take(); }

std::optional<int64_t> decode_i64(std::string_view v) {
  Reader r(v);
  int64_t t = r.i64();
  return r.ok() ? std::optional(t) : std::nullopt;
}

std::string encode(const BlobRecord& b) {
  return Writer().u8(kVersion).u64(b.size).u32(b.refcount).u8(uint8_t(b.origin)).i64(b.created).take();
}

std::optional<BlobRecord> decode_blob(std::string_view v) {
  Reader r(v);
  if (!r.version()) return std::nullopt;
  BlobRecord b;
  b.size = r.u64();
  b.refcount = r.u32();
  b.origin = to_origin(r.u8());
  b.created = r.i64();
  return r.ok() ? std::optional(b) : std::nullopt;
}

std::string encode(const ManifestRecord& m) {
  return Writer()
      .u8(kVersion)
      .str(m.media_type)
      .u64(m.size)
      .strs(m.blobs)
      .strs(m.children)
      .str(m.subject)
      .str(m.artifact_type)
      .str(m.annotations_json)
      .u8(uint8_t(m.origin))
      .i64(m.created)
      .take();
}

std::optional<ManifestRecord> decode_manifest(std::string_view v) {
  Reader r(v);
  if (!r.version()) return std::nullopt;
  ManifestRecord m;
  m.media_type = r.str();
  m.size = r.u64();
  m.blobs = r.strs();
  m.children = r.strs();
  m.subject = r.str();
  m.artifact_type = r.str();
  m.annotations_json = r.str();
  m.origin = to_origin(r.u8());
  m.created = r.i64();
  return r.ok() ? std::optional(std::move(m)) : std::nullopt;
}

std::string encode_referrer(const ManifestRecord& m) {
  return Writer().u8(kVersion).str(m.media_type).u64(m.size).str(m.artifact_type).str(m.annotations_json).take();
}

std::optional<Referrer> decode_referrer(std::string_view digest, std::string_view v) {
  Reader r(v);
  if (!r.version()) return std::nullopt;
  Referrer ref;
  ref.digest = std::string(digest);
  ref.media_type = r.str();
  ref.size = r.u64();
  ref.artifact_type = r.str();
  ref.annotations_json = r.str();
  return r.ok() ? std::optional(std::move(ref)) : std::nullopt;
}

std::string encode(const UploadRecord& u) { return Writer().u8(kVersion).str(u.repo).i64(u.started).take(); }

std::optional<UploadRecord> decode_upload(std::string_view v) {
  Reader r(v);
  if (!r.version()) return std::nullopt;
  UploadRecord u;
  u.repo = r.str();
  u.started = r.i64();
  return r.ok() ? std::optional(std::move(u)) : std::nullopt;
}

MDB_txn* raw(const Index::ReadTxn& t) { return static_cast<MDB_txn*>(t.raw()); }

}  // namespace

struct Index::Impl {
  lmdb::Env env;
  size_t max_key = 0;
  MDB_dbi repos = 0, tags = 0, manifests = 0, repo_manifests = 0, blobs = 0, links = 0, referrers = 0,
          uploads = 0, access = 0;

  // The writes of put_manifest, inside a caller's write transaction.
  void store_manifest(MDB_txn* t, std::string_view repo, std::string_view digest, const ManifestRecord& rec,
                      std::optional<std::string_view> tag);

  // Runs `f(txn)` in one write transaction and commits it; LMDB failures become the error message.
  template <class F>
  auto write(std::string_view op, F&& f) -> std::expected<std::invoke_result_t<F, MDB_txn*>, std::string> {
    try {
      auto txn = lmdb::Txn::begin(env.get(), 0);
      if constexpr (std::is_void_v<std::invoke_result_t<F, MDB_txn*>>) {
        f(txn.get());
        txn.commit();
        return {};
      } else {
        auto result = f(txn.get());
        txn.commit();
        return result;
      }
    } catch (const lmdb::Error& e) {
      return std::unexpected(describe(op, e));
    }
  }

  std::string describe(std::string_view op, const lmdb::Error& e) const {
    std::string msg = "index " + std::string(op) + ": ";
    if (e.code() != MDB_MAP_FULL) return msg + e.what();
    MDB_envinfo info{};
    mdb_env_info(env.get(), &info);
    return msg + "the index is full (MDB_MAP_FULL: map size of " + std::to_string(info.me_mapsize >> 20) +
           " MiB exhausted); raise the index map size";
  }

  void ensure_repo(MDB_txn* t, std::string_view repo, int64_t now) const {
    lmdb::put(t, repos, repo, encode_i64(now), MDB_NOOVERWRITE);
  }

  // Removes `digest` from `repo`: its membership, every tag of `repo` pointing at it, its referrer entry.
  bool remove_from_repo(MDB_txn* t, std::string_view repo, std::string_view digest) const {
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

  // Calls f(key, value) for every entry of `dbi`, in key order.
  template <class F>
  void each(MDB_txn* t, MDB_dbi dbi, F&& f) const {
    lmdb::Cursor cur(t, dbi);
    MDB_val k{}, v{};
    for (bool ok = cur.get(k, v, MDB_FIRST); ok; ok = cur.get(k, v, MDB_NEXT)) f(lmdb::view(k), lmdb::view(v));
  }

  // Keys of `dbi` starting with `prefix` (returned without it), sorted, strictly after prefix+last,
  // at most n (0: all). Seeks with MDB_SET_RANGE, so the cost does not depend on the table size.
  std::vector<std::string> page(MDB_txn* t, MDB_dbi dbi, std::string_view prefix, std::string_view last, size_t n,
                                bool* more) const {
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
};

// ---- ReadTxn ----

Index::ReadTxn::ReadTxn(ReadTxn&& o) noexcept : txn_(std::exchange(o.txn_, nullptr)) {}

Index::ReadTxn& Index::ReadTxn::operator=(ReadTxn&& o) noexcept {
  if (this != &o) {
    if (txn_) mdb_txn_abort(static_cast<MDB_txn*>(txn_));
    txn_ = std::exchange(o.txn_, nullptr);
  }
  return *this;
}

Index::ReadTxn::~ReadTxn() {
  if (txn_) mdb_txn_abort(static_cast<MDB_txn*>(txn_));
}

Index::ReadTxn Index::read() const { return ReadTxn(lmdb::Txn::begin(impl_->env.get(), MDB_RDONLY).release()); }

// ---- open ----

std::expected<std::unique_ptr<Index>, std::string> Index::open(const std::filesystem::path& dir, size_t map_size) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected("cannot create index directory '" + dir.string() + "': " + ec.message());
  std::unique_ptr<Index> index(new Index());
  index->impl_ = std::make_unique<Impl>();
  Impl& im = *index->impl_;
  try {
    im.env = lmdb::Env::create();
    MDB_env* env = im.env.get();
    lmdb::check(mdb_env_set_maxdbs(env, 16), "mdb_env_set_maxdbs");
    lmdb::check(mdb_env_set_maxreaders(env, 1024), "mdb_env_set_maxreaders");
    lmdb::check(mdb_env_set_mapsize(env, map_size), "mdb_env_set_mapsize");
    lmdb::check(mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0644), "mdb_env_open");
    int stale = 0;
    lmdb::check(mdb_reader_check(env, &stale), "mdb_reader_check");  // slots left by a killed process
    im.max_key = size_t(mdb_env_get_maxkeysize(env));
    auto txn = lmdb::Txn::begin(env, 0);
    const std::pair<const char*, MDB_dbi*> tables[] = {
        {"repos", &im.repos},
        {"tags", &im.tags},
        {"manifests", &im.manifests},
        {"repo_manifests", &im.repo_manifests},
        {"blobs", &im.blobs},
        {"links", &im.links},
        {"referrers", &im.referrers},
        {"uploads", &im.uploads},
        {"access", &im.access},
    };
    for (auto [name, dbi] : tables)
      lmdb::check(mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi), std::string("mdb_dbi_open ") + name);
    txn.commit();
  } catch (const lmdb::Error& e) {
    return std::unexpected("cannot open index '" + dir.string() + "': " + e.what());
  }
  return index;
}

Index::~Index() = default;

// ---- reads ----

bool Index::repo_exists(const ReadTxn& t, std::string_view repo) const {
  return lmdb::get(raw(t), impl_->repos, repo, nullptr);
}

std::optional<BlobRecord> Index::blob(const ReadTxn& t, std::string_view digest) const {
  std::string_view v;
  if (!lmdb::get(raw(t), impl_->blobs, digest, &v)) return std::nullopt;
  return decode_blob(v);
}

bool Index::blob_linked(const ReadTxn& t, std::string_view repo, std::string_view digest) const {
  return lmdb::get(raw(t), impl_->links, key(repo, digest), nullptr);
}

std::optional<std::string> Index::tag(const ReadTxn& t, std::string_view repo, std::string_view tag) const {
  std::string_view v;
  if (!lmdb::get(raw(t), impl_->tags, key(repo, tag), &v)) return std::nullopt;
  return std::string(v);
}

std::optional<ManifestRecord> Index::manifest(const ReadTxn& t, std::string_view digest) const {
  std::string_view v;
  if (!lmdb::get(raw(t), impl_->manifests, digest, &v)) return std::nullopt;
  return decode_manifest(v);
}

bool Index::manifest_in_repo(const ReadTxn& t, std::string_view repo, std::string_view digest) const {
  return lmdb::get(raw(t), impl_->repo_manifests, key(repo, digest), nullptr);
}

std::vector<std::string> Index::tags(const ReadTxn& t, std::string_view repo, std::string_view last, size_t n,
                                     bool* more) const {
  return impl_->page(raw(t), impl_->tags, key(repo, ""), last, n, more);
}

std::vector<std::string> Index::repos(const ReadTxn& t, std::string_view last, size_t n, bool* more) const {
  return impl_->page(raw(t), impl_->repos, "", last, n, more);
}

std::vector<Referrer> Index::referrers(const ReadTxn& t, std::string_view repo, std::string_view subject) const {
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

std::optional<UploadRecord> Index::upload(const ReadTxn& t, std::string_view uuid) const {
  std::string_view v;
  if (!lmdb::get(raw(t), impl_->uploads, uuid, &v)) return std::nullopt;
  return decode_upload(v);
}

std::optional<int64_t> Index::last_access(const ReadTxn& t, std::string_view digest) const {
  std::string_view v;
  if (!lmdb::get(raw(t), impl_->access, digest, &v)) return std::nullopt;
  return decode_i64(v);
}

std::vector<std::pair<std::string, UploadRecord>> Index::uploads(const ReadTxn& t) const {
  std::vector<std::pair<std::string, UploadRecord>> out;
  lmdb::Cursor cur(raw(t), impl_->uploads);
  MDB_val k{}, v{};
  for (bool ok = cur.get(k, v, MDB_FIRST); ok; ok = cur.get(k, v, MDB_NEXT)) {
    if (auto u = decode_upload(lmdb::view(v))) out.emplace_back(std::string(lmdb::view(k)), std::move(*u));
  }
  return out;
}

// ---- enumeration ----

namespace {
// Splits "a\0b" into (a, b); false if there is no separator.
bool split_key(std::string_view k, std::string_view& a, std::string_view& b) {
  size_t nul = k.find('\0');
  if (nul == std::string_view::npos) return false;
  a = k.substr(0, nul);
  b = k.substr(nul + 1);
  return true;
}
}  // namespace

std::vector<TagEntry> Index::all_tags(const ReadTxn& t) const {
  std::vector<TagEntry> out;
  impl_->each(raw(t), impl_->tags, [&](std::string_view k, std::string_view v) {
    std::string_view repo, tag;
    if (split_key(k, repo, tag)) out.push_back({std::string(repo), std::string(tag), std::string(v)});
  });
  return out;
}

std::vector<RepoManifest> Index::all_repo_manifests(const ReadTxn& t) const {
  std::vector<RepoManifest> out;
  impl_->each(raw(t), impl_->repo_manifests, [&](std::string_view k, std::string_view v) {
    std::string_view repo, digest;
    if (split_key(k, repo, digest)) out.push_back({std::string(repo), std::string(digest), decode_i64(v).value_or(0)});
  });
  return out;
}

std::vector<std::pair<std::string, ManifestRecord>> Index::all_manifests(const ReadTxn& t) const {
  std::vector<std::pair<std::string, ManifestRecord>> out;
  impl_->each(raw(t), impl_->manifests, [&](std::string_view k, std::string_view v) {
    if (auto m = decode_manifest(v)) out.emplace_back(std::string(k), std::move(*m));
  });
  return out;
}

std::vector<std::pair<std::string, BlobRecord>> Index::all_blobs(const ReadTxn& t) const {
  std::vector<std::pair<std::string, BlobRecord>> out;
  impl_->each(raw(t), impl_->blobs, [&](std::string_view k, std::string_view v) {
    if (auto b = decode_blob(v)) out.emplace_back(std::string(k), *b);
  });
  return out;
}

std::vector<BlobLink> Index::all_links(const ReadTxn& t) const {
  std::vector<BlobLink> out;
  impl_->each(raw(t), impl_->links, [&](std::string_view k, std::string_view) {
    std::string_view repo, digest;
    if (split_key(k, repo, digest)) out.push_back({std::string(repo), std::string(digest)});
  });
  return out;
}

std::vector<std::pair<std::string, int64_t>> Index::all_access(const ReadTxn& t) const {
  std::vector<std::pair<std::string, int64_t>> out;
  impl_->each(raw(t), impl_->access, [&](std::string_view k, std::string_view v) {
    if (auto when = decode_i64(v)) out.emplace_back(std::string(k), *when);
  });
  return out;
}

// ---- update ----

bool Index::Update::remove_from_repo(std::string_view repo, std::string_view digest) {
  return index_.impl_->remove_from_repo(raw(view_), repo, digest);
}

bool Index::Update::remove_manifest_record(std::string_view digest) {
  const auto& im = *index_.impl_;
  lmdb::del(raw(view_), im.access, digest);
  return lmdb::del(raw(view_), im.manifests, digest);
}

bool Index::Update::remove_blob_record(std::string_view digest, const std::vector<std::string>& linked_repos) {
  const auto& im = *index_.impl_;
  for (const auto& repo : linked_repos) lmdb::del(raw(view_), im.links, key(repo, digest));
  lmdb::del(raw(view_), im.access, digest);
  return lmdb::del(raw(view_), im.blobs, digest);
}

std::expected<void, std::string> Index::update(std::string_view op, const std::function<void(Update&)>& f) {
  return impl_->write(op, [&](MDB_txn* t) {
    Update u(*this, ReadTxn(t));
    struct Detach {  // the view must not abort the write transaction it borrows
      Update& u;
      ~Detach() { u.view_.txn_ = nullptr; }
    } detach{u};
    f(u);
  });
}

std::expected<void, std::string> Index::copy_to(const std::filesystem::path& dir) const {
  int rc = mdb_env_copy2(impl_->env.get(), dir.c_str(), MDB_CP_COMPACT);
  if (rc != MDB_SUCCESS)
    return std::unexpected("cannot copy the index to '" + dir.string() + "': " + mdb_strerror(rc));
  return {};
}

// ---- writes ----

std::expected<void, std::string> Index::link_blob(std::string_view repo, std::string_view digest, uint64_t size,
                                                  Origin origin) {
  return link_blobs({NewLink{std::string(repo), std::string(digest), size, origin}});
}

std::expected<void, std::string> Index::link_blobs(const std::vector<NewLink>& links) {
  return impl_->write("link_blob", [&](MDB_txn* t) {
    const int64_t now = now_seconds();
    for (const auto& l : links) {
      impl_->ensure_repo(t, l.repo, now);
      std::string_view v;
      std::optional<BlobRecord> rec;
      if (lmdb::get(t, impl_->blobs, l.digest, &v)) rec = decode_blob(v);
      const bool fresh = !rec;
      if (fresh) rec = BlobRecord{l.size, 0, l.origin, now};
      const bool linked = lmdb::put(t, impl_->links, key(l.repo, l.digest), "", MDB_NOOVERWRITE);
      if (linked) ++rec->refcount;
      if (fresh || linked) lmdb::put(t, impl_->blobs, l.digest, encode(*rec));
      lmdb::put(t, impl_->access, l.digest, encode_i64(now));
    }
  });
}

std::expected<bool, std::string> Index::unlink_blob(std::string_view repo, std::string_view digest) {
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

std::expected<void, std::string> Index::put_manifest(std::string_view repo, std::string_view digest,
                                                     const ManifestRecord& rec, std::optional<std::string_view> tag) {
  return impl_->write("put_manifest", [&](MDB_txn* t) { impl_->store_manifest(t, repo, digest, rec, tag); });
}

std::expected<std::optional<std::string>, std::string> Index::put_manifest_checked(
    std::string_view repo, std::string_view digest, const ManifestRecord& rec, std::optional<std::string_view> tag,
    const std::vector<std::string>& required) {
  return impl_->write("put_manifest", [&](MDB_txn* t) -> std::optional<std::string> {
    for (const auto& d : required)
      if (!lmdb::get(t, impl_->links, key(repo, d), nullptr) && !lmdb::get(t, impl_->repo_manifests, key(repo, d), nullptr))
        return d;
    impl_->store_manifest(t, repo, digest, rec, tag);
    return std::nullopt;
  });
}

void Index::Impl::store_manifest(MDB_txn* t, std::string_view repo, std::string_view digest, const ManifestRecord& rec,
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

std::expected<bool, std::string> Index::delete_tag(std::string_view repo, std::string_view tag) {
  return impl_->write("delete_tag", [&](MDB_txn* t) { return lmdb::del(t, impl_->tags, key(repo, tag)); });
}

std::expected<bool, std::string> Index::delete_manifest(std::string_view repo, std::string_view digest) {
  return impl_->write("delete_manifest", [&](MDB_txn* t) { return impl_->remove_from_repo(t, repo, digest); });
}

std::expected<void, std::string> Index::put_upload(std::string_view uuid, const UploadRecord& rec) {
  return impl_->write("put_upload", [&](MDB_txn* t) { lmdb::put(t, impl_->uploads, uuid, encode(rec)); });
}

std::expected<void, std::string> Index::delete_upload(std::string_view uuid) {
  return impl_->write("delete_upload", [&](MDB_txn* t) { lmdb::del(t, impl_->uploads, uuid); });
}

std::expected<void, std::string> Index::touch(const std::vector<std::pair<std::string, int64_t>>& accesses) {
  if (accesses.empty()) return {};
  return impl_->write("touch", [&](MDB_txn* t) {
    for (const auto& [digest, when] : accesses) lmdb::put(t, impl_->access, digest, encode_i64(when));
  });
}

std::expected<void, std::string> Index::put_tags(const std::vector<TagEntry>& entries) {
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
