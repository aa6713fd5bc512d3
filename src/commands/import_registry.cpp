// wharf import-registry CONFIG SOURCE: every repository, tag, manifest and blob of a registry:2 storage
// tree (a directory, or a bucket written by registry:2's s3 driver), verified and added through the normal
// publish path into whichever blob store the config names. Offline: refused while a server holds the store.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "cache/fs/root_lock.hpp"
#include "cache/publish.hpp"
#include "src/commands/commands.hpp"
#include "src/commands/progress.hpp"
#include "src/commands/registry_tree.hpp"
#include "src/commands/source.hpp"
#include "src/commands/stores.hpp"
#include "src/oci/manifest.hpp"
#include "src/oci/names.hpp"

namespace wharf::commands {
namespace {

// What one repository of the source holds.
struct SourceRepo {
  std::string name;
  std::vector<oci::Digest> layers;
  std::vector<oci::Digest> revisions;
  std::vector<std::pair<std::string, oci::Digest>> tags;
};

// Counts for the summary.
struct Tally {
  size_t blobs = 0, blob_links = 0, manifests = 0, tags = 0, unchanged = 0;
  uint64_t bytes = 0;
  std::vector<std::string> skipped;
};

class Importer {
 public:
  Importer(RegistryTree& tree, cache::Index& index, cache::BlobBackend& store, Progress& progress)
      : tree_(tree), index_(index), store_(store), progress_(progress) {}

  // Reads what the source says about repository `name` (links checked, bad ones reported and left out).
  SourceRepo read_repo(const std::string& name) {
    SourceRepo r{name, {}, {}, {}};
    const std::string base = "repositories/" + name;
    r.layers = read_links(name, base + "/_layers", "layer");
    r.revisions = read_links(name, base + "/_manifests/revisions", "manifest revision");
    auto tags = tree_.list(base + "/_manifests/tags");
    if (!tags) return skip(name + ": " + tags.error()), r;
    for (const auto& t : *tags) {
      if (!oci::valid_tag(t)) {
        skip(name + ": tag '" + t + "' is not a valid tag name");
        continue;
      }
      auto text = tree_.read_link(base + "/_manifests/tags/" + t + "/current/link");
      auto d = text ? parse_link(*text) : std::nullopt;
      if (!d) skip(name + ":" + t + ": " + (text ? "its link does not name a digest" : text.error()));
      else r.tags.emplace_back(t, *d);
    }
    return r;
  }

  // Adds the blobs, manifests and tags of `r`.
  void import(const SourceRepo& r) {
    for (const auto& d : r.layers) import_blob(r.name, d);
    // Manifests, images before indexes (an index needs its children); tags go with their manifest.
    std::map<std::string, std::vector<std::string>> tags_of;
    std::vector<oci::Digest> all = r.revisions;
    for (const auto& [t, d] : r.tags) {
      tags_of[d.str()].push_back(t);
      if (std::none_of(all.begin(), all.end(), [&](const oci::Digest& x) { return x == d; })) all.push_back(d);
    }
    std::vector<Parsed> images, indexes;
    for (const auto& d : all) {
      auto p = read_manifest(r.name, d);
      if (p) (p->info.is_index ? indexes : images).push_back(std::move(*p));
    }
    for (auto* group : {&images, &indexes})
      for (const auto& p : *group) {
        auto it = tags_of.find(p.digest.str());
        if (it == tags_of.end()) publish_manifest(r.name, p, std::nullopt);
        else
          for (const auto& t : it->second) publish_manifest(r.name, p, t);
      }
  }

  // Notes the size of every blob `r` names, for the progress total.
  void count(const SourceRepo& r) {
    for (const auto& d : r.layers) {
      if (!counted_.insert(d.str()).second) continue;
      if (auto reader = tree_.open_blob(d)) progress_.add_total((*reader)->size());
    }
  }

  Tally& tally() { return tally_; }

 private:
  struct Parsed {
    oci::Digest digest;
    std::string body;
    oci::ManifestInfo info;
  };

  void skip(std::string what) {
    spdlog::error("import-registry: skipped {}", what);
    tally_.skipped.push_back(std::move(what));
  }

