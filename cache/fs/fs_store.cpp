// The filesystem blob backend: the content-addressed tree, durable publication by rename, reads by fd.
#include "cache/fs/fs_store.hpp"

#include <dirent.h>

#include <algorithm>

#include "cache/fs/fs_util.hpp"

namespace wharf::cache {
namespace {

namespace fs = std::filesystem;
using namespace fs_detail;

// Creates `dir` (not its parents); true if it was created, false if it already existed.
std::expected<bool, std::string> make_dir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0) return true;
  int err = errno;
  struct stat st {};
  if (err == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return false;
  return failure("cannot create directory", dir, err == EEXIST ? ENOTDIR : err);
}

// Creates `dir` and any missing parents.
std::expected<void, std::string> make_dirs(const fs::path& dir) {
  fs::path partial;
  for (const auto& part : dir) {
    partial /= part;
    if (partial == partial.root_path()) continue;
    if (auto r = make_dir(partial); !r) return std::unexpected(r.error());
  }
  return {};
}

std::string_view algo_dir(oci::DigestAlgo algo) { return algo == oci::DigestAlgo::Sha512 ? "sha512" : "sha256"; }

std::unexpected<std::string> rename_failure(const fs::path& from, const fs::path& to, int err) {
  return std::unexpected(std::string("cannot rename '").append(from.string()).append("' to '").append(to.string())
                             .append("': ").append(std::generic_category().message(err)));
}

}  // namespace

std::expected<FsBlobStore, std::string> FsBlobStore::open(const std::filesystem::path& root) {
  for (const char* sub : {"blobs/sha256", "blobs/sha512", "uploads", "tmp"}) {
    if (auto r = make_dirs(root / sub); !r) return std::unexpected(r.error());
  }
  // The 256 sha256 fan-out directories exist from the start, so publishing a blob never has to
  // create one (and fsync its parent) on the request path.
  const fs::path sha256 = root / "blobs" / "sha256";
  bool created = false;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 256; ++i) {
    const char name[3] = {kHex[i >> 4], kHex[i & 15], '\0'};
    auto r = make_dir(sha256 / name);
    if (!r) return std::unexpected(r.error());
    created = created || *r;
  }
  if (created) {
    if (auto r = fsync_dir(sha256); !r) return std::unexpected(r.error());
  }
  return FsBlobStore(root);
}

std::filesystem::path FsBlobStore::blob_path(const oci::Digest& d) const {
  return root_ / "blobs" / algo_dir(d.algo) / d.hex.substr(0, 2) / d.hex;
}

