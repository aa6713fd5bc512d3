#pragma once
// Where export and prefetch get images: the local store and cache first, the configured upstreams
// for what is missing (fetched on a private event loop, verified, and stored in the cache exactly as
// the server's pull-through does: repo "<upstream>/<repo>", Origin::Proxied).
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/blob_backend.hpp"
#include "cache/index.hpp"
#include "proxy/routing.hpp"
#include "src/config/config.hpp"
#include "src/oci/manifest.hpp"

namespace wharf::commands {

class Progress;

// "repo:tag" or "repo@sha256:..." as the user wrote it.
struct ImageRef {
  std::string name;    // repository as named by the user ("library/alpine", "docker.io/library/alpine")
  std::string tag;     // empty when by digest
  std::string digest;  // empty when by tag
  std::string str() const { return name + (digest.empty() ? ":" + tag : "@" + digest); }
};

// Parses an image reference; a missing tag means "latest". Message names the problem.
std::expected<ImageRef, std::string> parse_image_ref(const std::string& s);

// Reads image names, one per line (blank lines and # comments ignored); message names the file.
std::expected<std::vector<std::string>, std::string> read_images_file(const std::string& path);

// A manifest's bytes with its parsed form.
struct Manifest {
  std::string digest;
  std::string media_type;
  std::string body;
  oci::ManifestInfo info;
};

// The index record for a manifest body (blobs, children, subject...). `info` must be parse_manifest's.
cache::ManifestRecord manifest_record(const oci::ManifestInfo& info, size_t size, cache::Origin origin);

// True for descriptors of layers that are never distributed (Windows foreign layers).
bool is_foreign(const oci::Descriptor& d);

enum class Refresh { IfMissing, Always };

class ImageSource {
 public:
  // Sets up the upstream clients (when the config has any); fails if libevent/libcurl cannot start.
  static std::expected<std::unique_ptr<ImageSource>, std::string> create(const config::Config& cfg,
                                                                        cache::Index& index,
                                                                        cache::BlobBackend& store, Progress& progress);
  ~ImageSource();

  // Routes a repository name like the server: locally pushed repositories first, then the upstreams.
  proxy::Decision route(const std::string& name) const;
  // The manifest a reference names, from the store, or (proxied, missing or Refresh::Always) from the
  // upstream, then cached. Fails naming the image and the reason.
  std::expected<Manifest, std::string> manifest(const proxy::Decision& d, const ImageRef& ref, Refresh refresh);
  // A manifest by digest in the decision's repository (fetched when proxied and missing).
  std::expected<Manifest, std::string> manifest(const proxy::Decision& d, const std::string& digest);
  // Makes sure blob `desc` is in the store (fetched when proxied and missing); fails if it cannot be.
  std::expected<void, std::string> ensure_blob(const proxy::Decision& d, const oci::Descriptor& desc);

 private:
  struct Impl;
  explicit ImageSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::commands
