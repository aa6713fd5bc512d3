// The filesystem registry:2 tree: every path is walked one component at a time with O_NOFOLLOW from a
// descriptor of v2/, so a symbolic link or ".." anywhere in it cannot lead out of the tree.
#include "src/commands/registry_tree.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

namespace wharf::commands {
namespace {

constexpr size_t kMaxLink = 256;          // "sha256:<64 hex>" is 71 bytes
constexpr int kMaxRepoDepth = 16;         // path components of a repository name
constexpr size_t kMaxEntries = 1 << 20;   // entries of one directory

// One owned descriptor.
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd, o.fd);
    return *this;
  }
  Fd(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string why(int err) { return err == ELOOP ? "leads through a symbolic link (refused)" : std::strerror(err); }

class FsReader final : public TreeReader {
 public:
  FsReader(Fd fd, uint64_t size, std::string name) : fd_(std::move(fd)), size_(size), name_(std::move(name)) {}
  uint64_t size() const override { return size_; }
  std::expected<size_t, std::string> read(char* buf, size_t n) override {
    for (;;) {
      ssize_t got = ::read(fd_.fd, buf, n);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return std::unexpected("cannot read " + name_ + ": " + std::strerror(errno));
      return size_t(got);
    }
  }

 private:
  Fd fd_;
  uint64_t size_;
  std::string name_;
};

class FsTree final : public RegistryTree {
 public:
  FsTree(Fd root, std::string path) : root_(std::move(root)), path_(std::move(path)) {}

  std::vector<std::string> repositories(std::vector<std::string>& problems) override {
    std::vector<std::string> out;
    std::function<void(const std::string&, int)> walk = [&](const std::string& name, int depth) {
      auto entries = list(name.empty() ? "repositories" : "repositories/" + name);
      if (!entries) {
        problems.push_back(entries.error());
        return;
      }
      bool is_repo = false;
      for (const auto& e : *entries) is_repo = is_repo || e == "_layers" || e == "_manifests";
      if (is_repo) out.push_back(name);
      if (depth >= kMaxRepoDepth) return;
      for (const auto& e : *entries)
        if (!e.starts_with("_")) walk(name.empty() ? e : name + "/" + e, depth + 1);
    };
    walk("", 0);
    return out;
  }

  std::expected<std::vector<std::string>, std::string> list(const std::string& rel) override {
    auto fd = open_path(rel, O_RDONLY | O_DIRECTORY);
    if (!fd) {
      if (fd.error() == ENOENT) return std::vector<std::string>{};
      return std::unexpected(where(rel) + " " + (fd.error() == ENOTDIR ? "is not a directory" : why(fd.error())));
    }
    DIR* dp = ::fdopendir(fd->fd);
    if (!dp) return std::unexpected("cannot read " + where(rel) + ": " + std::strerror(errno));
    fd->fd = -1;  // owned by dp now
    std::vector<std::string> names;
    while (dirent* e = ::readdir(dp)) {
      std::string_view n = e->d_name;
      if (n == "." || n == "..") continue;
      if (names.size() >= kMaxEntries) {
        ::closedir(dp);
        return std::unexpected(where(rel) + " has more than " + std::to_string(kMaxEntries) + " entries");
      }
      names.emplace_back(n);
    }
    ::closedir(dp);
    return names;
  }

  std::expected<std::string, std::string> read_link(const std::string& rel) override {
    auto fd = open_path(rel, O_RDONLY);
    if (!fd) return std::unexpected("cannot open " + where(rel) + ": " + why(fd.error()));
    struct stat st {};
    if (::fstat(fd->fd, &st) != 0 || !S_ISREG(st.st_mode)) return std::unexpected(where(rel) + " is not a regular file");
    if (uint64_t(st.st_size) > kMaxLink)
      return std::unexpected(where(rel) + " is " + std::to_string(st.st_size) + " bytes, not a link (at most " +
                             std::to_string(kMaxLink) + ")");
    std::string text(kMaxLink + 1, '\0');
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::read(fd->fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return std::unexpected("cannot read " + where(rel) + ": " + std::strerror(errno));
      if (n == 0) break;
      done += size_t(n);
    }
    if (done > kMaxLink) return std::unexpected(where(rel) + " is too large for a link");
    text.resize(done);
    return text;
  }

  std::expected<std::unique_ptr<TreeReader>, std::string> open_blob(const oci::Digest& d) override {
    const std::string algo = d.algo == oci::DigestAlgo::Sha512 ? "sha512" : "sha256";
    const std::string rel = "blobs/" + algo + "/" + d.hex.substr(0, 2) + "/" + d.hex + "/data";
    auto fd = open_path(rel, O_RDONLY);
    if (!fd) return std::unexpected("cannot open " + where(rel) + ": " + why(fd.error()));
    struct stat st {};
    if (::fstat(fd->fd, &st) != 0 || !S_ISREG(st.st_mode)) return std::unexpected(where(rel) + " is not a regular file");
    return std::make_unique<FsReader>(std::move(*fd), uint64_t(st.st_size), where(rel));
  }

 private:
  std::string where(const std::string& rel) const { return "'" + path_ + "/" + rel + "'"; }

  // Opens v2/<rel> one component at a time, never following a symbolic link; the errno on failure.
  std::expected<Fd, int> open_path(const std::string& rel, int flags) const {
    Fd cur(::dup(root_.fd));
    if (cur.fd < 0) return std::unexpected(errno);
    size_t at = 0;
    while (at <= rel.size()) {
      size_t slash = rel.find('/', at);
      if (slash == std::string::npos) slash = rel.size();
      const std::string part = rel.substr(at, slash - at);
      if (part.empty() || part == "." || part == "..") return std::unexpected(EINVAL);
      const bool last = slash == rel.size();
      int fd;
      do fd = ::openat(cur.fd, part.c_str(), (last ? flags : O_RDONLY | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC);
      while (fd < 0 && errno == EINTR);
      if (fd < 0) {
        const int err = errno;
        struct stat st {};
        if ((err == ENOTDIR || err == ELOOP) && ::fstatat(cur.fd, part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode))
          return std::unexpected(ELOOP);  // O_DIRECTORY reports a symbolic link as ENOTDIR
        return std::unexpected(err);
      }
      cur = Fd(fd);
      at = slash + 1;
    }
    return cur;
  }

  Fd root_;
  std::string path_;
};

}  // namespace

std::expected<std::unique_ptr<RegistryTree>, std::string> open_fs_tree(const std::string& root) {
  const std::string path = root + (root.ends_with("/") ? "" : "/") + "docker/registry/v2";
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return std::unexpected("cannot open '" + path + "' (the registry:2 storage tree under SOURCE): " +
                           std::strerror(errno));
  return std::make_unique<FsTree>(Fd(fd), path);
}

std::optional<oci::Digest> parse_link(const std::string& text) {
  const auto b = text.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return std::nullopt;
  const auto e = text.find_last_not_of(" \t\r\n");
  return oci::parse_digest(std::string_view(text).substr(b, e - b + 1));
}

}  // namespace wharf::commands
