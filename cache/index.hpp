#pragma once
// The index seam: repositories, tags, manifests, blobs, per-repository links, referrers, upload
// sessions and last-access times. Every mutation is one transaction, and writers are serialized (the
// publication rule of cache/publish.hpp relies on it). Implementations: cache/index_lmdb.hpp (LMDB
// under <root>/index, the embedded default) and cache/pg/ (PostgreSQL, shared by several fronts).
// Thread-safety: any thread may read or write. Reads take a ReadTxn (a consistent snapshot); values
// returned are copies (safe after the txn ends). An index whose calls wait on the network says so
// with blocks(): callers on the event loop then run them on the work pool.
#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wharf::cache {

enum class Origin : uint8_t { Pushed = 0, Proxied = 1 };

// Which blob backend holds a blob's bytes (cache/blob_backend.hpp); records written before backends
// existed read as Filesystem.
enum class Backend : uint8_t { Filesystem = 0, S3 = 1 };

struct BlobRecord {
  uint64_t size = 0;
  uint32_t refcount = 0;  // number of repositories linking this blob
  Origin origin = Origin::Pushed;
  int64_t created = 0;    // unix seconds
  Backend backend = Backend::Filesystem;
};

struct ManifestRecord {
  std::string media_type;
  uint64_t size = 0;
  std::vector<std::string> blobs;      // config + layer digests ("sha256:...")
  std::vector<std::string> children;   // child manifest digests (indexes)
  std::string subject;                 // subject digest or empty
  std::string artifact_type;           // for referrers
  std::string annotations_json;        // for referrers (serialized object or empty)
  Origin origin = Origin::Pushed;
  int64_t created = 0;
};

struct Referrer {
  std::string digest;
  std::string media_type;
  uint64_t size = 0;
  std::string artifact_type;
  std::string annotations_json;
};

// One tag assignment for Index::put_tags.
struct TagEntry {
  std::string repo;
  std::string tag;
  std::string digest;
};

// One manifest's membership in a repository (table repo_manifests).
struct RepoManifest {
  std::string repo;
  std::string digest;
  int64_t added = 0;  // unix seconds when it was put in the repository
};

// One blob link (table links): `digest` is visible in `repo`.
struct BlobLink {
  std::string repo;
  std::string digest;
};

struct UploadRecord {
  std::string repo;
  int64_t started = 0;  // unix seconds
};

// The index interface. Calls that fail for reasons of the store itself (disk full, connection lost)
// return the message in std::expected; reads throw std::runtime_error when the store cannot answer.
class Index {
 public:
  virtual ~Index() = default;
  Index() = default;
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  // A read-only snapshot; released in its destructor. Move-only. The handle is the implementation's.
  class ReadTxn {
   public:
    // A snapshot `handle` that `owner` releases (end_read) when this is destroyed; a null owner only
    // borrows the handle (a view of a write transaction).
    ReadTxn(const Index* owner, void* handle) : owner_(owner), handle_(handle) {}
    ReadTxn(ReadTxn&& o) noexcept : owner_(o.owner_), handle_(std::exchange(o.handle_, nullptr)) {}
    ReadTxn& operator=(ReadTxn&& o) noexcept {
      if (this != &o) {
        release();
        owner_ = o.owner_;
        handle_ = std::exchange(o.handle_, nullptr);
      }
      return *this;
    }
    ~ReadTxn() { release(); }
    // The implementation's handle (an MDB_txn* for LMDB).
    void* raw() const { return handle_; }

   private:
    void release() noexcept {
      if (handle_ && owner_) owner_->end_read(handle_);
      handle_ = nullptr;
    }
    const Index* owner_ = nullptr;
    void* handle_ = nullptr;
  };
  // Begins a read snapshot; throws std::runtime_error if the store cannot.
  virtual ReadTxn read() const = 0;

  // What this index is, for health and logs ("lmdb", "postgresql").
  virtual std::string_view kind() const = 0;
  // True if calls wait on the network: callers on the event loop must run them on the work pool.
  virtual bool blocks() const { return false; }
  // Claims `key` for `owner` (one front) in the whole fleet of fronts sharing this index for `window`:
  // true when the last claim is `owner`'s own (a renewal) or older than `window` (the caller does the
  // work, e.g. asks the upstream), false when another front claimed it within the window. An index of
  // one process has no fleet: always true. Fails if the index does.
  virtual std::expected<bool, std::string> claim(std::string_view /*key*/, std::string_view /*owner*/,
                                                 std::chrono::milliseconds /*window*/) {
    return true;
  }
  // Who made the last claim on `key` (its owner string), nullopt when nobody did; an index of one
  // process has no fleet: always nullopt. Fails if the index does.
  virtual std::expected<std::optional<std::string>, std::string> claim_holder(std::string_view /*key*/) const {
    return std::nullopt;
  }

