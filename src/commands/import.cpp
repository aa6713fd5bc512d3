// wharf import: verify a whole bundle (OCI image layout tar) in <root>/tmp, then publish it as local content.
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "cache/fs/fs_store.hpp"
#include "cache/index_lmdb.hpp"
#include "cache/publish.hpp"
#include "src/commands/commands.hpp"
#include "src/commands/progress.hpp"
#include "src/commands/stores.hpp"
#include "src/commands/source.hpp"
#include "src/commands/tar.hpp"
#include "src/util/json.hpp"
#include "src/util/number.hpp"
#include "src/oci/names.hpp"

namespace wharf::commands {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Staged {
  std::string path;
  uint64_t size = 0;
  bool published = false;
};

// A staging directory under <root>/tmp, removed with whatever is left in it.
struct StagingDir {
  std::string path;
  ~StagingDir() {
    if (path.empty()) return;
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// One image to record: manifests children-first, blobs to link, and its name.
struct ImportImage {
  std::string repo;
  std::optional<std::string> tag;
  std::vector<std::pair<std::string, cache::ManifestRecord>> manifests;
  std::vector<std::pair<std::string, uint64_t>> blobs;
  std::set<std::string> seen;  // digests already verified for this image (a DAG is walked once per node)
};

// Indexes nested deeper than this inside a bundle are refused (real images use 1 or 2 levels).
constexpr size_t kMaxIndexDepth = 8;

class Importer {
 public:
  Importer(std::map<std::string, Staged>& staged) : staged_(staged) {}

  // Checks that `d` is in the bundle with the descriptor's size; for manifests, recursively everything
  // they reference. Fills `img`.
  std::expected<void, std::string> verify(const oci::Descriptor& d, bool manifest, const std::string& parent,
                                          ImportImage& img, size_t depth = 0) {
    if (depth > kMaxIndexDepth) return std::unexpected(parent + ": indexes nested too deeply");
    if (!img.seen.insert(d.digest.str()).second) return {};
    const std::string entry = "blobs/" + std::string(d.digest.algo == oci::DigestAlgo::Sha256 ? "sha256/" : "sha512/") + d.digest.hex;
    auto it = staged_.find(d.digest.str());
    if (it == staged_.end()) {
      if (!manifest && is_foreign(d)) return {};
      return std::unexpected("bundle lacks " + entry + " (referenced by " + parent + ")");
    }
    if (it->second.size != uint64_t(d.size))
      return std::unexpected(entry + " has " + std::to_string(it->second.size) + " bytes, but " + parent +
                             " says " + std::to_string(d.size));
    if (!manifest) {
      img.blobs.emplace_back(d.digest.str(), it->second.size);
      return {};
    }
    if (it->second.size > oci::kMaxManifestBytes) return std::unexpected(entry + ": manifest too large");
    std::string body;
    {
      std::error_code ec;
      body.resize(size_t(it->second.size));
      int fd = ::open(it->second.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return std::unexpected("cannot reopen staged " + entry + ": " + std::strerror(errno));
      ssize_t n = ::pread(fd, body.data(), body.size(), 0);
      ::close(fd);
      if (n != ssize_t(body.size())) return std::unexpected("cannot read staged " + entry);
    }
    auto info = oci::parse_manifest(body, d.media_type);
    if (!info) return std::unexpected(entry + " is not a valid manifest: " + info.error().message);
    for (const auto& c : info->manifests)
      if (auto v = verify(c, true, entry, img, depth + 1); !v) return v;
    if (info->config)
      if (auto v = verify(*info->config, false, entry, img); !v) return v;
    for (const auto& l : info->layers)
      if (auto v = verify(l, false, entry, img); !v) return v;
    img.manifests.emplace_back(d.digest.str(), manifest_record(*info, body.size(), cache::Origin::Pushed));
    return {};
  }

 private:
  std::map<std::string, Staged>& staged_;
};

// Repository and tag of an index.json entry: io.wharf.repository + org.opencontainers.image.ref.name,
// or a full reference ("registry/repo:tag") in ref.name.
std::expected<std::pair<std::string, std::optional<std::string>>, std::string> image_name(const json& desc, size_t n) {
  const std::string where = "index.json entry " + std::to_string(n + 1);
  json ann = desc.contains("annotations") && desc["annotations"].is_object() ? desc["annotations"] : json::object();
  std::string repo = ann.value("io.wharf.repository", "");
  std::string ref = ann.value("org.opencontainers.image.ref.name", "");
  if (repo.empty()) {
    auto parsed = parse_image_ref(ref);
    if (ref.find('/') == std::string::npos || !parsed)
      return std::unexpected(where + " names no repository (annotation io.wharf.repository)");
    return std::make_pair(parsed->name, parsed->tag.empty() ? std::nullopt : std::optional<std::string>(parsed->tag));
  }
  if (!oci::valid_repo_name(repo)) return std::unexpected(where + ": invalid repository name '" + repo + "'");
  if (ref.empty()) return std::make_pair(repo, std::optional<std::string>());
  if (!oci::valid_tag(ref)) return std::unexpected(where + ": invalid tag '" + ref + "'");
  return std::make_pair(repo, std::optional<std::string>(ref));
}

// Reads a small entry (index.json, oci-layout) into memory.
std::expected<std::string, std::string> read_small(TarReader& tar, const TarEntry& e, size_t limit) {
  if (e.size > limit) return std::unexpected(e.name + " is too large");
  std::string s(size_t(e.size), '\0');
  size_t got = 0;
  while (got < s.size()) {
    auto n = tar.read(s.data() + got, s.size() - got);
    if (!n) return std::unexpected(n.error());
    got += *n;
  }
  return s;
}

// Stages one blob entry in `dir` while hashing it; fails naming the entry if its content does not match.
std::expected<Staged, std::string> stage_blob(TarReader& tar, const TarEntry& e, const oci::Digest& d,
                                              const std::string& dir, Progress& progress) {
  Staged s{dir + "/" + (d.algo == oci::DigestAlgo::Sha256 ? "sha256-" : "sha512-") + d.hex, 0, false};
  int fd = ::open(s.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return std::unexpected("cannot create " + s.path + ": " + std::strerror(errno));
  progress.item(e.name, e.size);
  oci::Hasher hasher(d.algo);
  std::vector<char> buf(1 << 20);
  for (;;) {
    auto n = tar.read(buf.data(), buf.size());
    if (!n) {
      ::close(fd);
      return std::unexpected(n.error());
    }
    if (*n == 0) break;
    hasher.update(buf.data(), *n);
    for (size_t off = 0; off < *n;) {
      ssize_t w = ::write(fd, buf.data() + off, *n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        std::string err = std::strerror(errno);
        ::close(fd);
        return std::unexpected("writing " + s.path + ": " + err);
      }
      off += size_t(w);
    }
    s.size += *n;
    progress.advance(*n);
  }
  ::close(fd);
  if (!(hasher.finish() == d)) return std::unexpected("bundle entry " + e.name + " is corrupt: its content does not match its digest");
  return s;
}

}  // namespace

int import_bundle(const config::Config& cfg, const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0].starts_with("--")) {
    spdlog::error("usage: wharf import CONFIG BUNDLE.tar");
    return 2;
  }
  auto fail = [](const std::string& msg) {
    spdlog::error("import: {}", msg);
    spdlog::error("import: nothing was imported");
    return 1;
  };
  const std::string& path = args[0];
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) return fail("cannot open " + path + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{raw};
  struct stat st {};
  ::fstat(raw, &st);

  // Staging is local (storage.filesystem.rootdirectory/tmp) also with storage.s3: only verified blobs
  // go to the bucket, through the publish path.
  auto stores = open_stores(cfg);
  if (!stores) return fail(stores.error());
  const cache::BlobBackend& store = stores->blobs();
  StagingDir staging;
  {
    std::string tmpl = (stores->store->tmp_dir() / "import-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      return fail("cannot create a staging directory in " + stores->store->tmp_dir().string() + ": " + std::strerror(errno));
    staging.path = tmpl;
  }

  // 1. Stage and hash every blob; keep index.json.
  Progress progress("import", uint64_t(st.st_size));
  TarReader tar(raw);
  std::map<std::string, Staged> staged;
  std::optional<std::string> index_text;
  for (;;) {
    auto next = tar.next();
    if (!next) return fail(path + ": " + next.error());
    if (!*next) break;
    TarEntry e = std::move(**next);
    std::string name = e.name;
    while (name.starts_with("./")) name.erase(0, 2);
    if (e.type == '5' || name.empty()) continue;
    if (e.type != '0' && e.type != '7') return fail("bundle entry " + name + " is not a regular file");
    if (name == "index.json") {
      auto text = read_small(tar, e, oci::kMaxManifestBytes);
      if (!text) return fail(text.error());
      index_text = std::move(*text);
    } else if (name.starts_with("blobs/")) {
      auto slash = name.find('/', 6);
      auto d = slash == std::string::npos ? std::nullopt
                                          : oci::parse_digest(name.substr(6, slash - 6) + ":" + name.substr(slash + 1));
      if (!d) return fail("bundle entry " + name + " is not named by a valid digest");
      auto s = stage_blob(tar, e, *d, staging.path, progress);
      if (!s) return fail(s.error());
      staged[d->str()] = std::move(*s);
    } else if (name != "oci-layout") {
      spdlog::warn("import: ignoring bundle entry {}", name);
    }
  }
  if (!index_text) return fail(path + " has no index.json (not an OCI image layout)");

  // 2. Check every image against its descriptors before anything becomes visible.
  auto parsed_index = util::parse_json(*index_text);
  if (!parsed_index) return fail("index.json: " + parsed_index.error().message);
  json index_json = std::move(*parsed_index);
  if (!index_json.is_object() || !index_json.contains("manifests") || !index_json["manifests"].is_array())
    return fail("index.json is not an OCI image index");
  Importer importer(staged);
  std::vector<ImportImage> images;
  size_t n = 0;
  for (const auto& desc : index_json["manifests"]) {
    auto name = image_name(desc, n);
    if (!name) return fail(name.error());
    auto d = oci::parse_digest(desc.is_object() ? desc.value("digest", "") : "");
    const auto size = d && desc.contains("size") && desc["size"].is_number_integer()
                          ? util::json_int(desc["size"], 0, std::numeric_limits<int64_t>::max())
                          : std::nullopt;
    if (!size) return fail("index.json entry " + std::to_string(n + 1) + " has no valid digest and size");
    oci::Descriptor top;
    top.digest = *d;
    top.size = *size;
    top.media_type = desc.value("mediaType", "");
    ImportImage img;
    img.repo = name->first;
    img.tag = name->second;
    if (auto v = importer.verify(top, true, "index.json", img); !v) return fail(v.error());
    images.push_back(std::move(img));
    ++n;
  }
  if (images.empty()) return fail("index.json lists no images");

  // 3. Publish blobs, then record manifests and tags. Only a storage failure can stop this half-way.
  auto fail_late = [](const std::string& msg) {
    spdlog::error("import: {} (blobs already published stay in the store until garbage collection)", msg);
    return 1;
  };
  cache::Index& index = *stores->index;
  // A file goes into blobs/ in the same index transaction that records it (cache/publish.hpp); content
  // shared by several images is published once and linked for the others.
  for (auto& img : images) {
    for (const auto& [digest, size] : img.blobs) {
      auto& s = staged.at(digest);
      if (s.published) {
        if (auto l = index.link_blob(img.repo, digest, size, cache::Origin::Pushed); !l)
          return fail_late("indexing " + digest + " in " + img.repo + ": " + l.error());
        continue;
      }
      auto e = cache::publish_blobs(index, store, {{s.path, *oci::parse_digest(digest), img.repo, size, cache::Origin::Pushed}});
      if (!e[0].empty()) return fail_late("publishing " + digest + ": " + e[0]);
      s.published = true;
    }
    for (size_t i = 0; i < img.manifests.size(); ++i) {
      const auto& [digest, rec] = img.manifests[i];
      std::optional<std::string> tag;
      if (i + 1 == img.manifests.size() && img.tag) tag = *img.tag;
      auto& s = staged.at(digest);
      std::expected<void, std::string> p;
      if (s.published) {
        p = index.put_manifest(img.repo, digest, rec, tag ? std::optional<std::string_view>(*tag) : std::nullopt);
      } else if (auto m = cache::publish_manifest(index, store, {s.path, *oci::parse_digest(digest), img.repo, rec, tag, {}}); !m) {
        p = std::unexpected(m.error());
      } else {
        s.published = true;
      }
      if (!p) return fail_late("indexing " + digest + " in " + img.repo + ": " + p.error());
    }
    spdlog::info("import: {}{} → {}", img.repo, img.tag ? ":" + *img.tag : std::string(), img.manifests.back().first);
  }
  progress.finish();
  spdlog::info("import: {} image(s) from {}", images.size(), path);
  return 0;
}

}  // namespace wharf::commands
