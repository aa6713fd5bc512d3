// Local-first image access with upstream fetch for what is missing; see source.hpp.
#include "src/commands/source.hpp"

#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include "proxy/http_client.hpp"
#include "proxy/token_cache.hpp"
#include "proxy/upstream.hpp"
#include "cache/publish.hpp"
#include "src/commands/progress.hpp"
#include "src/oci/names.hpp"

namespace wharf::commands {

namespace {

const std::vector<std::string> kManifestAccept = {
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json"};

struct BaseOwner {
  event_base* base = nullptr;
  ~BaseOwner() {
    if (base) event_base_free(base);
  }
};

}  // namespace

std::expected<ImageRef, std::string> parse_image_ref(const std::string& s) {
  ImageRef r;
  if (auto at = s.find('@'); at != std::string::npos) {
    r.name = s.substr(0, at);
    auto d = oci::parse_digest(s.substr(at + 1));
    if (!d) return std::unexpected("invalid digest in image '" + s + "'");
    r.digest = d->str();
  } else {
    auto colon = s.rfind(':');
    auto slash = s.rfind('/');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
      r.name = s.substr(0, colon);
      r.tag = s.substr(colon + 1);
    } else {
      r.name = s;
      r.tag = "latest";
    }
    if (!oci::valid_tag(r.tag)) return std::unexpected("invalid tag in image '" + s + "'");
  }
  if (!oci::valid_repo_name(r.name)) return std::unexpected("invalid repository name in image '" + s + "'");
  return r;
}

std::expected<std::vector<std::string>, std::string> read_images_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::unexpected("cannot read " + path + ": " + std::strerror(errno));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    auto e = line.find_last_not_of(" \t\r");
    out.push_back(line.substr(b, e - b + 1));
  }
  return out;
}

cache::ManifestRecord manifest_record(const oci::ManifestInfo& info, size_t size, cache::Origin origin) {
  cache::ManifestRecord rec;
  rec.media_type = info.media_type;
  rec.size = size;
  rec.origin = origin;
  rec.created = time(nullptr);
  rec.artifact_type = info.artifact_type;
  rec.annotations_json = info.annotations_json;
  if (info.subject) rec.subject = info.subject->digest.str();
  if (info.config) rec.blobs.push_back(info.config->digest.str());
  for (const auto& l : info.layers) rec.blobs.push_back(l.digest.str());
  for (const auto& c : info.manifests) rec.children.push_back(c.digest.str());
  return rec;
}

bool is_foreign(const oci::Descriptor& d) {
  return d.media_type.find("foreign") != std::string::npos || d.media_type.find("nondistributable") != std::string::npos;
}

struct ImageSource::Impl {
  const config::Config& cfg;
  cache::Index& index;
  cache::BlobBackend& store;
  Progress& progress;
  BaseOwner base;
  std::unique_ptr<proxy::HttpClient> client;
  std::unique_ptr<proxy::TokenCache> tokens;
  std::map<std::string, std::unique_ptr<proxy::Upstream>> upstreams;
  proxy::RoutingTable table;

  Impl(const config::Config& c, cache::Index& i, cache::BlobBackend& s, Progress& p)
      : cfg(c), index(i), store(s), progress(p) {}

  // Runs the loop until `done`; fails if the loop has nothing left to wait for.
  std::expected<void, std::string> run_until(const bool& done) {
    while (!done) {
      int r = event_base_loop(base.base, EVLOOP_ONCE);
      if (r < 0) return std::unexpected("event loop failed");
      if (r == 1 && !done) return std::unexpected("event loop idle before the transfer ended");
    }
    return {};
  }

  proxy::Upstream* upstream(const proxy::Decision& d) {
    auto it = upstreams.find(d.upstream);
    return it == upstreams.end() ? nullptr : it->second.get();
  }

