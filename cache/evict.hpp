#pragma once
// The size-bounded cache: when the store holds more than the bound, proxied manifests are removed
// from their cached repositories least recently used first, then the proxied blobs and manifest
// records nothing kept references, until the total is within the bound. Pushed content is never
// evicted (it counts towards the total all the same). Blob files go only after the index commit; a
// client still reading an evicted file keeps its open descriptor and receives every byte.
#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include "cache/blob_backend.hpp"
#include "cache/gc.hpp"
#include "cache/index.hpp"

namespace wharf::cache {

struct EvictResult {
  uint64_t bytes_before = 0;       // stored bytes (records) before eviction
  uint64_t bytes_after = 0;        // and after
  size_t manifests_evicted = 0;    // (repo, manifest) entries removed from cached repositories
  GcResult swept;                  // records and files removed
};

// Bytes of the blob and manifest records (what storage.cache.maxsize bounds), read in one snapshot;
// fails if the index cannot be read.
std::expected<uint64_t, std::string> stored_total(const Index&);

// Evicts until at most `max_bytes` are stored (nothing if already within, or if max_bytes is 0).
// Fails only if the index cannot be read or written. Blocking: call from a worker thread.
std::expected<EvictResult, std::string> evict(Index&, const BlobBackend&, uint64_t max_bytes);

}  // namespace wharf::cache