  // A fleet-wide maintenance lock taken by try_maintenance_lock(); released when destroyed (and by the
  // database itself if the process holding it dies).
  class MaintenanceLock {
   public:
    virtual ~MaintenanceLock() = default;
  };
  // Takes, without waiting, the one lock that garbage collection and eviction hold for a run, so that in
  // a fleet of fronts sharing this index only one runs at a time: the holder, or nullptr when another
  // process holds it. An index of one process has no fleet: always granted (the process keeps its own
  // runs apart). Fails if the index does.
  virtual std::expected<std::unique_ptr<MaintenanceLock>, std::string> try_maintenance_lock() {
    return std::make_unique<MaintenanceLock>();
  }
  // Removes the claims (claim()) last taken or renewed more than `age` ago; how many. An index of one
  // process keeps none: 0. Fails if the index does.
  virtual std::expected<size_t, std::string> expire_claims(std::chrono::seconds /*age*/) { return size_t(0); }

  // ---- reads ----
  virtual bool repo_exists(const ReadTxn&, std::string_view repo) const = 0;
  virtual std::optional<BlobRecord> blob(const ReadTxn&, std::string_view digest) const = 0;
  virtual bool blob_linked(const ReadTxn&, std::string_view repo, std::string_view digest) const = 0;
  virtual std::optional<std::string> tag(const ReadTxn&, std::string_view repo, std::string_view tag) const = 0;
  virtual std::optional<ManifestRecord> manifest(const ReadTxn&, std::string_view digest) const = 0;
  virtual bool manifest_in_repo(const ReadTxn&, std::string_view repo, std::string_view digest) const = 0;
  // Tags of `repo` sorted bytewise, strictly after `last` (empty: from the start), at most `n` (0: no limit).
  // *more is set when further tags exist.
  virtual std::vector<std::string> tags(const ReadTxn&, std::string_view repo, std::string_view last, size_t n,
                                        bool* more) const = 0;
  // Repository names sorted bytewise, same paging rules.
  virtual std::vector<std::string> repos(const ReadTxn&, std::string_view last, size_t n, bool* more) const = 0;
  // Manifests in `repo` whose subject is `subject`, by digest.
  virtual std::vector<Referrer> referrers(const ReadTxn&, std::string_view repo, std::string_view subject) const = 0;
  virtual std::optional<UploadRecord> upload(const ReadTxn&, std::string_view uuid) const = 0;
  virtual std::optional<int64_t> last_access(const ReadTxn&, std::string_view digest) const = 0;

  // ---- writes: each is one committed (durable) transaction ----
  // Links the stored blob `digest` into `repo` (creating the repo) and sets its last access to now;
  // linking twice is a no-op. Fails, writing nothing, if the blob has no record (never stored, or
  // collected since the caller looked): records are created only with their file, by cache/publish.hpp.
  // `size` and `origin` are not used (the record's own are kept).
  std::expected<void, std::string> link_blob(std::string_view repo, std::string_view digest, uint64_t size,
                                             Origin origin) {
    return link_blobs({NewLink{std::string(repo), std::string(digest), size, origin}});
  }
  // link_blob() for several blobs in one transaction; fails for all if one has no record.
  struct NewLink {
    std::string repo, digest;
    uint64_t size = 0;
    Origin origin = Origin::Pushed;
  };
  virtual std::expected<void, std::string> link_blobs(const std::vector<NewLink>& links) = 0;
  // Removes the link of `digest` in `repo` (refcount--); false if not linked. The record stays at refcount 0 (GC removes it).
  virtual std::expected<bool, std::string> unlink_blob(std::string_view repo, std::string_view digest) = 0;
  // Stores the manifest record (if new; origin/created of the first put are kept), puts it in `repo`
  // (visible through manifest_in_repo, not blob_linked), points `tag` at it when given, and registers it
  // as a referrer of its subject. One transaction; nothing is written on failure.
  virtual std::expected<void, std::string> put_manifest(std::string_view repo, std::string_view digest,
                                                        const ManifestRecord& rec,
                                                        std::optional<std::string_view> tag) = 0;
  // As put_manifest, but first checks inside the same transaction that every digest in `required` is
  // still a blob linked in `repo` or a manifest of `repo` (a concurrent garbage collection may have
  // removed it since the caller looked): returns the first missing digest, writing nothing, or nullopt.
  virtual std::expected<std::optional<std::string>, std::string> put_manifest_checked(
      std::string_view repo, std::string_view digest, const ManifestRecord& rec, std::optional<std::string_view> tag,
      const std::vector<std::string>& required) = 0;
  // Removes tag only; false if absent.
  virtual std::expected<bool, std::string> delete_tag(std::string_view repo, std::string_view tag) = 0;
  // Removes the manifest from `repo`: every tag of `repo` pointing at it and its referrer entry. False if absent.
  virtual std::expected<bool, std::string> delete_manifest(std::string_view repo, std::string_view digest) = 0;
  virtual std::expected<void, std::string> put_upload(std::string_view uuid, const UploadRecord& rec) = 0;
  virtual std::expected<void, std::string> delete_upload(std::string_view uuid) = 0;
  // All upload sessions (for purging).
  virtual std::vector<std::pair<std::string, UploadRecord>> uploads(const ReadTxn&) const = 0;
  // Records last-access times for many digests in one transaction (batched by the caller).
  virtual std::expected<void, std::string> touch(const std::vector<std::pair<std::string, int64_t>>& accesses) = 0;
  // ---- whole-table enumeration (GC, eviction, backup); each walks one table in key order ----
  virtual std::vector<TagEntry> all_tags(const ReadTxn&) const = 0;
  virtual std::vector<RepoManifest> all_repo_manifests(const ReadTxn&) const = 0;
  virtual std::vector<std::pair<std::string, ManifestRecord>> all_manifests(const ReadTxn&) const = 0;
  virtual std::vector<std::pair<std::string, BlobRecord>> all_blobs(const ReadTxn&) const = 0;
  virtual std::vector<BlobLink> all_links(const ReadTxn&) const = 0;
  // Every recorded last-access time, by digest.
  virtual std::vector<std::pair<std::string, int64_t>> all_access(const ReadTxn&) const = 0;