  // GET of a manifest from the upstream; verified, then stored in the cache (tag pointed when by tag).
  std::expected<Manifest, std::string> fetch_manifest(const proxy::Decision& d, const std::string& ref,
                                                      bool by_digest) {
    auto* up = upstream(d);
    const std::string what = d.upstream + "/" + d.remote_repo + (by_digest ? "@" : ":") + ref;
    if (!up) return std::unexpected("no upstream for " + what);
    int status = 0;
    std::string type, body, error;
    bool done = false, ok = false;
    proxy::FetchCallbacks cb;
    cb.on_head = [&](const proxy::UpstreamResponse& res) {
      status = res.status;
      type = std::string(res.header("content-type"));
    };
    cb.on_data = [&](const char* p, size_t n) {
      if (body.size() + n > oci::kMaxManifestBytes) return false;
      body.append(p, n);
      return true;
    };
    cb.on_done = [&](bool good, const std::string& err) {
      ok = good;
      error = err;
      done = true;
    };
    up->fetch("GET", "/v2/" + d.remote_repo + "/manifests/" + ref, d.remote_repo, kManifestAccept, std::move(cb));
    if (auto r = run_until(done); !r) return std::unexpected(r.error() + " fetching " + what);
    if (!ok) return std::unexpected("fetching " + what + " failed: " + error);
    if (status != 200) return std::unexpected("upstream answered " + std::to_string(status) + " for " + what);
    if (type == "application/json") type.clear();
    auto info = oci::parse_manifest(body, type);
    if (!info) return std::unexpected("upstream sent an invalid manifest for " + what + ": " + info.error().message);
    oci::Digest digest = oci::digest_of(body);
    if (by_digest) {
      auto want = oci::parse_digest(ref);
      if (want && want->algo != digest.algo) digest = oci::digest_of(body, want->algo);
      if (!want || !(digest == *want)) return std::unexpected("upstream manifest for " + what + " does not match its digest");
    }
    Manifest m{digest.str(), info->media_type, std::move(body), std::move(*info)};
    auto rec = manifest_record(m.info, m.body.size(), cache::Origin::Proxied);
    std::optional<std::string> tag;
    if (!by_digest) tag = ref;
    if (auto p = cache::publish_manifest_bytes(index, store, m.body, {{}, digest, d.cache_repo, rec, tag, {}}); !p)
      return std::unexpected("storing " + what + ": " + p.error());
    progress.item("manifest " + d.cache_repo + (by_digest ? "@" : ":") + ref, m.body.size());
    return m;
  }

  // A stored manifest of `repo`; nullopt when absent.
  std::expected<std::optional<Manifest>, std::string> local_manifest(const std::string& repo, const std::string& digest) {
    std::optional<cache::ManifestRecord> rec;
    {
      auto txn = index.read();
      if (!index.manifest_in_repo(txn, repo, digest)) return std::nullopt;
      rec = index.manifest(txn, digest);
    }
    auto d = oci::parse_digest(digest);
    if (!rec || !d) return std::nullopt;
    auto body = store.read_small(*d, oci::kMaxManifestBytes);
    if (!body) return std::unexpected("manifest " + digest + " of " + repo + " is indexed but missing from the store");
    if (!(oci::digest_of(*body, d->algo) == *d)) return std::unexpected("stored manifest " + digest + " is corrupt");
    auto info = oci::parse_manifest(*body, rec->media_type);
    if (!info) return std::unexpected("stored manifest " + digest + " is invalid: " + info.error().message);
    return Manifest{digest, rec->media_type.empty() ? info->media_type : rec->media_type, std::move(*body),
                    std::move(*info)};
  }

  // GET of a blob into <root>/tmp, verified, published and linked into the cache repository.
  std::expected<void, std::string> fetch_blob(const proxy::Decision& d, const oci::Descriptor& desc) {
    auto* up = upstream(d);
    const std::string what = d.upstream + "/" + d.remote_repo + "@" + desc.digest.str();
    if (!up) return std::unexpected("no upstream for " + what);
    auto writer = store.begin_write(cache::StageArea::Temp, "fetch");
    if (!writer) return std::unexpected("cannot stage " + what + ": " + writer.error().message);
    const cache::StagedKey tmpl = (*writer)->key();
    struct Discard {
      const cache::BlobBackend& store;
      cache::StagedKey key;
      bool keep = false;
      ~Discard() {
        if (!keep) store.discard(key);
      }
    } cleanup{store, tmpl};
    progress.item("blob " + desc.digest.str(), uint64_t(desc.size));
    oci::Hasher hasher(desc.digest.algo);
    int status = 0;
    uint64_t got = 0;
    std::string error, write_error;
    bool done = false, ok = false;
    proxy::FetchCallbacks cb;
    cb.on_head = [&](const proxy::UpstreamResponse& res) { status = res.status; };
    cb.on_data = [&](const char* p, size_t n) {
      if (status != 200) return true;
      if (auto w = (*writer)->append(p, n, &hasher); !w) {
        write_error = w.error();
        return false;
      }
      got += n;
      progress.advance(n);
      return true;
    };
    cb.on_done = [&](bool good, const std::string& err) {
      ok = good;
      error = err;
      done = true;
    };
    up->fetch("GET", "/v2/" + d.remote_repo + "/blobs/" + desc.digest.str(), d.remote_repo, {}, std::move(cb));
    if (auto r = run_until(done); !r) return std::unexpected(r.error() + " fetching " + what);
    if (!write_error.empty()) return std::unexpected("staging " + what + ": " + write_error);
    if (!ok) return std::unexpected("fetching " + what + " failed: " + error);
    if (status != 200) return std::unexpected("upstream answered " + std::to_string(status) + " for " + what);
    if (got != uint64_t(desc.size)) return std::unexpected(what + ": upstream sent " + std::to_string(got) + " bytes, expected " + std::to_string(desc.size));
    if (!(hasher.finish() == desc.digest)) return std::unexpected(what + ": upstream content does not match its digest");
    if (auto e = cache::publish_blobs(index, store, {{tmpl, desc.digest, d.cache_repo, got, cache::Origin::Proxied}}); !e[0].empty())
      return std::unexpected("storing " + what + ": " + e[0]);
    cleanup.keep = true;
    return {};
  }
};

