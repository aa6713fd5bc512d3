// The filesystem backend's staged writes: files under <root>/uploads and <root>/tmp.
#include <dirent.h>
#include <stdlib.h>

#include <vector>

#include "cache/fs/fs_store.hpp"
#include "cache/fs/fs_util.hpp"

namespace wharf::cache {
namespace {

namespace fs = std::filesystem;
using namespace fs_detail;

// Appends to one staged file through a descriptor it owns.
class FsWriter final : public BlobWriter {
 public:
  FsWriter(int fd, StagedKey key, uint64_t size) : fd_(fd), key_(std::move(key)), size_(size) {}
  ~FsWriter() override { close_fd(fd_); }
  FsWriter(const FsWriter&) = delete;
  FsWriter& operator=(const FsWriter&) = delete;
  std::expected<void, std::string> append(const char* p, size_t n, oci::Hasher* hasher) override {
    if (int err = write_all(fd_, p, n); err != 0) {
      // Cut back to the last complete append so the size stays truthful.
      if (::ftruncate(fd_, off_t(size_)) != 0) {
        struct stat st {};
        if (::fstat(fd_, &st) == 0) size_ = uint64_t(st.st_size);
      }
      return failure("cannot write", key_, err);
    }
    if (hasher) hasher->update(p, n);
    size_ += n;
    return {};
  }
  uint64_t size() const override { return size_; }
  const StagedKey& key() const override { return key_; }
  int read_fd() const override { return fd_; }

 private:
  int fd_;
  StagedKey key_;
  uint64_t size_;
};

std::unexpected<StoreError> store_error(std::unexpected<std::string> e, int err) {
  return std::unexpected(StoreError{err == ENOENT ? StoreError::Kind::Missing : StoreError::Kind::Failed, e.error()});
}

}  // namespace

std::expected<std::unique_ptr<BlobWriter>, StoreError> FsBlobStore::begin_write(StageArea area,
                                                                               std::string_view name) const {
  if (area == StageArea::Upload) {
    const fs::path path = upload_key(name);
    int fd = open_retry(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return std::unexpected(StoreError{StoreError::Kind::Failed, failure("cannot create upload file", path, errno).error()});
    return std::make_unique<FsWriter>(fd, path, 0);
  }
  std::string tmpl = (tmp_dir() / std::string(name).append("-XXXXXX")).string();
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC | O_APPEND);
  if (fd < 0) return std::unexpected(StoreError{StoreError::Kind::Failed, failure("cannot create a temporary file in", tmp_dir(), errno).error()});
  ::fchmod(fd, 0644);
  return std::make_unique<FsWriter>(fd, fs::path(tmpl), 0);
}

std::expected<std::unique_ptr<BlobWriter>, StoreError> FsBlobStore::resume_write(std::string_view name) const {
  const fs::path path = upload_key(name);
  int fd = open_retry(path, O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return store_error(failure("cannot open upload file", path, err), err);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    close_fd(fd);
    return store_error(failure("cannot stat upload file", path, err), err);
  }
  return std::make_unique<FsWriter>(fd, path, uint64_t(st.st_size));
}

std::expected<uint64_t, StoreError> FsBlobStore::upload_size(std::string_view name) const {
  const auto path = upload_key(name);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return store_error(failure("cannot stat upload file", path, err), err);
  }
  if (!S_ISREG(st.st_mode)) return std::unexpected(StoreError{StoreError::Kind::Missing, path.string() + " is not a file"});
  return uint64_t(st.st_size);
}

std::expected<std::pair<oci::Digest, uint64_t>, StoreError> FsBlobStore::hash_staged(const StagedKey& key,
                                                                                    oci::DigestAlgo algo) const {
  int fd = open_retry(key, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return store_error(failure("cannot open", key, err), err);
  }
  oci::Hasher h(algo);
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close_fd(fd);
      return std::unexpected(StoreError{StoreError::Kind::Failed, failure("cannot read", key, err).error()});
    }
    if (n == 0) break;
    h.update(buf.data(), size_t(n));
    total += uint64_t(n);
  }
  close_fd(fd);
  return std::pair{h.finish(), total};
}

void FsBlobStore::discard(const StagedKey& key) const { ::unlink(key.c_str()); }

std::vector<StagedItem> FsBlobStore::list_uploads() const {
  std::vector<StagedItem> out;
  const fs::path dir = root_ / "uploads";
  DIR* dp = ::opendir(dir.c_str());
  if (!dp) return out;
  while (dirent* e = ::readdir(dp)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(::dirfd(dp), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    out.push_back({std::string(name), int64_t(st.st_mtime)});
  }
  ::closedir(dp);
  return out;
}

std::expected<StagedKey, std::string> FsBlobStore::stage(std::string_view bytes) const {
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
  if (int err = write_all(fd, bytes.data(), bytes.size()); err != 0) return fail("cannot write", err);
  if (fsync_retry(fd) != 0) return fail("cannot fsync", errno);
  close_fd(fd);
  return tmp;
}

void FsBlobStore::clean_temp() const {
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
