// Validation of pushed manifests: OCI image manifest and index, Docker schema2 manifest and list.
#include "src/oci/manifest.hpp"

#include <cstddef>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "src/util/json.hpp"

namespace wharf::oci {
namespace {

using nlohmann::json;

constexpr std::string_view kDockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
constexpr std::string_view kDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";

std::unexpected<Error> invalid(std::string message) {
  return std::unexpected(Error{ErrorCode::ManifestInvalid, std::move(message), {}});
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool is_known_type(std::string_view t) {
  return t == media::kOciManifest || t == media::kOciIndex || t == media::kDockerManifest ||
         t == media::kDockerList;
}

bool is_index_type(std::string_view t) { return t == media::kOciIndex || t == media::kDockerList; }

bool is_schema1_type(std::string_view t) { return t == kDockerSchema1 || t == kDockerSchema1Signed; }

// "Application/Foo ; charset=utf-8" -> "application/foo".
std::string bare_media_type(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && (content_type.front() == ' ' || content_type.front() == '\t'))
    content_type.remove_prefix(1);
  while (!content_type.empty() && (content_type.back() == ' ' || content_type.back() == '\t'))
    content_type.remove_suffix(1);
  std::string out(content_type);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Checks an optional "annotations" member (an object of strings) and returns it serialized, or "" if absent.
std::expected<std::string, Error> annotations_of(const json& obj, const std::string& path) {
  const auto it = obj.find("annotations");
  if (it == obj.end()) return std::string();
  if (!it->is_object()) return invalid(path + "annotations: must be an object");
  for (const auto& [key, value] : it->items()) {
    if (!value.is_string()) return invalid(path + "annotations." + key + ": must be a string");
  }
  return dump(*it);
}

// Reads an optional string member into `out`; fails if present with another type.
std::expected<void, Error> optional_string(const json& obj, const char* key, const std::string& path,
                                           std::string& out) {
  const auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (!it->is_string()) return invalid(path + key + ": must be a string");
  out = it->get<std::string>();
  return {};
}

// Parses one descriptor found at `path` (e.g. "layers[2]").
std::expected<Descriptor, Error> parse_descriptor(const json& j, const std::string& path) {
  if (!j.is_object()) return invalid(path + ": must be an object");
  const std::string prefix = path + ".";
  Descriptor d;

  const auto mt = j.find("mediaType");
  if (mt == j.end()) return invalid(prefix + "mediaType: missing");
  if (!mt->is_string() || mt->get_ref<const std::string&>().empty())
    return invalid(prefix + "mediaType: must be a non-empty string");
  d.media_type = mt->get<std::string>();

  const auto dg = j.find("digest");
  if (dg == j.end()) return invalid(prefix + "digest: missing");
  std::optional<Digest> digest;
  if (dg->is_string()) digest = parse_digest(dg->get_ref<const std::string&>());
  if (!digest) return invalid(prefix + "digest: invalid digest");
  d.digest = std::move(*digest);

  const auto sz = j.find("size");
  if (sz == j.end()) return invalid(prefix + "size: missing");
  const bool size_ok = (sz->is_number_unsigned() &&
                        sz->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) ||
                       (sz->is_number_integer() && !sz->is_number_unsigned() && sz->get<int64_t>() >= 0);
  if (!size_ok) return invalid(prefix + "size: must be a non-negative integer");
  d.size = sz->get<int64_t>();

  if (auto r = optional_string(j, "artifactType", prefix, d.artifact_type); !r) return std::unexpected(r.error());
  auto annotations = annotations_of(j, prefix);
  if (!annotations) return std::unexpected(annotations.error());
  d.annotations_json = std::move(*annotations);

  const auto pf = j.find("platform");
  if (pf != j.end()) {
    if (!pf->is_object()) return invalid(prefix + "platform: must be an object");
    d.platform_json = dump(*pf);
  }
  return d;
}

// Parses the array member `key` into descriptors; `required` decides whether absence is an error.
std::expected<std::vector<Descriptor>, Error> parse_descriptor_array(const json& body, const char* key,
                                                                     bool required) {
  std::vector<Descriptor> out;
  const auto it = body.find(key);
  if (it == body.end()) {
    if (required) return invalid(std::string(key) + ": missing");
    return out;
  }
  if (!it->is_array()) return invalid(std::string(key) + ": must be an array");
  out.reserve(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    auto d = parse_descriptor((*it)[i], std::string(key) + "[" + std::to_string(i) + "]");
    if (!d) return std::unexpected(d.error());
    out.push_back(std::move(*d));
  }
  return out;
}

// Picks the effective media type from the body's mediaType, the Content-Type, or the document's shape.
std::expected<std::string, Error> effective_media_type(const json& body, const std::string& content_type) {
  const bool ct_known = is_known_type(content_type);
  const auto mt = body.find("mediaType");
  if (mt != body.end()) {
    if (!mt->is_string()) return invalid("mediaType: must be a string");
    const std::string& declared = mt->get_ref<const std::string&>();
    if (!is_known_type(declared)) return invalid("mediaType: unsupported media type \"" + declared + "\"");
    if (ct_known && declared != content_type)
      return invalid("mediaType: \"" + declared + "\" does not match Content-Type \"" + content_type + "\"");
    return declared;
  }
  if (ct_known) return content_type;
  if (body.contains("manifests")) return std::string(media::kOciIndex);
  if (body.contains("config")) return std::string(media::kOciManifest);
  return invalid("mediaType: missing, and the manifest type cannot be determined");
}

}  // namespace

std::expected<ManifestInfo, Error> parse_manifest(std::string_view body_text, std::string_view content_type) {
  util::JsonLimits limits;
  limits.max_depth = kMaxManifestDepth;
  limits.max_bytes = kMaxManifestBytes;
  auto parsed = util::parse_json(body_text, limits);
  if (!parsed) return invalid("manifest " + parsed.error().message);
  const json body = std::move(*parsed);
  if (!body.is_object()) return invalid("manifest must be a JSON object");

  const std::string ct = bare_media_type(content_type);
  const auto sv = body.find("schemaVersion");
  const auto mt = body.find("mediaType");
  const bool schema1 = is_schema1_type(ct) ||
                       (mt != body.end() && mt->is_string() && is_schema1_type(mt->get_ref<const std::string&>())) ||
                       (sv != body.end() && sv->is_number_integer() && *sv == 1);
  if (schema1) return invalid("schema1 manifests are not supported");
  if (sv == body.end()) return invalid("schemaVersion: missing");
  if (!sv->is_number_integer() || *sv != 2) return invalid("schemaVersion: must be the integer 2");

  ManifestInfo info;
  auto media_type = effective_media_type(body, ct);
  if (!media_type) return std::unexpected(media_type.error());
  info.media_type = std::move(*media_type);
  info.is_index = is_index_type(info.media_type);

  if (info.is_index) {
    auto manifests = parse_descriptor_array(body, "manifests", /*required=*/true);
    if (!manifests) return std::unexpected(manifests.error());
    info.manifests = std::move(*manifests);
  } else {
    const auto cfg = body.find("config");
    if (cfg == body.end()) return invalid("config: missing");
    auto config = parse_descriptor(*cfg, "config");
    if (!config) return std::unexpected(config.error());
    info.config = std::move(*config);
    auto layers = parse_descriptor_array(body, "layers", /*required=*/true);
    if (!layers) return std::unexpected(layers.error());
    info.layers = std::move(*layers);
  }

  const auto sub = body.find("subject");
  if (sub != body.end()) {
    auto subject = parse_descriptor(*sub, "subject");
    if (!subject) return std::unexpected(subject.error());
    info.subject = std::move(*subject);
  }

  if (auto r = optional_string(body, "artifactType", "", info.artifact_type); !r) return std::unexpected(r.error());
  if (info.artifact_type.empty() && info.config) info.artifact_type = info.config->media_type;

  auto annotations = annotations_of(body, "");
  if (!annotations) return std::unexpected(annotations.error());
  info.annotations_json = std::move(*annotations);
  return info;
}

}  // namespace wharf::oci
