#pragma once
// Online backup and offline restore of a store (<root>/index and <root>/blobs).
// A backup directory holds index/data.mdb (a compacted LMDB copy, consistent as of one moment) and
// blobs/<algo>/<2 hex>/<hex> for every blob and manifest that copy records, hard-linked from the
// store when on the same filesystem, else copied. Blobs are immutable and content-addressed, so
// linking them after the copy gives a consistent snapshot even while the server keeps writing.
#include <cstdint>
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

#include "cache/fs/fs_store.hpp"
#include "cache/index.hpp"

namespace wharf::cache {

struct BackupResult {
  size_t linked = 0;                  // files hard-linked
  size_t copied = 0;                  // files copied (another filesystem)
  uint64_t bytes = 0;                 // their total size
  std::vector<std::string> missing;   // digests recorded in the copy whose file was gone from the store
  size_t missing_referenced = 0;      // of those, how many a manifest in the copy references
};

// Backs up the live `index` and `store` into `dir` (created; must be empty if it exists). Fails with a
// message naming the path on an I/O or LMDB failure; a missing store file is reported, not fatal.
std::expected<BackupResult, std::string> backup(const Index& index, const FsBlobStore& store,
                                                const std::filesystem::path& dir);

enum class Force { No, Yes };

// Fills `root` from the backup in `dir`. Refuses a non-empty `root` unless Force::Yes, which replaces
// it. Fails with a message naming the path (nothing is changed when `dir` is not a backup).
std::expected<BackupResult, std::string> restore(const std::filesystem::path& dir, const std::filesystem::path& root,
                                                 Force);

}  // namespace wharf::cache
