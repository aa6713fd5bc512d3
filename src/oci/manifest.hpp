#pragma once
// Media types, and validation/parsing of pushed manifests (image manifest, index, Docker schema2, list).
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/oci/digest.hpp"
#include "src/oci/errors.hpp"

namespace wharf::oci {

namespace media {
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kOciEmpty = "application/vnd.oci.empty.v1+json";
}  // namespace media

inline constexpr size_t kMaxManifestBytes = 4 * 1024 * 1024;
// Deepest nesting of arrays/objects accepted anywhere in a manifest (real ones use 4 or 5).
inline constexpr size_t kMaxManifestDepth = 64;

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::string artifact_type;    // may be empty
  std::string annotations_json; // serialized object, empty if none
  std::string platform_json;    // serialized object, empty if none (index children)
};

struct ManifestInfo {
  std::string media_type;             // effective media type (from the body's mediaType, else the Content-Type)
  bool is_index = false;              // OCI index or Docker manifest list
  std::optional<Descriptor> config;   // image manifests
  std::vector<Descriptor> layers;     // image manifests (blobs)
  std::vector<Descriptor> manifests;  // indexes (child manifests)
  std::optional<Descriptor> subject;
  std::string artifact_type;          // artifactType, else config.mediaType for image manifests (referrers rule)
  std::string annotations_json;       // serialized object, empty if none
};

// Validates a manifest body: JSON, schemaVersion 2, a known media type that agrees with `content_type`
// (when both are given), well-formed descriptors with valid digests and non-negative sizes.
// Fails with ManifestInvalid (message names the problem), also for bodies over kMaxManifestBytes, nesting
// deeper than kMaxManifestDepth, or a DOM far larger than the body (util::parse_json's bounds).
std::expected<ManifestInfo, Error> parse_manifest(std::string_view body, std::string_view content_type);

}  // namespace wharf::oci
