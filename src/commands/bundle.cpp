// wharf export / import / prefetch: air-gapped bundles as OCI image layout tars.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "src/commands/commands.hpp"
#include "src/commands/stores.hpp"
#include "src/commands/progress.hpp"
#include "src/commands/source.hpp"
#include "src/commands/tar.hpp"
#include "src/util/json.hpp"
#include "src/oci/names.hpp"

namespace wharf::commands {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kRepoAnnotation = "io.wharf.repository";
constexpr const char* kRefAnnotation = "org.opencontainers.image.ref.name";

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int failed(const char* verb, const std::string& msg) {
  spdlog::error("{}: {}", verb, msg);
  return 1;
}

int usage(const char* text) {
  spdlog::error("usage: wharf {}", text);
  return 2;
}

// Image names from the arguments and --images-file; `flags` receives other --name value pairs.
std::expected<std::vector<ImageRef>, std::string> collect_images(const std::vector<std::string>& positional,
                                                                const std::vector<std::string>& files) {
  std::vector<std::string> names = positional;
  for (const auto& f : files) {
    auto more = read_images_file(f);
    if (!more) return std::unexpected(more.error());
    names.insert(names.end(), more->begin(), more->end());
  }
  std::vector<ImageRef> out;
  for (const auto& n : names) {
    auto r = parse_image_ref(n);
    if (!r) return std::unexpected(r.error());
    out.push_back(std::move(*r));
  }
  return out;
}

// Walks a manifest: child manifests (fetched when missing; sizes checked) depth first, then blobs
// (ensured present). on_manifest sees children before their parent.
std::expected<void, std::string> walk(ImageSource& src, const proxy::Decision& d, const Manifest& m,
                                      const std::function<void(const Manifest&)>& on_manifest,
                                      const std::function<void(const oci::Descriptor&)>& on_blob) {
  for (const auto& c : m.info.manifests) {
    auto child = src.manifest(d, c.digest.str());
    if (!child) return std::unexpected(child.error());
    if (child->body.size() != uint64_t(c.size))
      return std::unexpected("manifest " + c.digest.str() + " has " + std::to_string(child->body.size()) +
                             " bytes, its index says " + std::to_string(c.size));
    if (auto w = walk(src, d, *child, on_manifest, on_blob); !w) return w;
  }
  std::vector<const oci::Descriptor*> blobs;
  if (m.info.config) blobs.push_back(&*m.info.config);
  for (const auto& l : m.info.layers) blobs.push_back(&l);
  for (const auto* b : blobs) {
    if (is_foreign(*b)) continue;
    if (auto e = src.ensure_blob(d, *b); !e) return e;
    on_blob(*b);
  }
  on_manifest(m);
  return {};
}

// "linux/arm64" or "linux/arm/v7" against an index child's platform object.
bool platform_matches(const std::string& want, const std::string& platform_json) {
  if (platform_json.empty()) return false;
  auto parsed = util::parse_json(platform_json);
  if (!parsed || !parsed->is_object()) return false;
  const json& p = *parsed;
  std::string os = p.value("os", ""), arch = p.value("architecture", ""), variant = p.value("variant", "");
  auto parts = want.find('/');
  if (parts == std::string::npos) return false;
  std::string w_os = want.substr(0, parts), rest = want.substr(parts + 1), w_variant;
  if (auto v = rest.find('/'); v != std::string::npos) {
    w_variant = rest.substr(v + 1);
    rest.resize(v);
  }
  return os == w_os && arch == rest && (w_variant.empty() || variant == w_variant);
}

json descriptor_json(const std::string& media_type, const std::string& digest, uint64_t size,
                     const std::string& platform_json, const ImageRef& ref) {
  json d{{"mediaType", media_type}, {"digest", digest}, {"size", size}};
  if (!platform_json.empty())
    if (auto p = util::parse_json(platform_json); p) d["platform"] = std::move(*p);
  json ann{{kRepoAnnotation, ref.name}};
  if (!ref.tag.empty()) ann[kRefAnnotation] = ref.tag;
  d["annotations"] = ann;
  return d;
}

// One blob of the bundle: a manifest (bytes in memory) or a blob read from the store.
struct BundleBlob {
  oci::Digest digest;
  uint64_t size = 0;
  std::string body;  // manifests only
  bool in_memory = false;
};

std::string blob_name(const oci::Digest& d) {
  return std::string("blobs/") + (d.algo == oci::DigestAlgo::Sha256 ? "sha256/" : "sha512/") + d.hex;
}

std::expected<void, std::string> write_bundle(const std::string& out, const json& index_json,
                                              const std::vector<BundleBlob>& blobs, const cache::BlobBackend& store,
                                              Progress& progress) {
  const std::string tmp = out + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.fd < 0) return std::unexpected("cannot create " + tmp + ": " + std::strerror(errno));
  auto fail = [&](const std::string& msg) {
    ::unlink(tmp.c_str());
    return std::unexpected(msg);
  };
  TarWriter tar(fd.fd);
  if (auto w = tar.add("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"); !w) return fail(w.error());
  if (auto w = tar.add("index.json", index_json.dump()); !w) return fail(w.error());
  for (const auto& b : blobs) {
    progress.item(blob_name(b.digest), b.size);
    if (auto w = tar.begin(blob_name(b.digest), b.size); !w) return fail(w.error());
    if (b.in_memory) {
      if (auto w = tar.write(b.body.data(), b.body.size()); !w) return fail(w.error());
      progress.advance(b.size);
    } else {
      // Streamed through the backend (a file here, a GetObject from the bucket with storage.s3).
      uint64_t got = 0;
      std::string write_error;
      auto r = store.read_all(b.digest, [&](const char* p, size_t n) {
        if (got + n > b.size) {
          write_error = "blob " + b.digest.str() + " is larger in the store than its descriptor says";
          return false;
        }
        if (auto w = tar.write(p, n); !w) {
          write_error = w.error();
          return false;
        }
        got += n;
        progress.advance(n);
        return true;
      });
      if (!write_error.empty()) return fail(write_error);
      if (!r) return fail(r.error());
      if (got != b.size) return fail("reading blob " + b.digest.str() + ": shorter in the store than its descriptor says");
    }
    if (auto w = tar.end(); !w) return fail(w.error());
  }
  if (auto w = tar.finish(); !w) return fail(w.error());
  if (::fsync(fd.fd) != 0) return fail("fsync " + tmp + ": " + std::strerror(errno));
  if (::rename(tmp.c_str(), out.c_str()) != 0) return fail("rename to " + out + ": " + std::strerror(errno));
  return {};
}

}  // namespace

