// storage.s3 and storage.redirect: registry:2's S3 configuration (YAML and REGISTRY_* forms) loads, wharf's
// checks name the key, and the client settings follow from it.
#include <doctest/doctest.h>

#include <algorithm>

#include "src/config/config.hpp"
#include "src/s3/probe.hpp"

using namespace wharf::config;

namespace {

using Env = std::map<std::string, std::string>;

std::expected<Config, ConfigError> load(const std::string& yaml, std::vector<std::string>& warnings, const Env& env = {}) {
  return load_from_string(yaml, env, warnings);
}

bool warned(const std::vector<std::string>& warnings, std::string_view needle) {
  return std::any_of(warnings.begin(), warnings.end(), [&](const std::string& w) { return w.find(needle) != std::string::npos; });
}

// The configuration of issue 10, as a registry:2 user has it.
const char* kRegistry2 = R"(version: 0.1
storage:
  s3:
    region: ap-northeast-2
    bucket: my-registry-bucket
    accesskey: AKIAEXAMPLE
    secretkey: secret/EXAMPLE
    regionendpoint: http://minio:9000
    encrypt: true
    secure: false
    rootdirectory: /registry
  redirect:
    disable: false
)";

}  // namespace

TEST_CASE("s3 config: registry:2's storage.s3 loads unchanged") {
  std::vector<std::string> warnings;
  auto c = load(kRegistry2, warnings);
  REQUIRE_MESSAGE(c.has_value(), c.error().str());
  CHECK(warnings.empty());
  CHECK(c->storage_driver == StorageDriver::S3);
  CHECK(c->s3.region == "ap-northeast-2");
  CHECK(c->s3.bucket == "my-registry-bucket");
  CHECK(c->s3.access_key == "AKIAEXAMPLE");
  CHECK(c->s3.secret_key == "secret/EXAMPLE");
  CHECK(c->s3.encrypt);
  CHECK_FALSE(c->s3.secure);
  CHECK(c->s3.root_directory == "/registry");
  CHECK_FALSE(c->redirect_disabled);
  CHECK(c->s3.endpoint_url() == "http://minio:9000");
  CHECK(c->s3.path_style());  // an endpoint means path style unless forcepathstyle says otherwise
  CHECK(c->s3.chunk_size == 10u << 20);
  const auto client = wharf::s3::client_config(c->s3);
  CHECK(client.endpoint == "http://minio:9000");
  CHECK(client.addressing == wharf::s3::Addressing::PathStyle);
  CHECK(client.encrypt == "AES256");
  CHECK(client.root == "/registry");
}

TEST_CASE("s3 config: the REGISTRY_* form") {
  std::vector<std::string> warnings;
  const Env env{{"REGISTRY_STORAGE", "s3"},
                {"REGISTRY_STORAGE_S3_REGION", "us-east-1"},
                {"REGISTRY_STORAGE_S3_BUCKET", "b"},
                {"REGISTRY_STORAGE_S3_ACCESSKEY", "ak"},
                {"REGISTRY_STORAGE_S3_SECRETKEY", "sk"},
                {"REGISTRY_STORAGE_S3_REGIONENDPOINT", "rgw.local:7480"},
                {"REGISTRY_STORAGE_S3_SECURE", "false"},
                {"REGISTRY_STORAGE_S3_FORCEPATHSTYLE", "false"},
                {"REGISTRY_STORAGE_S3_CHUNKSIZE", "5242880"},
                {"REGISTRY_STORAGE_REDIRECT", "false"}};
  auto c = load("version: 0.1\n", warnings, env);
  REQUIRE_MESSAGE(c.has_value(), c.error().str());
  CHECK(warnings.empty());
  CHECK(c->storage_driver == StorageDriver::S3);
  CHECK(c->s3.endpoint_url() == "http://rgw.local:7480");
  CHECK_FALSE(c->s3.path_style());
  CHECK(c->s3.chunk_size == 5u << 20);
  CHECK(c->redirect_disabled);  // REGISTRY_STORAGE_REDIRECT=false: redirects off
  SUBCASE("REGISTRY_STORAGE_REDIRECT=true means redirects on") {
    Env on = env;
    on["REGISTRY_STORAGE_REDIRECT"] = "true";
    CHECK_FALSE(load("version: 0.1\n", warnings, on)->redirect_disabled);
    on["REGISTRY_STORAGE_REDIRECT_DISABLE"] = "true";  // the exact key wins (applied after, lexically)
    CHECK(load("version: 0.1\n", warnings, on)->redirect_disabled);
  }
  SUBCASE("REGISTRY_STORAGE=s3 replaces a filesystem driver from the file") {
    auto both = load("version: 0.1\nstorage: {filesystem: {rootdirectory: /x}}\n", warnings, env);
    REQUIRE(both.has_value());
    CHECK(both->storage_driver == StorageDriver::S3);
  }
}

