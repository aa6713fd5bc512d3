// Backup: LMDB compacting copy first, then the files that copy records, linked or copied.
#include "cache/backup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <system_error>

#include "cache/index_lmdb.hpp"
#include "src/oci/digest.hpp"

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

// What an index copy records: every blob and manifest (digest, size) and what manifests and tags reference.
struct Recorded {
  std::vector<std::pair<std::string, uint64_t>> files;
  std::set<std::string> referenced;
};

// Copies the live index into dir/index (dir must be empty or absent) and reads what the copy records.
std::expected<Recorded, std::string> copy_index(const Index& index, const fs::path& dir) {
  if (!empty_or_absent(dir)) return std::unexpected("backup directory '" + dir.string() + "' is not empty");
  std::error_code ec;
  fs::create_directories(dir / "index", ec);
  if (ec) return std::unexpected("cannot create '" + (dir / "index").string() + "': " + ec.message());
  if (auto c = index.copy_to(dir / "index"); !c) return std::unexpected(c.error());

  auto copy = LmdbIndex::open(dir / "index", size_t(1) << 30);
  if (!copy) return std::unexpected(copy.error());
  Recorded rec;
  try {
    auto txn = (*copy)->read();
    for (const auto& [d, b] : (*copy)->all_blobs(txn)) rec.files.emplace_back(d, b.size);
    for (const auto& [d, m] : (*copy)->all_manifests(txn)) {
      rec.files.emplace_back(d, m.size);
      rec.referenced.insert(m.blobs.begin(), m.blobs.end());
      rec.referenced.insert(m.children.begin(), m.children.end());
    }
    for (const auto& t : (*copy)->all_tags(txn)) rec.referenced.insert(t.digest);
  } catch (const std::exception& e) {
    return std::unexpected("cannot read the index copy in '" + dir.string() + "': " + e.what());
  }
  copy->reset();
  fs::remove(dir / "index" / "lock.mdb", ec);
  return rec;
}

// dir/blobs/<algo>/<2 hex>/<hex>: where a backup keeps blob `d` (FsBlobStore's layout).
fs::path backup_blob_path(const fs::path& dir, const oci::Digest& d) {
  return dir / "blobs" / (d.algo == oci::DigestAlgo::Sha512 ? "sha512" : "sha256") / d.hex.substr(0, 2) / d.hex;
}

// The digest (algorithm of `want`) of the file at `path`, nullopt if it cannot be read.
std::optional<oci::Digest> hash_file(const fs::path& path, oci::DigestAlgo algo) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  oci::Hasher hasher(algo);
  std::vector<char> buf(size_t(1) << 20);
  bool ok = true;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    hasher.update(buf.data(), size_t(n));
  }
  ::close(fd);
  if (!ok) return std::nullopt;
  return hasher.finish();
}

// Downloads blob `d` from `store` into `path` (through path.part, renamed once it hashes to `d`).
// Returns false when the content does not hash to `d` (nothing is kept); fails on an I/O or store error.
std::expected<bool, std::string> download(const BlobBackend& store, const oci::Digest& d, const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return std::unexpected("cannot create '" + path.parent_path().string() + "': " + ec.message());
  const fs::path part = path.string() + ".part";
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return std::unexpected("cannot create '" + part.string() + "': " + errno_text(errno));
  oci::Hasher hasher(d.algo);
  std::string write_error;
  auto r = store.read_all(d, [&](const char* p, size_t n) {
    hasher.update(p, n);
    for (size_t off = 0; off < n;) {
      const ssize_t w = ::write(fd, p + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        write_error = "cannot write '" + part.string() + "': " + errno_text(errno);
        return false;
      }
      off += size_t(w);
    }
    return true;
  });
  const bool synced = r && write_error.empty() && ::fsync(fd) == 0;
  ::close(fd);
  if (!write_error.empty() || !r || !synced) {
    fs::remove(part, ec);
    if (!write_error.empty()) return std::unexpected(write_error);
    if (!r) return std::unexpected(r.error());
    return std::unexpected("cannot fsync '" + part.string() + "'");
  }
  if (!(hasher.finish() == d)) {
    fs::remove(part, ec);
    return false;
  }
  fs::rename(part, path, ec);
  if (ec) return std::unexpected("cannot rename '" + part.string() + "': " + ec.message());
  return true;
}

// Records `backend` as the holder of every blob `index` records (a restore onto another backend).
std::expected<void, std::string> mark_backend(Index& index, Backend backend) {
  std::vector<std::pair<std::string, BlobRecord>> blobs;
  try {
    auto txn = index.read();
    blobs = index.all_blobs(txn);
  } catch (const std::exception& e) {
    return std::unexpected(std::string("cannot read the restored index: ") + e.what());
  }
  std::erase_if(blobs, [backend](const auto& b) { return b.second.backend == backend; });
  if (blobs.empty()) return {};
  auto marked = index.update("restore", [&](Index::Update& u) {
    for (auto [d, rec] : blobs) {
      rec.backend = backend;
      u.put_blob_record(d, rec);
    }
  });
  if (!marked) return std::unexpected("cannot record the blobs' backend in the restored index: " + marked.error());
  return {};
}

}  // namespace