int export_images(const config::Config& cfg, const std::vector<std::string>& args) {
  static const char* kUsage = "export CONFIG OUT.tar IMAGE... [--images-file FILE] [--platform OS/ARCH]...";
  std::vector<std::string> positional, files, platforms;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--images-file" || args[i] == "--platform") {
      if (i + 1 >= args.size()) return usage(kUsage);
      auto& list = args[i] == "--platform" ? platforms : files;
      list.push_back(args[i + 1]);
      ++i;
    } else if (args[i].starts_with("--")) {
      return usage(kUsage);
    } else {
      positional.push_back(args[i]);
    }
  }
  if (positional.empty()) return usage(kUsage);
  const std::string out = positional.front();
  positional.erase(positional.begin());
  auto images = collect_images(positional, files);
  if (!images) return failed("export", images.error());
  if (images->empty()) return usage(kUsage);
  auto stores = open_stores(cfg);
  if (!stores) return failed("export", stores.error());
  Progress progress("export");
  auto src = ImageSource::create(cfg, *stores->index, stores->blobs(), progress);
  if (!src) return failed("export", src.error());

  std::vector<BundleBlob> blobs;
  std::set<std::string> seen;
  json manifests = json::array();
  uint64_t total = 0;
  auto add_manifest = [&](const Manifest& m) {
    if (!seen.insert(m.digest).second) return;
    blobs.push_back({*oci::parse_digest(m.digest), m.body.size(), m.body, true});
    total += m.body.size();
  };
  auto add_blob = [&](const oci::Descriptor& d) {
    if (!seen.insert(d.digest.str()).second) return;
    blobs.push_back({d.digest, uint64_t(d.size), {}, false});
    total += uint64_t(d.size);
  };
  for (const auto& ref : *images) {
    auto d = (*src)->route(ref.name);
    auto m = (*src)->manifest(d, ref, Refresh::IfMissing);
    if (!m) return failed("export", ref.str() + ": " + m.error());
    if (m->info.is_index && !platforms.empty()) {
      size_t chosen = 0;
      for (const auto& c : m->info.manifests) {
        bool match = false;
        for (const auto& p : platforms) match = match || platform_matches(p, c.platform_json);
        if (!match) continue;
        auto child = (*src)->manifest(d, c.digest.str());
        if (!child) return failed("export", ref.str() + ": " + child.error());
        if (auto w = walk(**src, d, *child, add_manifest, add_blob); !w) return failed("export", ref.str() + ": " + w.error());
        manifests.push_back(descriptor_json(child->media_type, child->digest, child->body.size(), c.platform_json, ref));
        ++chosen;
      }
      if (chosen == 0) return failed("export", ref.str() + ": no manifest for the requested platform(s)");
    } else {
      if (auto w = walk(**src, d, *m, add_manifest, add_blob); !w) return failed("export", ref.str() + ": " + w.error());
      manifests.push_back(descriptor_json(m->media_type, m->digest, m->body.size(), "", ref));
    }
    spdlog::info("export: {} → {}", ref.str(), m->digest);
  }
  json index{{"schemaVersion", 2}, {"mediaType", oci::media::kOciIndex}, {"manifests", manifests}};
  progress.add_total(total);
  if (auto w = write_bundle(out, index, blobs, stores->blobs(), progress); !w) return failed("export", w.error());
  progress.finish();
  spdlog::info("export: wrote {} image(s), {} blob(s) to {}", images->size(), blobs.size(), out);
  return 0;
}

