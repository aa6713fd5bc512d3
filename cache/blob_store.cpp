// The content-addressed blob store: POSIX file operations, durable publication by rename.
#include "cache/blob_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace wharf::cache {
namespace {

namespace fs = std::filesystem;

std::string errno_text(int err) { return std::generic_category().message(err); }

// "<what> '<path>': <strerror(err)>"
std::unexpected<std::string> failure(std::string_view what, const fs::path& path, int err) {
  return std::unexpected(std::string(what) + " '" + path.string() + "': " + errno_text(err));
}

int open_retry(const fs::path& p, int flags, mode_t mode = 0) {
  int fd;
  do fd = ::open(p.c_str(), flags, mode);
  while (fd < 0 && errno == EINTR);
  return fd;
}

int fsync_retry(int fd) {
  int rc;
  do rc = ::fsync(fd);
  while (rc < 0 && errno == EINTR);
  return rc;
}

// Closes `fd` (never retried: on Linux the descriptor is gone even after EINTR).
void close_fd(int fd) {
  if (fd >= 0) ::close(fd);
}

std::expected<void, std::string> fsync_dir(const fs::path& dir) {
  int fd = open_retry(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return failure("cannot open directory", dir, errno);
  int rc = fsync_retry(fd);
  int err = errno;
  close_fd(fd);
  if (rc < 0) return failure("cannot fsync directory", dir, err);
  return {};
}

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

bool path_exists(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

std::string_view algo_dir(oci::DigestAlgo algo) { return algo == oci::DigestAlgo::Sha512 ? "sha512" : "sha256"; }

}  // namespace

std::expected<BlobStore, std::string> BlobStore::open(const std::filesystem::path& root) {
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
  return BlobStore(root);
}

std::filesystem::path BlobStore::blob_path(const oci::Digest& d) const {
  return root_ / "blobs" / algo_dir(d.algo) / d.hex.substr(0, 2) / d.hex;
}

std::filesystem::path BlobStore::upload_path(std::string_view uuid) const { return root_ / "uploads" / uuid; }

std::optional<uint64_t> BlobStore::stat(const oci::Digest& d) const {
  struct stat st {};
  if (::stat(blob_path(d).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return uint64_t(st.st_size);
}

int BlobStore::open_read(const oci::Digest& d) const { return open_retry(blob_path(d), O_RDONLY | O_CLOEXEC); }

std::vector<std::string> BlobStore::sync_files(const std::vector<std::filesystem::path>& tmps) const {
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

std::expected<std::optional<std::filesystem::path>, std::string> BlobStore::place(const std::filesystem::path& tmp,
                                                                                const oci::Digest& d,
                                                                                std::optional<uint64_t> size) const {
  const fs::path target = blob_path(d);
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (!size || uint64_t(st.st_size) == *size)) {
    if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) return failure("cannot remove temporary file", tmp, errno);
    return std::nullopt;
  }
  fs::path dir = target.parent_path();
  auto created = make_dir(dir);  // sha512, or a fan-out directory removed by hand
  if (!created) return std::unexpected(created.error());
  if (*created) {
    if (auto r = fsync_dir(dir.parent_path()); !r) return std::unexpected(r.error());
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0)
    return std::unexpected("cannot rename '" + tmp.string() + "' to '" + target.string() + "': " + errno_text(errno));
  return dir;
}

std::expected<std::filesystem::path, std::string> BlobStore::replace(const std::filesystem::path& tmp,
                                                                     const oci::Digest& d) const {
  const fs::path target = blob_path(d);
  if (::rename(tmp.c_str(), target.c_str()) != 0)
    return std::unexpected("cannot rename '" + tmp.string() + "' to '" + target.string() + "': " + errno_text(errno));
  return target.parent_path();
}

bool BlobStore::intact(const oci::Digest& d) const {
  int fd = open_read(d);
  if (fd < 0) return false;
  oci::Hasher h(d.algo);
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close_fd(fd);
      return false;
    }
    if (n == 0) break;
    h.update(buf, size_t(n));
  }
  close_fd(fd);
  return h.finish() == d;
}

std::expected<void, std::string> BlobStore::sync_dir(const std::filesystem::path& dir) const { return fsync_dir(dir); }

std::expected<std::filesystem::path, std::string> BlobStore::stage(std::string_view bytes) const {
  std::string name = (tmp_dir() / "write-XXXXXX").string();
  int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return failure("cannot create a temporary file in", tmp_dir(), errno);
  const fs::path tmp = name;
  auto fail = [&](std::string_view what, int err) {
    close_fd(fd);
    ::unlink(tmp.c_str());
    return failure(what, tmp, err);
  };
  if (::fchmod(fd, 0644) != 0) return fail("cannot chmod", errno);
  for (size_t done = 0; done < bytes.size();) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write", errno);
    done += size_t(n);
  }
  if (fsync_retry(fd) != 0) return fail("cannot fsync", errno);
  close_fd(fd);
  return tmp;
}

std::expected<void, std::string> BlobStore::publish(const std::filesystem::path& tmp, const oci::Digest& d) const {
  auto errors = publish_all({{tmp, d}});
  if (!errors[0].empty()) return std::unexpected(errors[0]);
  return {};
}

std::vector<std::string> BlobStore::publish_all(const std::vector<Publication>& items) const {
  std::vector<fs::path> tmps;
  for (const auto& item : items) tmps.push_back(item.tmp);
  std::vector<std::string> errors = sync_files(tmps);
  std::vector<fs::path> dirs;  // fan-out directories that got a new entry
  for (size_t i = 0; i < items.size(); ++i) {
    if (!errors[i].empty()) continue;
    auto placed = place(items[i].tmp, items[i].digest, std::nullopt);
    if (!placed) errors[i] = placed.error();
    else if (*placed && std::find(dirs.begin(), dirs.end(), **placed) == dirs.end()) dirs.push_back(**placed);
  }
  // One fsync per directory makes all its new entries durable.
  for (const auto& dir : dirs) {
    if (auto r = fsync_dir(dir); !r) {
      for (size_t i = 0; i < items.size(); ++i)
        if (errors[i].empty() && blob_path(items[i].digest).parent_path() == dir) errors[i] = r.error();
    }
  }
  return errors;
}

std::expected<void, std::string> BlobStore::write(const oci::Digest& d, std::string_view bytes) const {
  if (path_exists(blob_path(d))) return {};
  auto tmp = stage(bytes);
  if (!tmp) return std::unexpected(tmp.error());
  auto placed = publish(*tmp, d);
  if (!placed) ::unlink(tmp->c_str());
  return placed;
}

bool BlobStore::remove(const oci::Digest& d) const { return ::unlink(blob_path(d).c_str()) == 0; }

void BlobStore::clean_tmp() const {
  const fs::path dir = tmp_dir();
  DIR* dp = ::opendir(dir.c_str());
  if (!dp) return;
  while (dirent* e = ::readdir(dp)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (::unlinkat(::dirfd(dp), e->d_name, 0) != 0 && (errno == EISDIR || errno == EPERM)) {
      std::error_code ec;
      fs::remove_all(dir / name, ec);  // a stray directory: best effort
    }
  }
  ::closedir(dp);
}

}  // namespace wharf::cache