  std::vector<oci::Digest> read_links(const std::string& repo, const std::string& dir, const char* what) {
    std::vector<oci::Digest> out;
    for (const char* algo : {"sha256", "sha512"}) {
      auto names = tree_.list(dir + "/" + algo);
      if (!names) {
        skip(repo + ": " + names.error());
        continue;
      }
      for (const auto& hex : *names) {
        auto named = oci::parse_digest(std::string(algo) + ":" + hex);
        auto text = tree_.read_link(dir + "/" + algo + "/" + hex + "/link");
        auto d = text ? parse_link(*text) : std::nullopt;
        if (!named || !d || !(*d == *named))
          skip(repo + ": " + what + " " + algo + ":" + hex + ": " +
               (!text ? text.error() : "its link file does not name this digest"));
        else out.push_back(*d);
      }
    }
    return out;
  }

  void import_blob(const std::string& repo, const oci::Digest& d) {
    const std::string ds = d.str();
    if (auto bad = failed_.find(ds); bad != failed_.end()) return skip("blob " + ds + " of " + repo + ": " + bad->second);
    std::optional<cache::BlobRecord> rec;
    bool linked = false;
    {
      auto txn = index_.read();
      rec = index_.blob(txn, ds);
      linked = rec && index_.blob_linked(txn, repo, ds);
    }
    if (rec && store_.stat(d) == rec->size) {
      if (linked) {
        ++tally_.unchanged;
        return;
      }
      if (auto r = index_.link_blob(repo, ds, rec->size, rec->origin); !r) return skip("blob " + ds + " of " + repo + ": " + r.error());
      ++tally_.blob_links;
      return;
    }
    auto fail = [&](const std::string& why) {
      failed_[ds] = why;
      skip("blob " + ds + " of " + repo + ": " + why);
    };
    auto reader = tree_.open_blob(d);
    if (!reader) return fail(reader.error());
    progress_.item("blob " + ds, (*reader)->size());
    auto writer = store_.begin_write(cache::StageArea::Temp, "import");
    if (!writer) return fail(writer.error().message);
    const cache::StagedKey key = (*writer)->key();
    oci::Hasher hasher(d.algo);
    std::vector<char> buf(1 << 20);
    for (;;) {
      auto n = (*reader)->read(buf.data(), buf.size());
      if (!n) return store_.discard(key), fail(n.error());
      if (*n == 0) break;
      if (auto w = (*writer)->append(buf.data(), *n, &hasher); !w) return store_.discard(key), fail(w.error());
      progress_.advance(*n);
    }
    const uint64_t size = (*writer)->size();
    writer->reset();
    if (auto got = hasher.finish(); !(got == d)) {
      store_.discard(key);
      return fail("its data does not hash to its name (it hashes to " + got.str() + ")");
    }
    auto e = cache::publish_blobs(index_, store_, {{key, d, repo, size, cache::Origin::Pushed}});
    if (!e[0].empty()) return store_.discard(key), fail(e[0]);
    ++tally_.blobs;
    tally_.bytes += size;
  }

  std::optional<Parsed> read_manifest(const std::string& repo, const oci::Digest& d) {
    auto reader = tree_.open_blob(d);
    if (!reader) return skip("manifest " + d.str() + " of " + repo + ": " + reader.error()), std::nullopt;
    if ((*reader)->size() > oci::kMaxManifestBytes)
      return skip("manifest " + d.str() + " of " + repo + ": larger than " + std::to_string(oci::kMaxManifestBytes) +
                  " bytes"),
             std::nullopt;
    std::string body(size_t((*reader)->size()), '\0');
    size_t done = 0;
    while (done < body.size()) {
      auto n = (*reader)->read(body.data() + done, body.size() - done);
      if (!n) return skip("manifest " + d.str() + " of " + repo + ": " + n.error()), std::nullopt;
      if (*n == 0) break;
      done += *n;
    }
    body.resize(done);
    if (auto got = oci::digest_of(body, d.algo); !(got == d))
      return skip("manifest " + d.str() + " of " + repo + ": its data does not hash to its name (it hashes to " +
                  got.str() + ")"),
             std::nullopt;
    // The body names its media type; an OCI manifest may leave it out (then its shape tells).
    auto info = oci::parse_manifest(body, "");
    if (!info) info = oci::parse_manifest(body, oci::media::kOciManifest);
    if (!info) info = oci::parse_manifest(body, oci::media::kOciIndex);
    if (!info) return skip("manifest " + d.str() + " of " + repo + ": " + info.error().message), std::nullopt;
    return Parsed{d, std::move(body), std::move(*info)};
  }