int prefetch(const config::Config& cfg, const std::vector<std::string>& args) {
  static const char* kUsage = "prefetch CONFIG IMAGE... [--images-file FILE]";
  std::vector<std::string> positional, files;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--images-file") {
      if (i + 1 >= args.size()) return usage(kUsage);
      files.push_back(args[++i]);
    } else if (args[i].starts_with("--")) {
      return usage(kUsage);
    } else {
      positional.push_back(args[i]);
    }
  }
  auto images = collect_images(positional, files);
  if (!images) return failed("prefetch", images.error());
  if (images->empty()) return usage(kUsage);
  if (cfg.upstreams.empty()) return failed("prefetch", "the configuration has no upstreams");
  auto stores = open_stores(cfg);
  if (!stores) return failed("prefetch", stores.error());
  Progress progress("prefetch");
  auto src = ImageSource::create(cfg, *stores->index, stores->blobs(), progress);
  if (!src) return failed("prefetch", src.error());
  for (const auto& ref : *images) {
    auto d = (*src)->route(ref.name);
    if (!d.proxied) return failed("prefetch", ref.str() + " is a local repository, not served through an upstream");
    auto m = (*src)->manifest(d, ref, Refresh::Always);
    if (!m) return failed("prefetch", ref.str() + ": " + m.error());
    for (const auto& l : m->info.layers) progress.add_total(uint64_t(l.size));
    if (auto w = walk(**src, d, *m, [](const Manifest&) {}, [](const oci::Descriptor&) {}); !w)
      return failed("prefetch", ref.str() + ": " + w.error());
    spdlog::info("prefetch: {} cached as {}@{}", ref.str(), d.cache_repo, m->digest);
  }
  progress.finish();
  return 0;
}

}  // namespace wharf::commands
