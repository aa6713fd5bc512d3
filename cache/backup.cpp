// Backup: LMDB compacting copy first, then the files that copy records, linked or copied.
#include "cache/backup.hpp"

#include <unistd.h>

#include <cerrno>
#include <set>
#include <system_error>

#include "cache/index_lmdb.hpp"

namespace wharf::cache {
namespace {

namespace fs = std::filesystem;

std::string errno_text(int err) { return std::generic_category().message(err); }

bool empty_or_absent(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return true;
  return fs::is_directory(p, ec) && fs::is_empty(p, ec);
}

// Hard-links `src` to `dst` (creating parents), copying when they are on different filesystems.
std::expected<void, std::string> link_or_copy(const fs::path& src, const fs::path& dst, BackupResult& r,
                                              uint64_t size) {
  std::error_code ec;
  fs::create_directories(dst.parent_path(), ec);
  if (ec) return std::unexpected("cannot create '" + dst.parent_path().string() + "': " + ec.message());
  if (::link(src.c_str(), dst.c_str()) == 0) {
    ++r.linked;
  } else if (errno == EEXIST) {
    return {};
  } else if (errno == EXDEV || errno == EPERM || errno == EMLINK) {
    if (!fs::copy_file(src, dst, fs::copy_options::skip_existing, ec) && ec)
      return std::unexpected("cannot copy '" + src.string() + "' to '" + dst.string() + "': " + ec.message());
    ++r.copied;
  } else {
    return std::unexpected("cannot link '" + src.string() + "' to '" + dst.string() + "': " + errno_text(errno));
  }
  r.bytes += size;
  return {};
}

}  // namespace

std::expected<BackupResult, std::string> backup(const Index& index, const FsBlobStore& store, const fs::path& dir) {
  if (!empty_or_absent(dir)) return std::unexpected("backup directory '" + dir.string() + "' is not empty");
  std::error_code ec;
  fs::create_directories(dir / "index", ec);
  if (ec) return std::unexpected("cannot create '" + (dir / "index").string() + "': " + ec.message());
  if (auto c = index.copy_to(dir / "index"); !c) return std::unexpected(c.error());

  auto copy = LmdbIndex::open(dir / "index", size_t(1) << 30);
  if (!copy) return std::unexpected(copy.error());
  BackupResult result;
  std::vector<std::pair<std::string, uint64_t>> files;
  std::set<std::string> referenced;
  try {
    auto txn = (*copy)->read();
    for (const auto& [d, b] : (*copy)->all_blobs(txn)) files.emplace_back(d, b.size);
    for (const auto& [d, m] : (*copy)->all_manifests(txn)) {
      files.emplace_back(d, m.size);
      referenced.insert(m.blobs.begin(), m.blobs.end());
      referenced.insert(m.children.begin(), m.children.end());
    }
    for (const auto& t : (*copy)->all_tags(txn)) referenced.insert(t.digest);
  } catch (const std::exception& e) {
    return std::unexpected("cannot read the index copy in '" + dir.string() + "': " + e.what());
  }
  copy->reset();
  fs::remove(dir / "index" / "lock.mdb", ec);

  auto target = FsBlobStore::open(dir);  // same layout: dir/blobs/<algo>/<2 hex>/<hex>
  if (!target) return std::unexpected(target.error());
  for (const auto& [d, size] : files) {
    auto parsed = oci::parse_digest(d);
    if (!parsed) continue;
    const fs::path src = store.blob_path(*parsed);
    if (!fs::exists(src, ec)) {
      result.missing.push_back(d);
      if (referenced.count(d)) ++result.missing_referenced;
      continue;
    }
    if (auto r = link_or_copy(src, target->blob_path(*parsed), result, size); !r) return std::unexpected(r.error());
  }
  for (const char* sub : {"uploads", "tmp"}) fs::remove(dir / sub, ec);
  return result;
}

std::expected<BackupResult, std::string> restore(const fs::path& dir, const fs::path& root, Force force) {
  std::error_code ec;
  const fs::path data = dir / "index" / "data.mdb";
  if (!fs::is_regular_file(data, ec))
    return std::unexpected(std::string("'").append(dir.string()).append("' is not a wharf backup (no index/data.mdb)"));
  if (!empty_or_absent(root)) {
    if (force == Force::No)
      return std::unexpected("root directory '" + root.string() + "' is not empty; use --force to replace it");
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      fs::remove_all(entry.path(), ec);
      if (ec) return std::unexpected("cannot remove '" + entry.path().string() + "': " + ec.message());
    }
  }
  fs::create_directories(root / "index", ec);
  if (ec) return std::unexpected("cannot create '" + (root / "index").string() + "': " + ec.message());
  if (!fs::copy_file(data, root / "index" / "data.mdb", fs::copy_options::overwrite_existing, ec))
    return std::unexpected("cannot copy '" + data.string() + "': " + ec.message());

  BackupResult result;
  const fs::path blobs = dir / "blobs";
  for (auto it = fs::recursive_directory_iterator(blobs, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const fs::path rel = fs::relative(it->path(), dir);
    if (auto r = link_or_copy(it->path(), root / rel, result, it->file_size()); !r) return std::unexpected(r.error());
  }
  if (ec) return std::unexpected("cannot read '" + blobs.string() + "': " + ec.message());
  if (auto store = FsBlobStore::open(root); !store) return std::unexpected(store.error());
  auto index = LmdbIndex::open(root / "index");
  if (!index) return std::unexpected("the restored index does not open: " + index.error());
  return result;
}

}  // namespace wharf::cache