  void publish_manifest(const std::string& repo, const Parsed& p, const std::optional<std::string>& tag) {
    const std::string ds = p.digest.str();
    {
      auto txn = index_.read();
      if (index_.manifest_in_repo(txn, repo, ds) && (!tag || index_.tag(txn, repo, *tag) == ds)) {
        ++tally_.unchanged;
        return;
      }
    }
    cache::ManifestPublication m{{}, p.digest, repo, manifest_record(p.info, p.body.size(), cache::Origin::Pushed), tag, {}};
    if (p.info.config && !is_foreign(*p.info.config)) m.required.push_back(p.info.config->digest.str());
    for (const auto& l : p.info.layers)
      if (!is_foreign(l)) m.required.push_back(l.digest.str());
    for (const auto& c : p.info.manifests) m.required.push_back(c.digest.str());
    const std::string what = "manifest " + ds + " of " + repo + (tag ? " (tag " + *tag + ")" : "");
    auto r = cache::publish_manifest_bytes(index_, store_, p.body, std::move(m));
    if (!r) return skip(what + ": " + r.error());
    if (*r) return skip(what + ": it references " + **r + ", which is not in the repository");
    ++tally_.manifests;
    if (tag) ++tally_.tags;
  }

  RegistryTree& tree_;
  cache::Index& index_;
  cache::BlobBackend& store_;
  Progress& progress_;
  Tally tally_;
  std::map<std::string, std::string> failed_;  // blob digest -> why it was skipped
  std::set<std::string> counted_;
};

}  // namespace

int import_registry(const config::Config& cfg, const std::vector<std::string>& args) {
  std::string source;
  S3TreeOptions s3;
  bool bad = false;
  for (size_t i = 0; i < args.size() && !bad; ++i) {
    const std::string& a = args[i];
    if ((a == "--s3-endpoint" || a == "--s3-region") && i + 1 < args.size()) {
      (a == "--s3-endpoint" ? s3.endpoint : s3.region) = args[++i];
    } else if (a == "--s3-insecure") {
      s3.verify_tls = false;
    } else if (a == "--s3-virtual-host") {
      s3.virtual_host = true;
    } else if (source.empty() && !a.starts_with("-")) {
      source = a;
    } else {
      bad = true;
    }
  }
  if (bad || source.empty()) {
    spdlog::error("usage: wharf import-registry CONFIG SOURCE [--s3-endpoint URL] [--s3-region REGION] [--s3-insecure] "
                  "[--s3-virtual-host] (SOURCE: a registry:2 rootdirectory, or s3://BUCKET[/ROOTDIRECTORY])");
    return 2;
  }
  auto tree = is_s3_source(source) ? open_s3_tree(source, s3) : open_fs_tree(source);
  if (!tree) return spdlog::error("import-registry: {}", tree.error()), 1;
  std::error_code ec;
  std::filesystem::create_directories(cfg.root_directory, ec);
  auto lock = cache::RootLock::take(cfg.root_directory, cache::RootLock::Mode::Exclusive);
  if (!lock) return spdlog::error("import-registry: {}; nothing was imported", lock.error()), 1;
  auto stores = open_stores(cfg);
  if (!stores) return spdlog::error("import-registry: {}", stores.error()), 1;

  Progress progress("import-registry");
  Importer importer(**tree, *stores->index, stores->blobs(), progress);
  std::vector<std::string> problems;
  std::vector<SourceRepo> repos;
  for (const auto& name : (*tree)->repositories(problems)) {
    if (!oci::valid_repo_name(name)) {
      problems.push_back("repository '" + name + "' is not a valid repository name");
      continue;
    }
    repos.push_back(importer.read_repo(name));
    importer.count(repos.back());
  }
  for (auto& p : problems) {
    spdlog::error("import-registry: skipped {}", p);
    importer.tally().skipped.push_back(std::move(p));
  }
  for (const auto& r : repos) importer.import(r);
  progress.finish();

  const Tally& t = importer.tally();
  std::printf("import-registry: %zu repositories: %zu blobs imported (%s), %zu blob links, %zu manifests, %zu tags; "
              "%zu already present; %zu skipped\n",
              repos.size(), t.blobs, human_bytes(t.bytes).c_str(), t.blob_links, t.manifests, t.tags, t.unchanged,
              t.skipped.size());
  for (const auto& s : t.skipped) std::printf("  skipped: %s\n", s.c_str());
  return t.skipped.empty() ? 0 : 1;
}

}  // namespace wharf::commands
