// Publication of blobs and manifests: file placement and index records under one write transaction.
#include "cache/publish.hpp"

#include <unistd.h>

#include <algorithm>

namespace wharf::cache {
namespace {

namespace fs = std::filesystem;

// Adds `dir` to `dirs` unless it is there.
void note_dir(std::vector<fs::path>& dirs, const std::optional<fs::path>& dir) {
  if (dir && std::find(dirs.begin(), dirs.end(), *dir) == dirs.end()) dirs.push_back(*dir);
}

}  // namespace

std::vector<std::string> publish_blobs(Index& index, const BlobStore& store, const std::vector<BlobPublication>& items) {
  std::vector<fs::path> tmps;
  for (const auto& item : items) tmps.push_back(item.tmp);
  std::vector<std::string> errors = store.sync_files(tmps);  // the slow part, outside the lock
  if (std::all_of(errors.begin(), errors.end(), [](const std::string& e) { return !e.empty(); })) return errors;
  std::vector<bool> placed(items.size(), false);
  auto done = index.update("publish", [&](Index::Update& u) {
    std::vector<fs::path> dirs;  // directories that got a new entry
    for (size_t i = 0; i < items.size(); ++i) {
      if (!errors[i].empty()) continue;
      auto r = store.place(items[i].tmp, items[i].digest, items[i].size);
      if (!r) {
        errors[i] = r.error();
        continue;
      }
      placed[i] = true;
      note_dir(dirs, *r);
    }
    for (const auto& dir : dirs) {
      if (auto r = store.sync_dir(dir); !r) {
        for (size_t i = 0; i < items.size(); ++i)
          if (placed[i] && store.blob_path(items[i].digest).parent_path() == dir) {
            errors[i] = r.error();  // not durable: left as a stray, not indexed
            placed[i] = false;
          }
      }
    }
    for (size_t i = 0; i < items.size(); ++i)
      if (placed[i]) u.add_blob(items[i].repo, items[i].digest.str(), items[i].size, items[i].origin);
  });
  if (!done) {
    for (size_t i = 0; i < items.size(); ++i)
      if (placed[i]) errors[i] = done.error();  // placed but not indexed: a stray the next GC removes
  }
  return errors;
}

std::expected<std::optional<std::string>, std::string> publish_manifest(Index& index, const BlobStore& store,
                                                                        const ManifestPublication& m) {
  if (auto e = store.sync_files({m.tmp}); !e[0].empty()) return std::unexpected(e[0]);
  std::optional<std::string> missing;
  std::string failure;
  auto done = index.update("put_manifest", [&](Index::Update& u) {
    missing = u.first_missing(m.repo, m.required);
    if (missing) return;
    // A stored copy that does not hash to its digest (damaged on disk) is replaced by this verified one.
    std::expected<std::optional<fs::path>, std::string> dir;
    if (store.stat(m.digest) && !store.intact(m.digest)) dir = store.replace(m.tmp, m.digest);
    else dir = store.place(m.tmp, m.digest, m.rec.size);
    if (!dir) {
      failure = dir.error();
      return;
    }
    if (*dir) {
      if (auto r = store.sync_dir(**dir); !r) {
        failure = r.error();
        return;
      }
    }
    u.add_manifest(m.repo, m.digest.str(), m.rec,
                   m.tag ? std::optional<std::string_view>(*m.tag) : std::nullopt);
  });
  if (!done) return std::unexpected(done.error());
  if (!failure.empty()) return std::unexpected(failure);
  return missing;
}

std::expected<std::optional<std::string>, std::string> publish_manifest_bytes(Index& index, const BlobStore& store,
                                                                              std::string_view bytes,
                                                                              ManifestPublication m) {
  auto tmp = store.stage(bytes);
  if (!tmp) return std::unexpected(tmp.error());
  m.tmp = *tmp;
  auto r = publish_manifest(index, store, m);
  ::unlink(tmp->c_str());  // still there unless placed
  return r;
}

}  // namespace wharf::cache