  // Removals and additions available inside update(); each returns false if there was nothing to do.
  class Update {
   public:
    virtual ~Update() = default;
    // The write transaction, usable wherever a ReadTxn is asked for (sees this update's own changes).
    virtual const ReadTxn& txn() const = 0;
    // Removes the manifest from `repo` (as delete_manifest does).
    virtual bool remove_from_repo(std::string_view repo, std::string_view digest) = 0;
    // Removes the manifest record and its last-access entry (not its repository memberships).
    virtual bool remove_manifest_record(std::string_view digest) = 0;
    // Removes the blob record, its last-access entry and the given links of it.
    virtual bool remove_blob_record(std::string_view digest, const std::vector<std::string>& linked_repos) = 0;
    // Removes the tag `tag` of `repo`; false if absent.
    virtual bool remove_tag(std::string_view repo, std::string_view tag) = 0;
    // Writes the blob record of `digest` as given (for `wharf check --repair`: refcounts, re-indexing).
    virtual void put_blob_record(std::string_view digest, const BlobRecord& rec) = 0;
    // True if `digest` has a blob or a manifest record.
    virtual bool has_record(std::string_view digest) const = 0;
    // Records blob `digest` (creating its record with `size`/`origin` if new) and links it into `repo`
    // (creating the repo); linking twice is a no-op. Sets last access to now. Only for the file's publisher.
    // `backend` names the store that holds the bytes (kept from the first record).
    virtual void add_blob(std::string_view repo, std::string_view digest, uint64_t size, Origin origin,
                          Backend backend = Backend::Filesystem) = 0;
    // The first digest of `required` that is neither a blob linked in `repo` nor a manifest of `repo`.
    virtual std::optional<std::string> first_missing(std::string_view repo,
                                                     const std::vector<std::string>& required) const = 0;
    // put_manifest's writes, inside this transaction.
    virtual void add_manifest(std::string_view repo, std::string_view digest, const ManifestRecord& rec,
                              std::optional<std::string_view> tag) = 0;
  };
  // Runs `f` in one write transaction (serialized with every other writer) and commits it if `f`
  // returns normally; nothing is written if the store fails (the error names `op`). Other exceptions
  // from `f` abort the transaction and propagate.
  virtual std::expected<void, std::string> update(std::string_view op, const std::function<void(Update&)>& f) = 0;

  // Writes a consistent copy of the index into the existing empty directory `dir` (backup); fails with
  // a message where the implementation has its own tools for that (PostgreSQL: pg_dump).
  virtual std::expected<void, std::string> copy_to(const std::filesystem::path& dir) const = 0;

  // Points each entry's tag at its digest (creating repositories) in one transaction, for bulk imports;
  // does not check that the manifests exist. Nothing is written on failure.
  virtual std::expected<void, std::string> put_tags(const std::vector<TagEntry>& entries) = 0;

  // Removes the record `key` of table `table` ("blobs", "manifests", ...) whatever its value; false if
  // absent, the table is unknown, or the store keeps typed rows only. For `wharf check --repair`.
  virtual std::expected<bool, std::string> drop_raw(std::string_view table, std::string_view key) = 0;
  // The raw keys of every record of `table` that does not decode (as the open-time check judges).
  virtual std::vector<std::string> undecodable(std::string_view table) const = 0;

 protected:
  // Releases a snapshot handle made by read().
  virtual void end_read(void* handle) const noexcept = 0;
};

}  // namespace wharf::cache
