#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "src/oci/manifest.hpp"

using namespace wharf::oci;
using nlohmann::json;

namespace {

const std::string kD1 = "sha256:" + std::string(64, 'a');
const std::string kD2 = "sha256:" + std::string(64, 'b');
const std::string kD3 = "sha256:" + std::string(64, 'c');

json descriptor(std::string_view media_type, const std::string& digest, int64_t size) {
  return json{{"mediaType", media_type}, {"digest", digest}, {"size", size}};
}

json oci_manifest() {
  return json{{"schemaVersion", 2},
              {"mediaType", media::kOciManifest},
              {"config", descriptor("application/vnd.oci.image.config.v1+json", kD1, 10)},
              {"layers", json::array({descriptor("application/vnd.oci.image.layer.v1.tar+gzip", kD2, 20),
                                      descriptor("application/vnd.oci.image.layer.v1.tar+gzip", kD3, 30)})}};
}

json oci_index() {
  json child = descriptor(media::kOciManifest, kD1, 500);
  child["platform"] = {{"architecture", "amd64"}, {"os", "linux"}};
  return json{{"schemaVersion", 2}, {"mediaType", media::kOciIndex}, {"manifests", json::array({child})}};
}

// Expects ManifestInvalid whose message contains `needle`.
void check_invalid(const json& body, std::string_view content_type, std::string_view needle) {
  const auto r = parse_manifest(body.dump(), content_type);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == ErrorCode::ManifestInvalid);
  INFO("message: ", r.error().message);
  CHECK(r.error().message.find(needle) != std::string::npos);
}

}  // namespace