ImageSource::ImageSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageSource::~ImageSource() {
  if (impl_) {
    impl_->upstreams.clear();
    impl_->client.reset();
  }
}

std::expected<std::unique_ptr<ImageSource>, std::string> ImageSource::create(const config::Config& cfg,
                                                                             cache::Index& index,
                                                                             cache::BlobBackend& store,
                                                                             Progress& progress) {
  auto impl = std::make_unique<Impl>(cfg, index, store, progress);
  impl->table.default_upstream = cfg.default_upstream;
  impl->table.local_namespaces = cfg.local_namespaces;
  if (!cfg.upstreams.empty()) {
    impl->base.base = event_base_new();
    if (!impl->base.base) return std::unexpected("cannot create an event loop");
    auto client = proxy::HttpClient::create(impl->base.base);
    if (!client) return std::unexpected(client.error());
    impl->client = std::move(*client);
    impl->tokens = std::make_unique<proxy::TokenCache>();
    for (const auto& u : cfg.upstreams) {
      if (impl->upstreams.count(u.name)) continue;
      impl->upstreams.emplace(u.name, std::make_unique<proxy::Upstream>(*impl->client, *impl->tokens, u));
      impl->table.upstreams.push_back(u.name);
    }
  }
  return std::unique_ptr<ImageSource>(new ImageSource(std::move(impl)));
}

proxy::Decision ImageSource::route(const std::string& name) const {
  bool local_exists = false;
  if (!impl_->upstreams.empty()) {
    auto txn = impl_->index.read();
    local_exists = impl_->index.repo_exists(txn, name);
  }
  return proxy::route(impl_->table, name, "", local_exists);
}

std::expected<Manifest, std::string> ImageSource::manifest(const proxy::Decision& d, const ImageRef& ref,
                                                            Refresh refresh) {
  if (!ref.digest.empty()) return manifest(d, ref.digest);
  if (d.proxied && refresh == Refresh::Always) return impl_->fetch_manifest(d, ref.tag, false);
  std::optional<std::string> digest;
  {
    auto txn = impl_->index.read();
    digest = impl_->index.tag(txn, d.cache_repo, ref.tag);
  }
  if (digest) {
    auto m = impl_->local_manifest(d.cache_repo, *digest);
    if (!m) return std::unexpected(m.error());
    if (*m) return std::move(**m);
  }
  if (d.proxied) return impl_->fetch_manifest(d, ref.tag, false);
  return std::unexpected("not found in the local store (repository " + d.cache_repo + ")");
}

std::expected<Manifest, std::string> ImageSource::manifest(const proxy::Decision& d, const std::string& digest) {
  auto m = impl_->local_manifest(d.cache_repo, digest);
  if (!m) return std::unexpected(m.error());
  if (*m) return std::move(**m);
  if (d.proxied) return impl_->fetch_manifest(d, digest, true);
  return std::unexpected("manifest " + d.cache_repo + "@" + digest + " not found in the local store");
}

std::expected<void, std::string> ImageSource::ensure_blob(const proxy::Decision& d, const oci::Descriptor& desc) {
  if (auto size = impl_->store.stat(desc.digest)) {
    if (*size != uint64_t(desc.size))
      return std::unexpected("stored blob " + desc.digest.str() + " has " + std::to_string(*size) + " bytes, its descriptor says " + std::to_string(desc.size));
    if (d.proxied) {
      bool linked;
      {
        auto txn = impl_->index.read();
        linked = impl_->index.blob_linked(txn, d.cache_repo, desc.digest.str());
      }
      if (!linked) {
        if (auto l = impl_->index.link_blob(d.cache_repo, desc.digest.str(), *size, cache::Origin::Proxied); !l)
          return impl_->fetch_blob(d, desc);  // a file without a record (collected meanwhile): fetch and index it
      }
    }
    return {};
  }
  if (d.proxied) return impl_->fetch_blob(d, desc);
  return std::unexpected("blob " + desc.digest.str() + " of " + d.cache_repo + " not found in the local store");
}

}  // namespace wharf::commands
