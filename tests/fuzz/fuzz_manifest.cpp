// libFuzzer: oci::parse_manifest on arbitrary bodies (first byte picks the Content-Type). Invariants:
// never crashes; failures are MANIFEST_INVALID with a message; accepted manifests have valid digests,
// non-negative sizes, and serialized annotations/platforms that parse back as objects.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/oci/manifest.hpp"
#include "src/util/json.hpp"

namespace {

void check_json_object(const std::string& s) {
  if (s.empty()) return;
  auto j = wharf::util::parse_json(s);
  if (!j || !j->is_object()) __builtin_trap();
}

void check(const wharf::oci::Descriptor& d) {
  if (d.size < 0 || d.media_type.empty()) __builtin_trap();
  if (!wharf::oci::parse_digest(d.digest.str())) __builtin_trap();
  check_json_object(d.annotations_json);
  check_json_object(d.platform_json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wharf::oci;
  static const std::array<std::string_view, 6> kTypes = {
      "", media::kOciManifest, media::kOciIndex, media::kDockerManifest, media::kDockerList, "text/plain"};
  std::string_view content_type;
  if (size > 0) {
    content_type = kTypes[data[0] % kTypes.size()];
    ++data;
    --size;
  }
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto info = parse_manifest(body, content_type);
  if (!info) {
    if (info.error().code != ErrorCode::ManifestInvalid || info.error().message.empty()) __builtin_trap();
    return 0;
  }
  if (info->is_index != (info->media_type == media::kOciIndex || info->media_type == media::kDockerList))
    __builtin_trap();
  if (!info->is_index && !info->config) __builtin_trap();
  if (info->config) check(*info->config);
  for (const auto& d : info->layers) check(d);
  for (const auto& d : info->manifests) check(d);
  if (info->subject) check(*info->subject);
  check_json_object(info->annotations_json);
  return 0;
}
