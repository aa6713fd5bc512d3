// LRU eviction of proxied content, planned on a snapshot read under the write lock.
#include "cache/evict.hpp"

#include <algorithm>
#include <limits>
#include <set>
#include <tuple>

namespace wharf::cache {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

using Pair = std::pair<std::string, std::string>;

// Proxied records that `m` no longer reaches, and their total size.
struct Unreached {
  std::vector<std::string> manifests, blobs;
  uint64_t bytes = 0;
};

Unreached unreached(const Snapshot& s, const Marks& m) {
  Unreached u;
  for (const auto& [d, rec] : s.manifests) {
    if (rec.origin != Origin::Proxied || m.manifests.count(d)) continue;
    u.manifests.push_back(d);
    u.bytes += rec.size;
  }
  for (const auto& [d, rec] : s.blobs) {
    if (rec.origin != Origin::Proxied || m.blobs.count(d)) continue;
    u.blobs.push_back(d);
    u.bytes += rec.size;
  }
  return u;
}

}  // namespace

std::expected<uint64_t, std::string> stored_total(const Index& index) {
  try {
    auto txn = index.read();
    uint64_t total = 0;
    for (const auto& [d, b] : index.all_blobs(txn)) total += b.size;
    for (const auto& [d, m] : index.all_manifests(txn)) total += m.size;
    return total;
  } catch (const std::exception& e) {
    return std::unexpected(std::string("eviction: ") + e.what());
  }
}

std::expected<EvictResult, std::string> evict(Index& index, const BlobBackend& store, uint64_t max_bytes) {
  EvictResult result;
  if (max_bytes == 0) return result;
  auto total = stored_total(index);  // cheap check first: most runs find the cache within its bound
  if (!total) return std::unexpected(total.error());
  result.bytes_before = result.bytes_after = *total;
  if (*total <= max_bytes) return result;
  std::set<Pair> evicted;
  Unreached gone;
  auto done = index.update("eviction", [&](Index::Update& u) {
    Snapshot s = load_snapshot(index, u.txn());
    result.bytes_before = stored_bytes(s);
    // Proxied manifests in repositories, least recently used first.
    std::vector<std::tuple<int64_t, int64_t, Pair>> lru;
    for (const auto& rm : s.repo_manifests) {
      auto it = s.manifests.find(rm.digest);
      if (it == s.manifests.end() || it->second.origin != Origin::Proxied) continue;
      auto used = s.access.find(rm.digest);  // last access, else when it was cached
      lru.emplace_back(used != s.access.end() ? used->second : it->second.created, rm.added, Pair(rm.repo, rm.digest));
    }
    std::sort(lru.begin(), lru.end());
    gone = unreached(s, mark(s, Untagged::Keep, kNever, evicted));
    for (size_t i = 0; i < lru.size() && result.bytes_before - gone.bytes > max_bytes; ++i) {
      evicted.insert(std::get<2>(lru[i]));
      gone = unreached(s, mark(s, Untagged::Keep, kNever, evicted));
    }
    for (const auto& [repo, d] : evicted) u.remove_from_repo(repo, d);
    for (const auto& d : gone.manifests) u.remove_manifest_record(d);
    static const std::vector<std::string> none;
    for (const auto& d : gone.blobs) {
      auto it = s.links.find(d);
      u.remove_blob_record(d, it == s.links.end() ? none : it->second);
    }
    result.bytes_after = result.bytes_before - gone.bytes;
  });
  if (!done) return std::unexpected(done.error());
  result.manifests_evicted = evicted.size();
  result.swept.manifests_deleted = gone.manifests.size();
  result.swept.blobs_deleted = gone.blobs.size();
  std::vector<std::string> doomed = gone.manifests;
  doomed.insert(doomed.end(), gone.blobs.begin(), gone.blobs.end());
  remove_files(index, store, doomed, result.swept);
  return result;
}

}  // namespace wharf::cache