TEST_CASE("parse_manifest") {
  SUBCASE("OCI image manifest") {
    const auto r = parse_manifest(oci_manifest().dump(), media::kOciManifest);
    REQUIRE(r.has_value());
    CHECK(r->media_type == media::kOciManifest);
    CHECK_FALSE(r->is_index);
    REQUIRE(r->config);
    CHECK(r->config->digest.str() == kD1);
    CHECK(r->config->size == 10);
    REQUIRE(r->layers.size() == 2);
    CHECK(r->layers[1].digest.str() == kD3);
    CHECK(r->layers[1].size == 30);
    CHECK(r->manifests.empty());
    CHECK_FALSE(r->subject);
    CHECK(r->artifact_type == "application/vnd.oci.image.config.v1+json");
    CHECK(r->annotations_json.empty());
  }
  SUBCASE("OCI index keeps child platforms") {
    const auto r = parse_manifest(oci_index().dump(), "");
    REQUIRE(r.has_value());
    CHECK(r->is_index);
    CHECK(r->media_type == media::kOciIndex);
    CHECK_FALSE(r->config);
    REQUIRE(r->manifests.size() == 1);
    CHECK(r->manifests[0].size == 500);
    CHECK(json::parse(r->manifests[0].platform_json)["os"] == "linux");
    CHECK(r->artifact_type.empty());
  }
  SUBCASE("Docker schema2 manifest and manifest list") {
    json m = oci_manifest();
    m["mediaType"] = media::kDockerManifest;
    const auto a = parse_manifest(m.dump(), media::kDockerManifest);
    REQUIRE(a.has_value());
    CHECK(a->media_type == media::kDockerManifest);
    CHECK_FALSE(a->is_index);
    json l = oci_index();
    l["mediaType"] = media::kDockerList;
    const auto b = parse_manifest(l.dump(), media::kDockerList);
    REQUIRE(b.has_value());
    CHECK(b->is_index);
  }
  SUBCASE("media type from Content-Type when the body has none, parameters stripped") {
    json m = oci_index();
    m.erase("mediaType");
    const auto r = parse_manifest(m.dump(), "application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8");
    REQUIRE(r.has_value());
    CHECK(r->media_type == media::kDockerList);
    CHECK(r->is_index);
  }
  SUBCASE("media type inferred from the shape") {
    json m = oci_manifest();
    m.erase("mediaType");
    const auto a = parse_manifest(m.dump(), "application/octet-stream");
    REQUIRE(a.has_value());
    CHECK(a->media_type == media::kOciManifest);
    json i = oci_index();
    i.erase("mediaType");
    const auto b = parse_manifest(i.dump(), "");
    REQUIRE(b.has_value());
    CHECK(b->media_type == media::kOciIndex);
    check_invalid(json{{"schemaVersion", 2}}, "", "mediaType");
  }
  SUBCASE("body and Content-Type must agree") {
    check_invalid(oci_manifest(), media::kOciIndex, "does not match");
    CHECK(parse_manifest(oci_manifest().dump(), "application/vnd.oci.image.manifest.v1+json;charset=utf-8"));
  }
  SUBCASE("unknown body mediaType") {
    json m = oci_manifest();
    m["mediaType"] = "application/json";
    check_invalid(m, "", "mediaType");
    m["mediaType"] = 7;
    check_invalid(m, "", "mediaType");
  }
  SUBCASE("not JSON or not an object") {
    const auto a = parse_manifest("{not json", "");
    REQUIRE_FALSE(a);
    CHECK(a.error().code == ErrorCode::ManifestInvalid);
    const auto b = parse_manifest("[1,2]", "");
    REQUIRE_FALSE(b);
    CHECK(b.error().code == ErrorCode::ManifestInvalid);
    CHECK_FALSE(parse_manifest("", media::kOciManifest));
  }
  SUBCASE("schemaVersion must be the integer 2") {
    json m = oci_manifest();
    m.erase("schemaVersion");
    check_invalid(m, "", "schemaVersion");
    m["schemaVersion"] = 3;
    check_invalid(m, "", "schemaVersion");
    m["schemaVersion"] = "2";
    check_invalid(m, "", "schemaVersion");
    m["schemaVersion"] = 2.5;
    check_invalid(m, "", "schemaVersion");
  }
  SUBCASE("schema1 is refused") {
    const json s1 = {{"schemaVersion", 1}, {"name", "x"}, {"tag", "latest"}, {"fsLayers", json::array()}};
    check_invalid(s1, "", "schema1 manifests are not supported");
    check_invalid(oci_manifest(), "application/vnd.docker.distribution.manifest.v1+prettyjws",
                  "schema1 manifests are not supported");
    json m = oci_manifest();
    m["mediaType"] = "application/vnd.docker.distribution.manifest.v1+json";
    check_invalid(m, "", "schema1 manifests are not supported");
  }
  SUBCASE("image manifest requires config and a layers array") {
    json m = oci_manifest();
    m.erase("config");
    check_invalid(m, "", "config");
    m = oci_manifest();
    m.erase("layers");
    check_invalid(m, "", "layers");
    m["layers"] = json::object();
    check_invalid(m, "", "layers: must be an array");
    m["layers"] = json::array();
    const auto r = parse_manifest(m.dump(), "");
    REQUIRE(r.has_value());
    CHECK(r->layers.empty());
  }
  SUBCASE("index requires a manifests array") {
    json i = oci_index();
    i.erase("manifests");
    check_invalid(i, "", "manifests");
    i["manifests"] = "x";
    check_invalid(i, "", "manifests: must be an array");
  }
  SUBCASE("descriptor errors name the field") {
    json m = oci_manifest();
    m["layers"][1]["digest"] = "sha256:ABC";
    check_invalid(m, "", "layers[1].digest: invalid digest");
    m = oci_manifest();
    m["layers"][0].erase("mediaType");
    check_invalid(m, "", "layers[0].mediaType");
    m = oci_manifest();
    m["config"]["size"] = -1;
    check_invalid(m, "", "config.size");
    m["config"]["size"] = 1.5;
    check_invalid(m, "", "config.size");
    m["config"]["size"] = "10";
    check_invalid(m, "", "config.size");
    m = oci_manifest();
    m["config"].erase("digest");
    check_invalid(m, "", "config.digest");
    m = oci_manifest();
    m["layers"][0] = "sha256:x";
    check_invalid(m, "", "layers[0]: must be an object");
    json i = oci_index();
    i["manifests"][0]["platform"] = "linux/amd64";
    check_invalid(i, "", "manifests[0].platform");
    m = oci_manifest();
    m["layers"][0]["annotations"] = {{"k", 1}};
    check_invalid(m, "", "layers[0].annotations.k");
  }
  SUBCASE("descriptor optional fields are kept") {
    json m = oci_manifest();
    m["layers"][0]["annotations"] = {{"org.opencontainers.image.title", "a.txt"}};
    m["layers"][0]["artifactType"] = "application/x-thing";
    const auto r = parse_manifest(m.dump(), "");
    REQUIRE(r.has_value());
    CHECK(r->layers[0].artifact_type == "application/x-thing");
    CHECK(json::parse(r->layers[0].annotations_json)["org.opencontainers.image.title"] == "a.txt");
  }
  SUBCASE("subject, artifactType and annotations for referrers") {
    json m = oci_manifest();
    m["subject"] = descriptor(media::kOciManifest, kD2, 123);
    m["artifactType"] = "application/vnd.example.sbom";
    m["annotations"] = {{"org.opencontainers.image.created", "2024-01-01T00:00:00Z"}};
    const auto r = parse_manifest(m.dump(), "");
    REQUIRE(r.has_value());
    REQUIRE(r->subject);
    CHECK(r->subject->digest.str() == kD2);
    CHECK(r->subject->size == 123);
    CHECK(r->artifact_type == "application/vnd.example.sbom");
    CHECK(json::parse(r->annotations_json)["org.opencontainers.image.created"] == "2024-01-01T00:00:00Z");
    m["subject"] = descriptor(media::kOciManifest, "sha256:short", 1);
    check_invalid(m, "", "subject.digest");
    m["subject"] = descriptor(media::kOciManifest, kD2, 123);
    m["artifactType"] = 5;
    check_invalid(m, "", "artifactType");
    m["artifactType"] = "x/y";
    m["annotations"] = json::array();
    check_invalid(m, "", "annotations");
  }
  SUBCASE("index with artifactType") {
    json i = oci_index();
    i["artifactType"] = "application/vnd.example.bundle";
    const auto r = parse_manifest(i.dump(), "");
    REQUIRE(r.has_value());
    CHECK(r->artifact_type == "application/vnd.example.bundle");
  }
}
