#pragma once
// Garbage collection of the store: mark what tagged (and, unless asked otherwise, untagged) manifests
// reach, then sweep the rest: index records first (one write transaction that re-marks, so whatever
// was pushed meanwhile is seen), blob files only once the index no longer references them.
//
// Grace rule: a manifest or blob created, put into a repository, linked, mounted or read less than
// `grace` ago is never collected, nor is anything it references; nor is an unindexed file in blobs/
// modified less than `grace` ago. Files are only unlinked under the index write lock and only when
// they have no record, so a publication in flight is never swept, however old its file (publish.hpp). The offline verb uses 0; the server uses storage.gc.grace (default kOnlineGcGrace), which must
// exceed the time a client takes between uploading a blob and pushing the manifest that uses it.
#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cache/blob_backend.hpp"
#include "cache/index.hpp"
#include "src/config/config.hpp"

namespace wharf::cache {

inline constexpr std::chrono::seconds kOnlineGcGrace{3600};
// Fleet claims (Index::claim) last renewed longer ago than this are removed by every collection that
// writes: every claim window is far shorter, so such a row only keeps a dead front's key.
inline constexpr std::chrono::seconds kClaimMaxAge{24 * 3600};

enum class DryRun { No, Yes };
enum class Untagged { Keep, Delete };

struct GcOptions {
  DryRun dry_run = DryRun::No;
  Untagged untagged = Untagged::Keep;
  std::chrono::seconds grace{0};
  int64_t now = 0;  // unix seconds; 0: the clock
  std::vector<config::RetentionRule> retention;  // storage.retention: tags beyond each rule's keep go
  std::vector<std::string> immutable_tags;       // auth.immutabletags ("REPO_GLOB:TAG_GLOB"): never removed
};

struct GcResult {
  size_t tags_deleted = 0;        // removed by storage.retention
  size_t manifests_untagged = 0;  // removed from a repository (--delete-untagged, or left untagged by retention)
  size_t manifests_deleted = 0;   // manifest records removed
  size_t blobs_deleted = 0;       // blob records removed
  size_t files_deleted = 0;       // files removed from blobs/ (blobs, manifests, strays)
  uint64_t bytes_freed = 0;       // their sizes
  size_t claims_deleted = 0;      // fleet claims (Index::claim) older than kClaimMaxAge
  std::vector<std::string> deleted;  // "blob sha256:..", "manifest sha256:..", "untag repo@sha256:..", "tag repo:tag"
};

// Everything the collector and the evictor look at, read in one transaction.
struct Snapshot {
  std::vector<TagEntry> tags;
  std::vector<RepoManifest> repo_manifests;
  std::map<std::string, ManifestRecord> manifests;
  std::map<std::string, BlobRecord> blobs;
  std::map<std::string, std::vector<std::string>> links;  // digest → repositories linking it
  std::map<std::string, int64_t> access;
  // Newest of created / last access of `digest` (0 if unknown).
  int64_t touched(const std::string& digest) const;
};
// Reads the snapshot; throws std::runtime_error (lmdb::Error) if LMDB fails.
Snapshot load_snapshot(const Index&, const Index::ReadTxn&);

// What storage.retention removes. Each tag is governed by the first rule whose repository and tag patterns
// both match it; per repository and rule, the `keep` tags pushed last (the time their manifest was put in
// the repository; ties: the lexically greater tag first) stay and the others go. Immutable tags are
// neither counted nor removed. A manifest left with no tag in its repository by this, and not a child of
// a manifest still tagged there, is taken out of the repository too.
struct RetentionPlan {
  std::vector<std::pair<std::string, std::string>> tags;   // (repo, tag)
  std::set<std::pair<std::string, std::string>> untag;     // (repo, digest)
};
RetentionPlan plan_retention(const Snapshot&, const std::vector<config::RetentionRule>&,
                             const std::vector<std::string>& immutable_tags);

// What survives: manifests in repositories, manifest records and blob records.
struct Marks {
  std::set<std::pair<std::string, std::string>> in_repo;  // (repo, digest)
  std::set<std::string> manifests;
  std::set<std::string> blobs;
};
// Marks from the roots: tagged manifests; every manifest in a repository (Untagged::Keep) or only those
// put there at or after `young_since` (Untagged::Delete); manifest records touched at or after
// `young_since`. Follows children, configs and layers; keeps a manifest whose subject is kept.
// `skip` entries (repo, digest) are treated as already removed from their repositories.
Marks mark(const Snapshot&, Untagged, int64_t young_since,
           const std::set<std::pair<std::string, std::string>>& skip = {});

// Total size of the blob and manifest records (what blobs/ holds, bar strays).
uint64_t stored_bytes(const Snapshot&);

// Removes the files of `digests` from blobs/, each only if the index has neither a blob nor a manifest
// record for it, checked and unlinked inside an index write transaction (batches of 256), so no
// publication (cache/publish.hpp) can interleave; adds to `result`. Files that cannot be removed, and
// every file once the index cannot be written, are skipped.
void remove_unindexed(Index&, const BlobBackend&, const std::vector<std::string>& digests, GcResult& result);
// remove_unindexed of the files of the records a sweep removed.
void remove_files(Index&, const BlobBackend&, const std::vector<std::string>& digests, GcResult& result);
// Removes (DryRun::No, through remove_unindexed) or only counts every file in blobs/ modified before
// `older_than` (unix seconds) whose digest the index does not know (or that is listed in `gone`, for a
// dry run). The age only spares strays for inspection; safety against publications comes from the lock.
void sweep_strays(Index&, const BlobBackend&, int64_t older_than, DryRun, const std::set<std::string>& gone,
                  GcResult& result);

// Collects garbage, then (unless a dry run) removes claims older than kClaimMaxAge (a failure there is
// left to the next run); fails only if the index cannot be read or written (files that cannot be
// removed are skipped). Takes no fleet lock: callers hold Index::try_maintenance_lock(). Blocking: call
// from a worker thread or the offline verb.
std::expected<GcResult, std::string> collect(Index&, const BlobBackend&, const GcOptions&);

}  // namespace wharf::cache