std::expected<BackupResult, std::string> backup(const Index& index, const FsBlobStore& store, const fs::path& dir) {
  auto recorded = copy_index(index, dir);
  if (!recorded) return std::unexpected(recorded.error());
  const auto& files = recorded->files;
  const auto& referenced = recorded->referenced;
  BackupResult result;
  std::error_code ec;
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

std::expected<void, std::string> restore_index(const fs::path& dir, const fs::path& root, Force force) {
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
  return {};
}

std::expected<BackupResult, std::string> restore(const fs::path& dir, const fs::path& root, Force force) {
  if (auto r = restore_index(dir, root, force); !r) return std::unexpected(r.error());
  std::error_code ec;
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
  // A backup of an S3-backed wharf (--include-blobs) restored onto the filesystem.
  if (auto marked = mark_backend(**index, Backend::Filesystem); !marked) return std::unexpected(marked.error());
  return result;
}

std::expected<BackupResult, std::string> backup_remote(const Index& index, const BlobBackend& store, const fs::path& dir,
                                                       IncludeBlobs include) {
  auto recorded = copy_index(index, dir);
  if (!recorded) return std::unexpected(recorded.error());
  BackupResult result;
  for (const auto& [d, size] : recorded->files) {
    auto parsed = oci::parse_digest(d);
    if (!parsed) continue;
    // Is it there? An answer the store cannot give stops the backup: an outage is not a missing blob.
    auto stored = [&store, &d, &parsed]() -> std::expected<std::optional<uint64_t>, std::string> {
      auto got = store.stat_checked(*parsed);
      if (!got) return std::unexpected("cannot check blob " + d + ": " + got.error());
      return got;
    };
    if (include == IncludeBlobs::No) {
      auto got = stored();
      if (!got) return std::unexpected(got.error());
      if (*got == size) {
        ++result.present;
        continue;
      }
    } else if (auto got = download(store, *parsed, backup_blob_path(dir, *parsed)); got && *got) {
      ++result.copied;
      result.bytes += size;
      continue;
    } else if (got) {
      result.damaged.push_back(d);
      continue;
    } else if (auto there = stored(); !there || *there) {
      return std::unexpected(there ? got.error() : there.error());  // there but unreadable, or the store fails
    }
    result.missing.push_back(d);
    if (recorded->referenced.count(d)) ++result.missing_referenced;
  }
  return result;
}

std::expected<BackupResult, std::string> restore_blobs(const fs::path& dir, Index& index, const BlobBackend& store) {
  std::vector<std::pair<std::string, uint64_t>> files;
  std::vector<std::pair<std::string, BlobRecord>> blobs;
  std::set<std::string> referenced;
  try {
    auto txn = index.read();
    blobs = index.all_blobs(txn);
    for (const auto& [d, b] : blobs) files.emplace_back(d, b.size);
    for (const auto& [d, m] : index.all_manifests(txn)) {
      files.emplace_back(d, m.size);
      referenced.insert(m.blobs.begin(), m.blobs.end());
      referenced.insert(m.children.begin(), m.children.end());
    }
  } catch (const std::exception& e) {
    return std::unexpected(std::string("cannot read the restored index: ") + e.what());
  }
  BackupResult result;
  std::error_code ec;
  for (const auto& [d, size] : files) {
    auto parsed = oci::parse_digest(d);
    if (!parsed) continue;
    auto stored = store.stat_checked(*parsed);
    if (!stored) return std::unexpected("cannot check blob " + d + ": " + stored.error());
    if (*stored == size) {
      ++result.present;
      continue;
    }
    const fs::path path = backup_blob_path(dir, *parsed);
    if (!fs::is_regular_file(path, ec)) {
      result.missing.push_back(d);
      if (referenced.count(d)) ++result.missing_referenced;
      continue;
    }
    if (!(hash_file(path, parsed->algo) == parsed)) {
      result.damaged.push_back(d);
      continue;
    }
    // The record exists already: the upload (prepare) is the whole placement; place() would consume
    // the staged file, which here is the backup's own copy.
    Placement p{path, *parsed, size, Placement::IfDamaged::Replace};
    if (auto e = store.prepare({p}); !e[0].empty()) return std::unexpected("uploading " + d + ": " + e[0]);
    ++result.copied;
    result.bytes += size;
  }
  if (auto marked = mark_backend(index, store.kind()); !marked) return std::unexpected(marked.error());
  return result;
}

}  // namespace wharf::cache
