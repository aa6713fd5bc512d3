// Publication of blobs and manifests: placement in the backend and index records under one write transaction.
#include "cache/publish.hpp"

#include <algorithm>

namespace wharf::cache {

std::vector<std::string> publish_blobs(Index& index, const BlobBackend& store, const std::vector<BlobPublication>& items) {
  std::vector<Placement> staged;
  for (const auto& item : items) staged.push_back(Placement{item.tmp, item.digest, item.size, Placement::IfDamaged::Keep});
  std::vector<std::string> errors = store.prepare(staged);  // the slow part, outside the lock
  if (std::all_of(errors.begin(), errors.end(), [](const std::string& e) { return !e.empty(); })) return errors;
  std::vector<bool> placed(items.size(), false);
  auto done = index.update("publish", [&](Index::Update& u) {
    std::vector<Placement> batch;
    std::vector<size_t> which;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!errors[i].empty()) continue;
      batch.push_back(Placement{items[i].tmp, items[i].digest, items[i].size, Placement::IfDamaged::Keep});
      which.push_back(i);
    }
    auto result = store.place(batch);  // a failed item is not durable: left as a stray, not indexed
    for (size_t j = 0; j < which.size(); ++j) {
      if (!result[j].empty()) errors[which[j]] = result[j];
      else placed[which[j]] = true;
    }
    for (size_t i = 0; i < items.size(); ++i)
      if (placed[i]) u.add_blob(items[i].repo, items[i].digest.str(), items[i].size, items[i].origin, store.kind());
  });
  if (!done) {
    for (size_t i = 0; i < items.size(); ++i)
      if (placed[i]) errors[i] = done.error();  // placed but not indexed: a stray the next GC removes
  }
  return errors;
}

std::expected<std::optional<std::string>, std::string> publish_manifest(Index& index, const BlobBackend& store,
                                                                        const ManifestPublication& m) {
  const Placement staged{m.tmp, m.digest, m.rec.size, Placement::IfDamaged::Replace};
  if (auto e = store.prepare({staged}); !e[0].empty()) return std::unexpected(e[0]);
  std::optional<std::string> missing;
  std::string failure;
  auto done = index.update("put_manifest", [&](Index::Update& u) {
    missing = u.first_missing(m.repo, m.required);
    if (missing) return;
    // A stored copy that does not hash to its digest (damaged) is replaced by this verified one.
    auto placed = store.place({staged});
    if (!placed[0].empty()) {
      failure = placed[0];
      return;
    }
    u.add_manifest(m.repo, m.digest.str(), m.rec,
                   m.tag ? std::optional<std::string_view>(*m.tag) : std::nullopt);
  });
  if (!done) return std::unexpected(done.error());
  if (!failure.empty()) return std::unexpected(failure);
  return missing;
}

std::expected<std::optional<std::string>, std::string> publish_manifest_bytes(Index& index, const BlobBackend& store,
                                                                              std::string_view bytes,
                                                                              ManifestPublication m) {
  auto tmp = store.stage(bytes);
  if (!tmp) return std::unexpected(tmp.error());
  m.tmp = *tmp;
  auto r = publish_manifest(index, store, m);
  store.discard(*tmp);  // still there unless placed
  return r;
}

}  // namespace wharf::cache
