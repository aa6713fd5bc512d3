#pragma once
// The LMDB index under <root>/index: repositories, tags, manifests, blobs, per-repository links,
// referrers, upload sessions and last-access times. Every mutation is one write transaction.
// Thread-safety: any thread may read or write (env opened with MDB_NOTLS); LMDB serializes writers.
// Reads take a ReadTxn; values returned are copies (safe after the txn ends).
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

// What Index::open does with records that do not decode.
enum class Damaged { Refuse, Open };

class Index {
 public:
  // Opens (creating) the LMDB environment in `dir` with the given map size, after checking it: data.mdb
  // must hold every page its meta page names, the schema record must be wharf's (it is written into a
  // fresh or older index), and every record must decode (all are read, up to kCheckLimit). Fails with
  // a message naming the problems; with Damaged::Open, records that do not decode are only listed in
  // damage() (for `wharf check --repair`), while a truncated file or a foreign schema still fail.
  static std::expected<std::unique_ptr<Index>, std::string> open(const std::filesystem::path& dir,
                                                                 size_t map_size = size_t(64) << 30,
                                                                 Damaged damaged = Damaged::Refuse);
  // Records read by the open-time check, at most.
  static constexpr size_t kCheckLimit = size_t(8) << 20;
  // The problems the open-time check found (only with Damaged::Open; empty when sound).
  const std::vector<std::string>& damage() const { return damage_; }
  ~Index();
  // The environment and its tables (opaque outside cache/index*.cpp: cache/index_impl.hpp).
  struct Impl;
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  // A read-only snapshot; aborts (releases) in its destructor. Move-only.
  class ReadTxn {
   public:
    ReadTxn(ReadTxn&&) noexcept;
    ReadTxn& operator=(ReadTxn&&) noexcept;
    ~ReadTxn();
    void* raw() const { return txn_; }  // MDB_txn*
   private:
    friend class Index;
    explicit ReadTxn(void* txn) : txn_(txn) {}
    void* txn_ = nullptr;
  };
  // Begins a read transaction; throws std::runtime_error only if LMDB itself fails.
  ReadTxn read() const;

  // ---- reads ----
  bool repo_exists(const ReadTxn&, std::string_view repo) const;
  std::optional<BlobRecord> blob(const ReadTxn&, std::string_view digest) const;
  bool blob_linked(const ReadTxn&, std::string_view repo, std::string_view digest) const;
  std::optional<std::string> tag(const ReadTxn&, std::string_view repo, std::string_view tag) const;
  std::optional<ManifestRecord> manifest(const ReadTxn&, std::string_view digest) const;
  bool manifest_in_repo(const ReadTxn&, std::string_view repo, std::string_view digest) const;
  // Tags of `repo` sorted lexically, strictly after `last` (empty: from the start), at most `n` (0: no limit).
  // *more is set when further tags exist.
  std::vector<std::string> tags(const ReadTxn&, std::string_view repo, std::string_view last, size_t n,
                                bool* more) const;
  // Repository names sorted lexically, same paging rules.
  std::vector<std::string> repos(const ReadTxn&, std::string_view last, size_t n, bool* more) const;
  // Manifests in `repo` whose subject is `subject`.
  std::vector<Referrer> referrers(const ReadTxn&, std::string_view repo, std::string_view subject) const;
  std::optional<UploadRecord> upload(const ReadTxn&, std::string_view uuid) const;
  std::optional<int64_t> last_access(const ReadTxn&, std::string_view digest) const;