std::optional<uint64_t> FsBlobStore::stat(const oci::Digest& d) const {
  struct stat st {};
  if (::stat(blob_path(d).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return uint64_t(st.st_size);
}

int FsBlobStore::open_local(const oci::Digest& d) const { return open_retry(blob_path(d), O_RDONLY | O_CLOEXEC); }

std::expected<std::optional<ReadPlan>, std::string> FsBlobStore::read(const oci::Digest& d, const Recorded&,
                                                                      uint64_t first, uint64_t length,
                                                                      RedirectPolicy) const {
  int fd = open_local(d);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    return failure("cannot open", blob_path(d), errno);
  }
  return std::optional<ReadPlan>(LocalRange{fd, first, length});
}

std::optional<std::string> FsBlobStore::read_small(const oci::Digest& d, uint64_t max) const {
  int fd = open_local(d);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || uint64_t(st.st_size) > max) {
    close_fd(fd);
    return std::nullopt;
  }
  std::string out(size_t(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += size_t(n);
  }
  close_fd(fd);
  if (done != out.size()) return std::nullopt;
  return out;
}

std::vector<std::string> FsBlobStore::prepare(const std::vector<Placement>& items) const {
  std::vector<StagedKey> tmps;
  for (const auto& p : items) tmps.push_back(p.key);
  std::vector<std::string> errors(tmps.size());
  std::vector<int> fds(tmps.size(), -1);
  // Start writeback of every file first so the device works on them together, then wait for each.
  for (size_t i = 0; i < tmps.size(); ++i) {
    fds[i] = open_retry(tmps[i], O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) errors[i] = failure("cannot open temporary file", tmps[i], errno).error();
    else ::sync_file_range(fds[i], 0, 0, SYNC_FILE_RANGE_WRITE);
  }
  for (size_t i = 0; i < tmps.size(); ++i) {
    if (fds[i] < 0) continue;
    int rc;
    do rc = ::fdatasync(fds[i]);
    while (rc < 0 && errno == EINTR);
    const int err = errno;
    close_fd(fds[i]);
    if (rc < 0) errors[i] = failure("cannot fsync", tmps[i], err).error();
  }
  return errors;
}

std::expected<std::optional<std::filesystem::path>, std::string> FsBlobStore::place_one(const Placement& p) const {
  const fs::path target = blob_path(p.digest);
  struct stat st {};
  const bool present = ::stat(target.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  if (present && p.if_damaged == Placement::IfDamaged::Replace && !intact(p.digest)) {
    if (::rename(p.key.c_str(), target.c_str()) != 0) return rename_failure(p.key, target, errno);
    return target.parent_path();
  }
  if (present && (!p.size || uint64_t(st.st_size) == *p.size)) {
    if (::unlink(p.key.c_str()) != 0 && errno != ENOENT) return failure("cannot remove temporary file", p.key, errno);
    return std::nullopt;
  }
  fs::path dir = target.parent_path();
  auto created = make_dir(dir);  // sha512, or a fan-out directory removed by hand
  if (!created) return std::unexpected(created.error());
  if (*created) {
    if (auto r = fsync_dir(dir.parent_path()); !r) return std::unexpected(r.error());
  }
  if (::rename(p.key.c_str(), target.c_str()) != 0) return rename_failure(p.key, target, errno);
  return dir;
}

std::vector<std::string> FsBlobStore::place(const std::vector<Placement>& items) const {
  std::vector<std::string> errors(items.size());
  std::vector<fs::path> dirs;  // fan-out directories that got a new entry
  for (size_t i = 0; i < items.size(); ++i) {
    auto placed = place_one(items[i]);
    if (!placed) errors[i] = placed.error();
    else if (*placed && std::find(dirs.begin(), dirs.end(), **placed) == dirs.end()) dirs.push_back(**placed);
  }
  // One fsync per directory makes all its new entries durable; until then nothing placed there counts.
  for (const auto& dir : dirs) {
    if (auto r = fsync_dir(dir); !r) {
      for (size_t i = 0; i < items.size(); ++i)
        if (errors[i].empty() && blob_path(items[i].digest).parent_path() == dir) errors[i] = r.error();
    }
  }
  return errors;
}

bool FsBlobStore::intact(const oci::Digest& d) const {
  int fd = open_local(d);
  if (fd < 0) return false;
  oci::Hasher h(d.algo);
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close_fd(fd);
      return false;
    }
    if (n == 0) break;
    h.update(buf.data(), size_t(n));
  }
  close_fd(fd);
  return h.finish() == d;
}

std::expected<void, std::string> FsBlobStore::write(const oci::Digest& d, std::string_view bytes) const {
  if (stat(d)) return {};
  auto tmp = stage(bytes);
  if (!tmp) return std::unexpected(tmp.error());
  auto errors = place({Placement{*tmp, d, std::nullopt, Placement::IfDamaged::Keep}});
  if (!errors[0].empty()) {
    ::unlink(tmp->c_str());
    return std::unexpected(errors[0]);
  }
  return {};
}

bool FsBlobStore::remove(const oci::Digest& d) const { return ::unlink(blob_path(d).c_str()) == 0; }

std::expected<void, std::string> FsBlobStore::list(const std::function<void(const StoredBlob&)>& each) const {
  for (const char* algo : {"sha256", "sha512"}) {
    const fs::path top = root_ / "blobs" / algo;
    DIR* outer = ::opendir(top.c_str());
    if (!outer) continue;
    while (dirent* fan = ::readdir(outer)) {
      if (std::string_view(fan->d_name).size() != 2) continue;
      const fs::path dir = top / fan->d_name;
      DIR* inner = ::opendir(dir.c_str());
      if (!inner) continue;
      while (dirent* e = ::readdir(inner)) {
        auto d = oci::parse_digest(std::string(algo).append(":").append(e->d_name));
        if (!d || d->hex.substr(0, 2) != fan->d_name) continue;  // not ours
        struct stat st {};
        if (::fstatat(::dirfd(inner), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        each(StoredBlob{*d, uint64_t(st.st_size), int64_t(st.st_mtime)});
      }
      ::closedir(inner);
    }
    ::closedir(outer);
  }
  return {};
}

}  // namespace wharf::cache
