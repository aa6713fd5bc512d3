#pragma once
// Online backup and offline restore of a store (<root>/index and <root>/blobs).
// A backup directory holds index/data.mdb (a compacted LMDB copy, consistent as of one moment) and
// blobs/<algo>/<2 hex>/<hex> for every blob and manifest that copy records, hard-linked from the
// store when on the same filesystem, else copied. Blobs are immutable and content-addressed, so
// linking them after the copy gives a consistent snapshot even while the server keeps writing.
//
// With the blobs in a remote backend (storage.s3) the bucket already keeps them durably: a backup holds
// index/data.mdb, and every blob it records is checked to be in the bucket (HEAD; missing ones are
// reported). With IncludeBlobs::Yes the blobs are also downloaded into blobs/ (verified as they
// stream), the same layout as a filesystem backup, so the backup survives the bucket too.
// Restoring into S3 copies the index, then uploads from the backup's blobs/ every recorded blob the
// bucket lacks (verified first) and marks every record as held by the bucket: a filesystem backup
// restored this way moves a store onto S3.
#include <cstdint>
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

#include "cache/blob_backend.hpp"
#include "cache/fs/fs_store.hpp"
#include "cache/index.hpp"

namespace wharf::cache {

struct BackupResult {
  size_t linked = 0;                  // files hard-linked
  size_t copied = 0;                  // files copied (another filesystem)
  uint64_t bytes = 0;                 // their total size
  std::vector<std::string> missing;   // digests recorded in the copy whose file was gone from the store
  size_t missing_referenced = 0;      // of those, how many a manifest in the copy references
  std::vector<std::string> damaged;   // downloaded or uploaded blobs whose content does not hash to their digest
  size_t present = 0;                 // remote: recorded blobs found in the bucket as they are
};

enum class IncludeBlobs { No, Yes };

// Backs up the live `index` and the blobs it records in the remote `store` (see above) into `dir`
// (created; must be empty if it exists). Fails with a message naming the path on an I/O or LMDB
// failure; a missing or damaged blob is reported, not fatal.
std::expected<BackupResult, std::string> backup_remote(const Index& index, const BlobBackend& store,
                                                       const std::filesystem::path& dir, IncludeBlobs);

// Backs up the live `index` and `store` into `dir` (created; must be empty if it exists). Fails with a
// message naming the path on an I/O or LMDB failure; a missing store file is reported, not fatal.
std::expected<BackupResult, std::string> backup(const Index& index, const FsBlobStore& store,
                                                const std::filesystem::path& dir);

enum class Force { No, Yes };

// Puts the backup's index under `root` (root/index/data.mdb) and nothing else. Refuses a non-empty
// `root` unless Force::Yes, which replaces it; fails naming the path when `dir` is not a backup.
std::expected<void, std::string> restore_index(const std::filesystem::path& dir, const std::filesystem::path& root,
                                               Force);

// After restore_index: makes `store` (remote) hold every blob `index` records, uploading the ones it
// lacks from the backup's blobs/ (each verified first), and records `store` as their backend. A blob
// found nowhere is reported in `missing`. Fails on an index or S3 failure, naming it. Blocking.
std::expected<BackupResult, std::string> restore_blobs(const std::filesystem::path& dir, Index& index,
                                                       const BlobBackend& store);

// Fills `root` from the backup in `dir`. Refuses a non-empty `root` unless Force::Yes, which replaces
// it. Fails with a message naming the path (nothing is changed when `dir` is not a backup).
std::expected<BackupResult, std::string> restore(const std::filesystem::path& dir, const std::filesystem::path& root,
                                                 Force);

}  // namespace wharf::cache