TEST_CASE("s3 config: problems name the key") {
  std::vector<std::string> warnings;
  const std::string base = "version: 0.1\nstorage:\n  s3:\n    region: r\n    bucket: b\n    accesskey: a\n    secretkey: s\n";
  auto err = [&](const std::string& yaml, const Env& env = {}) {
    auto c = load(yaml, warnings, env);
    REQUIRE_FALSE(c.has_value());
    return c.error();
  };
  CHECK(err("version: 0.1\nstorage: {filesystem: {rootdirectory: /x}, s3: {region: r, bucket: b, accesskey: a, secretkey: s}}\n").str() ==
        "storage: names both filesystem and s3; a configuration uses one storage driver");
  CHECK(err("version: 0.1\nstorage: {s3: {bucket: b, accesskey: a, secretkey: s}}\n").key == "storage.s3.region");
  CHECK(err("version: 0.1\nstorage: {s3: {region: r, accesskey: a, secretkey: s}}\n").key == "storage.s3.bucket");
  CHECK(err("version: 0.1\nstorage: {s3: {region: r, bucket: b}}\n").key == "storage.s3.accesskey");
  CHECK(err("version: 0.1\nstorage: {s3: {region: r, bucket: b, accesskey: a}}\n").key == "storage.s3.secretkey");
  CHECK(err("version: 0.1\nstorage: {s3: {region: r, bucket: b, secretkey: s}}\n").key == "storage.s3.accesskey");
  CHECK(err(base + "    chunksize: 1MiB\n").str().starts_with("storage.s3.chunksize: must be from 5MiB"));
  CHECK(err(base + "    multipartcopychunksize: 6GiB\n").key == "storage.s3.multipartcopychunksize");
  CHECK(err(base + "    multipartcopythresholdsize: 6GiB\n").key == "storage.s3.multipartcopythresholdsize");
  CHECK(err(base + "    multipartcopymaxconcurrency: 0\n").key == "storage.s3.multipartcopymaxconcurrency");
  CHECK(err(base + "    storageclass: COLD\n").key == "storage.s3.storageclass");
  CHECK(err(base + "    regionendpoint: http://h/path\n").key == "storage.s3.regionendpoint");
  CHECK(err(base + "    regionendpoint: ftp://h\n").key == "storage.s3.regionendpoint");
  CHECK(err(base + "    encrypt: maybe\n").key == "storage.s3.encrypt");
  CHECK(err("version: 0.1\n", {{"REGISTRY_STORAGE", "s3"}, {"REGISTRY_STORAGE_S3_REGION", "r"}}).key == "storage.s3.bucket");
}

TEST_CASE("s3 config: keys wharf does not use are accepted with a warning") {
  std::vector<std::string> warnings;
  const std::string yaml = std::string("version: 0.1\nstorage:\n  s3:\n    region: r\n    bucket: b\n    accesskey: a\n") +
                           "    secretkey: s\n    v4auth: false\n    loglevel: debug\n    objectacl: public-read\n" +
                           "    accelerate: true\n    usedualstack: true\n    useragent: x\n    keyid: k\n" +
                           "    maxbuffers: 3\n    disablekeepalives: true\n    storageclass: NONE\n    skipverify: true\n    sessiontoken: t\n" +
                           "    multipartcopychunksize: 64MiB\n    multipartcopythresholdsize: 0\n" +
                           "    multipartcopymaxconcurrency: 8\n    forcepathstyle: true\n    unheardof: 1\n";
  auto c = load(yaml, warnings);
  REQUIRE_MESSAGE(c.has_value(), c.error().str());
  for (std::string_view key : {"storage.s3.v4auth: ", "storage.s3.loglevel: ", "storage.s3.objectacl: ", "storage.s3.accelerate: ",
                               "storage.s3.usedualstack: ", "storage.s3.useragent: ", "storage.s3.keyid: ignored without",
                               "storage.s3.unheardof: unknown key"}) {
    CHECK_MESSAGE(warned(warnings, key), key);
  }
  CHECK_FALSE(warned(warnings, "maxbuffers"));
  CHECK_FALSE(warned(warnings, "disablekeepalives"));
  CHECK(c->s3.endpoint_url() == "https://s3.r.amazonaws.com");
  CHECK(c->s3.path_style());
  CHECK(c->s3.skip_verify);
  CHECK(c->s3.session_token == "t");
  CHECK(c->s3.storage_class == "NONE");
  CHECK(c->s3.multipart_copy_chunk_size == 64u << 20);
  CHECK(c->s3.multipart_copy_threshold == 0);
  CHECK(c->s3.multipart_copy_max_concurrency == 8);
  const auto client = wharf::s3::client_config(c->s3);
  CHECK_FALSE(client.verify_tls);
  CHECK(client.credentials.session_token == "t");
  SUBCASE("AWS without an endpoint: virtual-host style") {
    auto aws = load("version: 0.1\nstorage: {s3: {region: eu-west-1, bucket: b, accesskey: a, secretkey: s}}\n", warnings);
    REQUIRE(aws.has_value());
    CHECK_FALSE(aws->s3.path_style());
    CHECK(wharf::s3::client_config(aws->s3).addressing == wharf::s3::Addressing::VirtualHost);
  }
}

TEST_CASE("s3 config: storage.s3.smallcachesize sizes the local cache of small blobs") {
  std::vector<std::string> warnings;
  auto c = load(kRegistry2, warnings);
  REQUIRE(c.has_value());
  CHECK(c->s3.small_cache_size == (64ull << 20));  // default
  std::string yaml = kRegistry2;
  yaml.replace(yaml.find("    rootdirectory"), 0, "    smallcachesize: 16MiB\n");
  c = load(yaml, warnings);
  REQUIRE_MESSAGE(c.has_value(), c.error().str());
  CHECK(c->s3.small_cache_size == (16ull << 20));
  yaml = kRegistry2;
  yaml.replace(yaml.find("    rootdirectory"), 0, "    smallcachesize: 100GiB\n");
  c = load(yaml, warnings);
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().key == "storage.s3.smallcachesize");
  CHECK(c.error().message.find("64GiB") != std::string::npos);
}