  // ---- writes: each is one committed (durable) write transaction ----
  // Links the stored blob `digest` into `repo` (creating the repo) and sets its last access to now;
  // linking twice is a no-op. Fails, writing nothing, if the blob has no record (never stored, or
  // collected since the caller looked): records are created only with their file, by cache/publish.hpp.
  // `size` and `origin` are not used (the record's own are kept).
  std::expected<void, std::string> link_blob(std::string_view repo, std::string_view digest, uint64_t size,
                                             Origin origin);
  // link_blob() for several blobs in one transaction; fails for all if one has no record.
  struct NewLink {
    std::string repo, digest;
    uint64_t size = 0;
    Origin origin = Origin::Pushed;
  };
  std::expected<void, std::string> link_blobs(const std::vector<NewLink>& links);
  // Removes the link of `digest` in `repo` (refcount--); false if not linked. The record stays at refcount 0 (GC removes it).
  std::expected<bool, std::string> unlink_blob(std::string_view repo, std::string_view digest);
  // Stores the manifest record (if new; origin/created of the first put are kept), puts it in `repo`
  // (visible through manifest_in_repo, not blob_linked), points `tag` at it when given, and registers it
  // as a referrer of its subject. One transaction; nothing is written on failure.
  std::expected<void, std::string> put_manifest(std::string_view repo, std::string_view digest,
                                                const ManifestRecord& rec, std::optional<std::string_view> tag);
  // As put_manifest, but first checks inside the same transaction that every digest in `required` is
  // still a blob linked in `repo` or a manifest of `repo` (a concurrent garbage collection may have
  // removed it since the caller looked): returns the first missing digest, writing nothing, or nullopt.
  std::expected<std::optional<std::string>, std::string> put_manifest_checked(
      std::string_view repo, std::string_view digest, const ManifestRecord& rec, std::optional<std::string_view> tag,
      const std::vector<std::string>& required);
  // Removes tag only; false if absent.
  std::expected<bool, std::string> delete_tag(std::string_view repo, std::string_view tag);
  // Removes the manifest from `repo`: every tag of `repo` pointing at it and its referrer entry. False if absent.
  std::expected<bool, std::string> delete_manifest(std::string_view repo, std::string_view digest);
  std::expected<void, std::string> put_upload(std::string_view uuid, const UploadRecord& rec);
  std::expected<void, std::string> delete_upload(std::string_view uuid);
  // All upload sessions (for purging).
  std::vector<std::pair<std::string, UploadRecord>> uploads(const ReadTxn&) const;
  // Records last-access times for many digests in one transaction (batched by the caller).
  std::expected<void, std::string> touch(const std::vector<std::pair<std::string, int64_t>>& accesses);
  // ---- whole-table enumeration (GC, eviction, backup); each walks one table in key order ----
  std::vector<TagEntry> all_tags(const ReadTxn&) const;
  std::vector<RepoManifest> all_repo_manifests(const ReadTxn&) const;
  std::vector<std::pair<std::string, ManifestRecord>> all_manifests(const ReadTxn&) const;
  std::vector<std::pair<std::string, BlobRecord>> all_blobs(const ReadTxn&) const;
  std::vector<BlobLink> all_links(const ReadTxn&) const;
  // Every recorded last-access time, by digest.
  std::vector<std::pair<std::string, int64_t>> all_access(const ReadTxn&) const;

  // Removals available inside update(); each returns false if there was nothing to remove.
  class Update {
   public:
    // The write transaction, usable wherever a ReadTxn is asked for (sees this update's own changes).
    const ReadTxn& txn() const { return view_; }
    // Removes the manifest from `repo` (as delete_manifest does).
    bool remove_from_repo(std::string_view repo, std::string_view digest);
    // Removes the manifest record and its last-access entry (not its repository memberships).
    bool remove_manifest_record(std::string_view digest);
    // Removes the blob record, its last-access entry and the given links of it.
    bool remove_blob_record(std::string_view digest, const std::vector<std::string>& linked_repos);
    // Removes the tag `tag` of `repo`; false if absent.
    bool remove_tag(std::string_view repo, std::string_view tag);
    // Writes the blob record of `digest` as given (for `wharf check --repair`: refcounts, re-indexing).
    void put_blob_record(std::string_view digest, const BlobRecord& rec);
    // True if `digest` has a blob or a manifest record.
    bool has_record(std::string_view digest) const;
    // Records blob `digest` (creating its record with `size`/`origin` if new) and links it into `repo`
    // (creating the repo); linking twice is a no-op. Sets last access to now. Only for the file's publisher.
    // `backend` names the store that holds the bytes (kept from the first record).
    void add_blob(std::string_view repo, std::string_view digest, uint64_t size, Origin origin,
                  Backend backend = Backend::Filesystem);
    // The first digest of `required` that is neither a blob linked in `repo` nor a manifest of `repo`.
    std::optional<std::string> first_missing(std::string_view repo, const std::vector<std::string>& required) const;
    // put_manifest's writes, inside this transaction.
    void add_manifest(std::string_view repo, std::string_view digest, const ManifestRecord& rec,
                      std::optional<std::string_view> tag);

   private:
    friend class Index;
    Update(Index& index, ReadTxn view) : index_(index), view_(std::move(view)) {}
    Index& index_;
    ReadTxn view_;
  };
  // Runs `f` in one write transaction and commits it if `f` returns normally; nothing is written if
  // LMDB fails (the error names `op`). Other exceptions from `f` abort the transaction and propagate.
  std::expected<void, std::string> update(std::string_view op, const std::function<void(Update&)>& f);

  // Writes a compacted copy of the environment into the existing empty directory `dir`
  // (mdb_env_copy2 with MDB_CP_COMPACT, a consistent snapshot); the message names the problem.
  std::expected<void, std::string> copy_to(const std::filesystem::path& dir) const;

  // Points each entry's tag at its digest (creating repositories) in one transaction, for bulk imports;
  // does not check that the manifests exist. Nothing is written on failure.
  std::expected<void, std::string> put_tags(const std::vector<TagEntry>& entries);

 private:
  Index() = default;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> damage_;

 public:
  // Removes the record `key` of table `table` ("blobs", "manifests", ...) whatever its value; false if
  // absent or the table is unknown. For `wharf check --repair` of records that do not decode.
  std::expected<bool, std::string> drop_raw(std::string_view table, std::string_view key);
  // The raw keys of every record of `table` that does not decode (as the open-time check judges).
  std::vector<std::string> undecodable(std::string_view table) const;
};

}  // namespace wharf::cache
