#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "src/config/config.hpp"

using namespace wharf::config;
using namespace std::chrono_literals;
using Env = std::map<std::string, std::string>;

namespace {

struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wharf-config-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

Config load_ok(const std::string& yaml, std::vector<std::string>& warnings, const Env& env = {}) {
  auto c = load_from_string(yaml, env, warnings);
  if (!c) FAIL("unexpected error: " << c.error().str());
  return *c;
}

Config load_ok(const std::string& yaml, const Env& env = {}) {
  std::vector<std::string> warnings;
  return load_ok(yaml, warnings, env);
}

ConfigError load_error(const std::string& yaml, const Env& env = {}) {
  std::vector<std::string> warnings;
  auto c = load_from_string(yaml, env, warnings);
  if (c) FAIL("expected an error for:\n" << yaml);
  return c.error();
}

bool has_warning(const std::vector<std::string>& warnings, std::string_view needle) {
  return std::any_of(warnings.begin(), warnings.end(), [&](const std::string& w) { return w.find(needle) != std::string::npos; });
}

const std::string kVersion = "version: 0.1\n";

// The config.yml shipped in the registry:2 image.
const std::string kRegistryImageConfig = R"(version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
)";

}  // namespace

TEST_CASE("parse_duration") {
  SUBCASE("single units") {
    CHECK(parse_duration("10s") == 10s);
    CHECK(parse_duration("5m") == 300s);
    CHECK(parse_duration("168h") == 168h);
    CHECK(parse_duration("0") == 0s);
    CHECK(parse_duration("0s") == 0s);
  }
  SUBCASE("compound and fractional") {
    CHECK(parse_duration("1h30m") == 5400s);
    CHECK(parse_duration("2h10m5s") == 7805s);
    CHECK(parse_duration("1.5h") == 5400s);
    CHECK(parse_duration("+90s") == 90s);
  }
  SUBCASE("sub-second values round up to a whole second") {
    CHECK(parse_duration("500ms") == 1s);
    CHECK(parse_duration("1500ms") == 2s);
    CHECK(parse_duration("10us") == 1s);
    CHECK(parse_duration("10\xC2\xB5s") == 1s);
    CHECK(parse_duration("1ns") == 1s);
    CHECK(parse_duration("2000ms") == 2s);
  }
  SUBCASE("invalid") {
    CHECK_FALSE(parse_duration(""));
    CHECK_FALSE(parse_duration("10"));
    CHECK_FALSE(parse_duration("h"));
    CHECK_FALSE(parse_duration("10x"));
    CHECK_FALSE(parse_duration("10 s"));
    CHECK_FALSE(parse_duration("-5s"));
    CHECK_FALSE(parse_duration("1h-5m"));
    CHECK_FALSE(parse_duration("3000000h"));  // beyond Go's ~292 years
  }
}

TEST_CASE("parse_size") {
  SUBCASE("bare numbers are bytes") {
    CHECK(parse_size("0") == 0u);
    CHECK(parse_size("1024") == 1024u);
    CHECK(parse_size("1024B") == 1024u);
  }
  SUBCASE("decimal units") {
    CHECK(parse_size("10MB") == 10'000'000u);
    CHECK(parse_size("1KB") == 1000u);
    CHECK(parse_size("2GB") == 2'000'000'000u);
    CHECK(parse_size("3TB") == 3'000'000'000'000u);
    CHECK(parse_size("1.5G") == 1'500'000'000u);
    CHECK(parse_size("10 mb") == 10'000'000u);
  }
  SUBCASE("binary units") {
    CHECK(parse_size("1KiB") == 1024u);
    CHECK(parse_size("10MiB") == 10u * 1024 * 1024);
    CHECK(parse_size("50GiB") == 50ull * 1024 * 1024 * 1024);
    CHECK(parse_size("2TiB") == 2ull * 1024 * 1024 * 1024 * 1024);
    CHECK(parse_size("1Gi") == 1024u * 1024 * 1024);
  }
  SUBCASE("invalid") {
    CHECK_FALSE(parse_size(""));
    CHECK_FALSE(parse_size("GB"));
    CHECK_FALSE(parse_size("10XB"));
    CHECK_FALSE(parse_size("-1"));
    CHECK_FALSE(parse_size("ten"));
    CHECK_FALSE(parse_size("99999999TB"));
  }
}

TEST_CASE("env_var_name") {
  CHECK(env_var_name("http.addr") == "REGISTRY_HTTP_ADDR");
  CHECK(env_var_name("storage.filesystem.rootdirectory") == "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY");
  CHECK(env_var_name("auth") == "REGISTRY_AUTH");
}

TEST_CASE("schema") {
  const auto keys = schema();
  std::set<std::string_view> paths;
  for (const KeySpec& k : keys) paths.insert(k.path);

  SUBCASE("paths and their variables are unique") {
    CHECK(paths.size() == keys.size());
    std::set<std::string> vars;
    for (const KeySpec& k : keys) vars.insert(env_var_name(k.path));
    CHECK(vars.size() == keys.size());
  }
  SUBCASE("every parent is listed before its children") {
    std::set<std::string_view> before;
    for (const KeySpec& k : keys) {
      const size_t dot = k.path.rfind('.');
      if (dot != std::string_view::npos) {
        CHECK_MESSAGE(before.contains(k.path.substr(0, dot)), k.path);
      }
      before.insert(k.path);
    }
  }
  SUBCASE("registry:2's documented variables name known keys") {
    for (std::string_view path : {"http.addr", "storage.delete.enabled", "auth.htpasswd.path", "http.tls.certificate",
                                  "storage.filesystem.rootdirectory", "log.level", "proxy.remoteurl"}) {
      CHECK_MESSAGE(paths.contains(path), path);
    }
  }
  SUBCASE("storage and auth name their driver") {
    for (const KeySpec& k : keys) {
      if (k.path == "storage" || k.path == "auth") CHECK_FALSE(k.driver_error.empty());
    }
  }
}

TEST_CASE("default_yaml") {
  std::vector<std::string> warnings;
  const Config c = load_ok(default_yaml(), warnings);
  CHECK(warnings.empty());
  CHECK(c.version_major == 0);
  CHECK(c.log_level == "info");
  CHECK(c.log_format == LogFormat::Text);
  CHECK(c.root_directory == "./data");
  CHECK(c.delete_enabled);
  CHECK(c.http_addr == "127.0.0.1:5000");
  CHECK(c.htpasswd_path.empty());
  REQUIRE(c.upstreams.size() == 1);
  CHECK(c.upstreams[0].name == "docker.io");
  CHECK(c.upstreams[0].url == "https://registry-1.docker.io");
}

TEST_CASE("load_from_string") {
  SUBCASE("registry:2's own image config loads unchanged") {
    std::vector<std::string> warnings;
    const Config c = load_ok(kRegistryImageConfig, warnings);
    CHECK(c.root_directory == "/var/lib/registry");
    CHECK(c.http_addr == ":5000");
    REQUIRE(c.http_headers.size() == 1);
    CHECK(c.http_headers[0] == std::pair<std::string, std::string>("X-Content-Type-Options", "nosniff"));
    CHECK(c.health_storage_enabled);
    CHECK(c.health_storage_interval == 10s);
    CHECK(c.health_storage_threshold == 3);
    CHECK(c.upstreams.empty());
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].starts_with("storage.cache.blobdescriptor: "));
  }
  SUBCASE("registry:2 sections wharf does not implement only warn") {
    std::vector<std::string> warnings;
    load_ok(kVersion + R"(
log: {hooks: [{type: mail}]}
middleware: {registry: [{name: x}]}
notifications: {endpoints: [{name: a, url: http://x}]}
redis: {addrs: [localhost:6379]}
storage: {filesystem: {rootdirectory: /r}, redirect: {disable: true}, tag: {concurrencylimit: 8}}
http: {tls: {clientcas: [/ca.pem], letsencrypt: {cachefile: /c}}, http2: {disabled: true}}
health: {file: [{file: /x}], tcp: [{addr: "x:1"}]}
proxy: {exec: {command: helper}}
)", warnings);
    for (std::string_view key : {"log.hooks: ", "middleware: ", "notifications: ", "redis: ",
                                 "http.tls.clientcas: ", "http.tls.letsencrypt: ", "health.file: ", "health.tcp: ",
                                 "proxy.exec: "}) {
      CHECK_MESSAGE(has_warning(warnings, key), key);
    }
    CHECK_FALSE(has_warning(warnings, "http.http2"));
    CHECK_FALSE(has_warning(warnings, "storage.tag"));
  }
  SUBCASE("version is required and must be 0.1") {
    CHECK(load_error("http: {addr: ':5000'}\n").key == "version");
    CHECK(load_error("").key == "version");
    CHECK(load_error("version: 0.2\n").key == "version");
    CHECK(load_ok("version: '0.1'\n").version_major == 0);
  }
  SUBCASE("unknown keys warn with their full path") {
    std::vector<std::string> warnings;
    load_ok(kVersion + "http:\n  foo: 1\n  tls:\n    bar: x\nfrobnicate: true\n", warnings);
    CHECK(has_warning(warnings, "http.foo: unknown key, ignored"));
    CHECK(has_warning(warnings, "http.tls.bar: unknown key, ignored"));
    CHECK(has_warning(warnings, "frobnicate: unknown key, ignored"));
  }
  SUBCASE("invalid YAML names the line") {
    const ConfigError e = load_error("version: 0.1\nhttp: [\n");
    CHECK(e.message.find("line") != std::string::npos);
    CHECK(load_error("- a\n- b\n").message.find("mapping") != std::string::npos);
  }
  SUBCASE("storage: filesystem root directory") {
    CHECK(load_ok(kVersion).root_directory == "./data");
    CHECK(load_ok(kVersion + "storage: {delete: {enabled: true}}\n").root_directory == "./data");
    CHECK(load_ok(kVersion + "storage: {filesystem: {rootdirectory: /srv/r}}\n").root_directory == "/srv/r");
    CHECK(load_ok(kVersion + "storage:\n  filesystem:\n").root_directory == "/var/lib/registry");
    CHECK(load_ok(kVersion + "storage: filesystem\n").root_directory == "/var/lib/registry");
    CHECK(load_error(kVersion + "storage: {filesystem: {rootdirectory: ''}}\n").key == "storage.filesystem.rootdirectory");
  }
  SUBCASE("storage: other drivers are refused") {
    const ConfigError gcs = load_error(kVersion + "storage: {gcs: {bucket: b}}\n");
    CHECK(gcs.str() == "storage.gcs: unsupported storage driver; wharf supports filesystem and s3");
    CHECK(load_error(kVersion + "storage:\n  inmemory:\n").key == "storage.inmemory");
    CHECK(load_error(kVersion + "storage: inmemory\n").key == "storage.inmemory");
    CHECK(load_error(kVersion + "storage: {azure: {}}\n").key == "storage.azure");
    CHECK(load_error(kVersion + "storage: {weirdfs: {}}\n").key == "storage.weirdfs");
  }
  SUBCASE("storage: delete, maintenance, wharf's cache and gc") {
    std::vector<std::string> warnings;
    const Config c = load_ok(kVersion + R"(storage:
  delete: {enabled: true}
  cache: {blobdescriptor: inmemory, blobdescriptorsize: 10000, maxsize: 50GiB}
  gc: {interval: 6h, grace: 90s}
  maintenance:
    uploadpurging: {enabled: false, age: 48h, interval: 1h, dryrun: true}
    readonly: {enabled: true}
)", warnings);
    CHECK(c.delete_enabled);
    CHECK(c.cache_max_size == 50ull << 30);
    CHECK(c.gc_interval == 6h);
    CHECK(c.gc_grace == 90s);
    CHECK(load_ok(kVersion + "storage: {gc: {interval: 1h}}\n", warnings).gc_grace == 1h);
    CHECK(load_error(kVersion + "storage: {gc: {grace: 0s}}\n").key == "storage.gc.grace");
    CHECK_FALSE(c.upload_purging);
    CHECK(c.upload_purge_age == 48h);
    CHECK(c.upload_purge_interval == 1h);
    CHECK(c.upload_purge_dry_run);
    CHECK(has_warning(warnings, "storage.cache.blobdescriptor: "));
    CHECK(has_warning(warnings, "storage.maintenance.readonly.enabled: "));
    CHECK(load_error(kVersion + "storage: {cache: {maxsize: lots}}\n").key == "storage.cache.maxsize");
  }
  SUBCASE("http.addr must be host:port") {
    for (const char* ok : {":5000", "0.0.0.0:443", "localhost:5000", "[::1]:5000", "[::]:1", "h:65535"}) {
      CHECK_MESSAGE(load_ok(kVersion + "http: {addr: '" + ok + "'}\n").http_addr == ok, ok);
    }
    for (const char* bad : {"5000", "host:", "host:0", "host:65536", "::1:5000", "[::1:5000", "a b:80", "h:5x"}) {
      CHECK_MESSAGE(load_error(kVersion + "http: {addr: '" + bad + "'}\n").key == "http.addr", bad);
    }
    CHECK(load_error(kVersion + "http: {debug: {addr: nope}}\n").key == "http.debug.addr");
  }
  SUBCASE("http: net, prefix, host, secret, draintimeout, debug") {
    std::vector<std::string> warnings;
    const Config c = load_ok(kVersion + R"(http:
  net: tcp
  prefix: /reg/
  host: https://registry.example.com:5000
  secret: s3cret
  relativeurls: true
  draintimeout: 60s
  debug: {addr: 'localhost:5001', prometheus: {enabled: true, path: /m}}
)", warnings);
    CHECK(c.http_host == "https://registry.example.com:5000");
    CHECK(c.http_secret == "s3cret");
    CHECK(c.drain_timeout == 60s);
    CHECK(c.debug_addr == "localhost:5001");
    CHECK(c.prometheus_enabled);
    CHECK(c.prometheus_path == "/m");
    CHECK(has_warning(warnings, "http.prefix: "));
    CHECK(has_warning(warnings, "http.relativeurls: "));
    std::vector<std::string> none;
    load_ok(kVersion + "http: {prefix: /}\n", none);
    CHECK(none.empty());
    CHECK(load_error(kVersion + "http: {net: unix}\n").key == "http.net");
    CHECK(load_error(kVersion + "http: {host: registry.example.com}\n").key == "http.host");
    CHECK(load_error(kVersion + "http: {draintimeout: soon}\n").key == "http.draintimeout");
    CHECK(load_error(kVersion + "http: {debug: {prometheus: {path: metrics}}}\n").key == "http.debug.prometheus.path");
  }
  SUBCASE("http.tls: certificate and key come together") {
    const Config c = load_ok(kVersion + "http: {tls: {certificate: /c.pem, key: /k.pem, minimumtls: tls1.3}}\n");
    CHECK(c.tls_certificate == "/c.pem");
    CHECK(c.tls_key == "/k.pem");
    CHECK(c.tls_min_version == "tls1.3");
    CHECK(load_ok(kVersion).tls_min_version == "tls1.2");
    CHECK(load_error(kVersion + "http: {tls: {certificate: /c.pem}}\n").key == "http.tls.key");
    CHECK(load_error(kVersion + "http: {tls: {key: /k.pem}}\n").key == "http.tls.certificate");
    CHECK(load_error(kVersion + "http: {tls: {minimumtls: ssl3}}\n").key == "http.tls.minimumtls");
    std::vector<std::string> warnings;
    CHECK(load_ok(kVersion + "http: {tls: {minimumtls: tls1.0}}\n", warnings).tls_min_version == "tls1.2");
    CHECK(has_warning(warnings, "http.tls.minimumtls: "));
  }
  SUBCASE("http.headers: each value of each header") {
    const Config c = load_ok(kVersion + R"(http:
  headers:
    X-Content-Type-Options: [nosniff]
    Cache-Control: [no-cache, private]
    X-Single: one
)");
    const std::vector<std::pair<std::string, std::string>> expected = {
        {"Cache-Control", "no-cache"}, {"Cache-Control", "private"}, {"X-Content-Type-Options", "nosniff"}, {"X-Single", "one"}};
    auto got = c.http_headers;
    std::sort(got.begin(), got.end());
    CHECK(got == expected);
    CHECK(load_error(kVersion + "http: {headers: {'Bad Name': [x]}}\n").key == "http.headers.Bad Name");
    CHECK(load_error(kVersion + "http: {headers: [a, b]}\n").key == "http.headers");
  }
  SUBCASE("auth: htpasswd needs realm and path") {
    const Config c = load_ok(kVersion + "auth: {htpasswd: {realm: Registry, path: /auth/htpasswd}}\n");
    CHECK(c.htpasswd_realm == "Registry");
    CHECK(c.htpasswd_path == "/auth/htpasswd");
    CHECK(load_error(kVersion + "auth: {htpasswd: {realm: R}}\n").key == "auth.htpasswd.path");
    CHECK(load_error(kVersion + "auth: {htpasswd: {path: /p}}\n").key == "auth.htpasswd.realm");
    CHECK(load_error(kVersion + "auth: htpasswd\n").key == "auth.htpasswd.realm");
  }
  SUBCASE("auth: token is registry:2's, silly is refused") {
    const Config c = load_ok(kVersion + "auth: {token: {realm: 'https://a/t', service: s, issuer: i, rootcertbundle: /b}}\n");
    CHECK(c.token_enabled);
    CHECK(c.token_service == "s");
    CHECK(load_error(kVersion + "auth: {token: {realm: r, service: s, issuer: i, rootcertbundle: /b}}\n").key ==
          "auth.token.realm");
    CHECK(load_error(kVersion + "auth: {silly: {realm: r, service: s}}\n").key == "auth.silly");
  }
  SUBCASE("log: level, formatter, access log") {
    const Config c = load_ok(kVersion + "log: {level: debug, formatter: json, accesslog: {disabled: true}, fields: {a: b}}\n");
    CHECK(c.log_level == "debug");
    CHECK(c.log_format == LogFormat::Json);
    CHECK_FALSE(c.access_log);
    CHECK(load_ok(kVersion).access_log);
    CHECK(load_ok(kVersion + "log: {level: warning}\n").log_level == "warn");
    CHECK(load_ok(kVersion + "log: {level: Fatal}\n").log_level == "error");
    CHECK(load_ok(kVersion + "log: {level: trace}\n").log_level == "trace");
    CHECK(load_error(kVersion + "log: {level: loud}\n").key == "log.level");
    CHECK(load_error(kVersion + "log: {formatter: xml}\n").key == "log.formatter");
    std::vector<std::string> warnings;
    CHECK(load_ok(kVersion + "log: {formatter: logstash}\n", warnings).log_format == LogFormat::Json);
    CHECK(has_warning(warnings, "log.formatter: "));
  }
  SUBCASE("log: deprecated top-level loglevel yields to log.level") {
    std::vector<std::string> warnings;
    CHECK(load_ok(kVersion + "loglevel: debug\n", warnings).log_level == "debug");
    CHECK(has_warning(warnings, "loglevel: deprecated"));
    CHECK(load_ok(kVersion + "loglevel: debug\nlog: {level: error}\n").log_level == "error");
  }
  SUBCASE("invalid values name their key") {
    CHECK(load_error(kVersion + "storage: {delete: {enabled: maybe}}\n").key == "storage.delete.enabled");
    CHECK(load_error(kVersion + "storage: {delete: {enabled: [true]}}\n").key == "storage.delete.enabled");
    CHECK(load_error(kVersion + "health: {storagedriver: {threshold: three}}\n").key == "health.storagedriver.threshold");
    CHECK(load_error(kVersion + "health: {storagedriver: {threshold: -1}}\n").key == "health.storagedriver.threshold");
    CHECK(load_error(kVersion + "http: [a]\n").key == "http");
    CHECK(load_ok(kVersion + "storage: {delete: {enabled: yes}}\n").delete_enabled);
  }
  SUBCASE("health.storagedriver") {
    const Config c = load_ok(kVersion + "health: {storagedriver: {enabled: false, interval: 30s, threshold: 5}}\n");
    CHECK_FALSE(c.health_storage_enabled);
    CHECK(c.health_storage_interval == 30s);
    CHECK(c.health_storage_threshold == 5);
  }
  SUBCASE("durations: a bare number is nanoseconds, as in registry:2") {
    std::vector<std::string> warnings;
    CHECK(load_ok(kVersion + "health: {storagedriver: {interval: 10000000000}}\n", warnings).health_storage_interval == 10s);
    CHECK(has_warning(warnings, "health.storagedriver.interval: "));
  }
  SUBCASE("numbers: out-of-range or signed bare durations and integers are refused, never thrown") {
    CHECK(load_ok(kVersion + "health: {storagedriver: {interval: 9223372036854775807}}\n").health_storage_interval ==
          std::chrono::seconds(9223372037));
    CHECK(load_ok(kVersion + "health: {storagedriver: {interval: 1}}\n").health_storage_interval == 1s);
    CHECK(load_error(kVersion + "health: {storagedriver: {interval: 9223372036854775808}}\n").key ==
          "health.storagedriver.interval");
    CHECK(load_error(kVersion + "health: {storagedriver: {interval: 99999999999999999999999}}\n").key ==
          "health.storagedriver.interval");
    CHECK(load_error(kVersion + "health: {storagedriver: {interval: -5}}\n").key == "health.storagedriver.interval");
    CHECK(load_error(kVersion + "health: {storagedriver: {threshold: 99999999999999999999}}\n").key ==
          "health.storagedriver.threshold");
    CHECK(load_error(kVersion + "health: {storagedriver: {threshold: '+5'}}\n").key == "health.storagedriver.threshold");
    CHECK(load_error(kVersion + "health: {storagedriver: {threshold: ' 5'}}\n").key == "health.storagedriver.threshold");
  }
  SUBCASE("proxy.remoteurl becomes the first upstream") {
    const Config hub = load_ok(kVersion + "proxy: {remoteurl: 'https://registry-1.docker.io/', username: u, password: p}\n");
    REQUIRE(hub.upstreams.size() == 1);
    CHECK(hub.upstreams[0].name == "docker.io");
    CHECK(hub.upstreams[0].url == "https://registry-1.docker.io");
    CHECK(hub.upstreams[0].username == "u");
    CHECK(hub.upstreams[0].password == "p");
    CHECK(load_ok(kVersion + "proxy: {remoteurl: 'https://docker.io'}\n").upstreams[0].name == "docker.io");
    CHECK(load_ok(kVersion + "proxy: {remoteurl: 'http://Mirror.local:8080/v2'}\n").upstreams[0].name == "mirror.local:8080");
    CHECK(load_error(kVersion + "proxy: {remoteurl: 'ftp://x'}\n").key == "proxy.remoteurl");
    std::vector<std::string> warnings;
    CHECK(load_ok(kVersion + "proxy: {username: u}\n", warnings).upstreams.empty());
    CHECK(has_warning(warnings, "proxy.username: "));
  }
  SUBCASE("proxy: wharf's upstreams, namespaces, push, freshness, ttl") {
    std::vector<std::string> warnings;
    const Config c = load_ok(kVersion + R"(proxy:
  remoteurl: https://registry-1.docker.io
  ttl: 24h
  upstreams:
    - {name: ghcr.io, url: https://ghcr.io, username: bot, password: tok}
    - {name: quay.io, url: https://quay.io, ca: /etc/ssl/quay.pem, colour: blue}
  localnamespaces: [team, internal/tools]
  allowpush: true
  tagfreshness: 5m
  prefetch: false
)", warnings);
    REQUIRE(c.upstreams.size() == 3);
    CHECK(c.upstreams[0].name == "docker.io");
    CHECK(c.upstreams[1].name == "ghcr.io");
    CHECK(c.upstreams[1].username == "bot");
    CHECK(c.upstreams[1].password == "tok");
    CHECK(c.upstreams[2].url == "https://quay.io");
    CHECK(c.upstreams[2].ca == "/etc/ssl/quay.pem");
    CHECK(c.local_namespaces == std::vector<std::string>{"team", "internal/tools"});
    CHECK(c.allow_push_to_proxied);
    CHECK(c.tag_freshness == 5min);
    CHECK_FALSE(c.prefetch_blobs);
    CHECK(load_ok(kVersion).prefetch_blobs);
    CHECK(load_error(kVersion + "proxy: {prefetch: maybe}\n").key == "proxy.prefetch");
    CHECK(c.proxy_ttl == 24h);
    CHECK(has_warning(warnings, "proxy.upstreams[1].colour: unknown key, ignored"));
    CHECK(load_ok(kVersion).proxy_ttl == 168h);
  }
  SUBCASE("proxy.forwardcredentials needs wharf's own sign-in off") {
    CHECK_FALSE(load_ok(kVersion).forward_credentials);
    CHECK(load_ok(kVersion + "proxy: {remoteurl: 'https://r', forwardcredentials: true}\n").forward_credentials);
    CHECK(load_error(kVersion + "proxy: {forwardcredentials: true}\nauth: {htpasswd: {realm: r, path: /x}}\n").key ==
          "proxy.forwardcredentials");
    CHECK(load_error(kVersion + "proxy: {remoteurl: 'https://r', forwardcredentials: true}\n"
                     "auth: {token: {realm: 'https://t', service: s, issuer: i, jwks: /k}}\n").key ==
          "proxy.forwardcredentials");
  }
  SUBCASE("auth.token.jwks stands in for rootcertbundle with an external realm") {
    CHECK(load_ok(kVersion + "auth: {token: {realm: 'https://t', service: s, issuer: i, jwks: /k}}\n").token_jwks == "/k");
    CHECK(load_error(kVersion + "auth: {token: {realm: 'https://t', service: s, issuer: i}}\n").key ==
          "auth.token.rootcertbundle");
  }
  SUBCASE("proxy.upstreams: entries need a name and an http(s) url, once each") {
    CHECK(load_error(kVersion + "proxy: {upstreams: [{url: 'https://ghcr.io'}]}\n").key == "proxy.upstreams[0].name");
    CHECK(load_error(kVersion + "proxy: {upstreams: [{name: ghcr.io}]}\n").key == "proxy.upstreams[0].url");
    CHECK(load_error(kVersion + "proxy: {upstreams: [{name: a, url: 'https://a'}, {name: b, url: ghcr.io}]}\n").key ==
          "proxy.upstreams[1].url");
    CHECK(load_error(kVersion + "proxy: {upstreams: [{name: 'a/b', url: 'https://a'}]}\n").key == "proxy.upstreams[0].name");
    CHECK(load_error(kVersion + "proxy: {upstreams: {name: a}}\n").key == "proxy.upstreams");
    CHECK(load_error(kVersion + "proxy: {remoteurl: 'https://docker.io', upstreams: [{name: docker.io, url: 'https://m'}]}\n")
              .key == "proxy.upstreams");
    CHECK(load_error(kVersion + "proxy: {localnamespaces: ['/abs']}\n").key == "proxy.localnamespaces");
  }
  SUBCASE("environment: REGISTRY_* overrides win over the file") {
    const std::string file = kVersion + "http: {addr: ':5000'}\nstorage: {filesystem: {rootdirectory: /file}}\n";
    const Config c = load_ok(file, {{"REGISTRY_HTTP_ADDR", "127.0.0.1:6000"},
                                    {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/env"},
                                    {"REGISTRY_STORAGE_DELETE_ENABLED", "true"},
                                    {"REGISTRY_LOG_LEVEL", "debug"},
                                    {"REGISTRY_HTTP_TLS_CERTIFICATE", "/c.pem"},
                                    {"REGISTRY_HTTP_TLS_KEY", "/k.pem"},
                                    {"REGISTRY_PROXY_REMOTEURL", "https://registry-1.docker.io"},
                                    {"REGISTRY_HEALTH_STORAGEDRIVER_THRESHOLD", "7"},
                                    {"REGISTRY_STORAGE_CACHE_MAXSIZE", "10GB"}});
    CHECK(c.http_addr == "127.0.0.1:6000");
    CHECK(c.root_directory == "/env");
    CHECK(c.delete_enabled);
    CHECK(c.log_level == "debug");
    CHECK(c.tls_certificate == "/c.pem");
    CHECK(c.tls_key == "/k.pem");
    REQUIRE(c.upstreams.size() == 1);
    CHECK(c.upstreams[0].name == "docker.io");
    CHECK(c.health_storage_threshold == 7);
    CHECK(c.cache_max_size == 10'000'000'000u);
  }
  SUBCASE("environment: htpasswd as in registry:2's deployment guide") {
    const Config c = load_ok(kVersion, {{"REGISTRY_AUTH", "htpasswd"},
                                        {"REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"},
                                        {"REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd"}});
    CHECK(c.htpasswd_realm == "Registry Realm");
    CHECK(c.htpasswd_path == "/auth/htpasswd");
    const ConfigError e = load_error(kVersion, {{"REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd"}});
    CHECK(e.key == "auth.htpasswd.realm");
  }
  SUBCASE("environment: values are YAML of the key's type") {
    const ConfigError e = load_error(kVersion, {{"REGISTRY_STORAGE_DELETE_ENABLED", "maybe"}});
    CHECK(e.key == "storage.delete.enabled");
    CHECK(e.message.find("REGISTRY_STORAGE_DELETE_ENABLED") != std::string::npos);
    CHECK(load_ok(kVersion, {{"REGISTRY_HTTP_SECRET", "\"quoted\""}}).http_secret == "quoted");
    CHECK(load_ok(kVersion, {{"REGISTRY_HTTP_SECRET", "a: b"}}).http_secret == "a: b");
    CHECK(load_ok(kVersion, {{"REGISTRY_PROXY_LOCALNAMESPACES", "[team, ops]"}}).local_namespaces ==
          std::vector<std::string>{"team", "ops"});
    const Config up = load_ok(kVersion, {{"REGISTRY_PROXY_UPSTREAMS", "[{name: ghcr.io, url: 'https://ghcr.io'}]"}});
    REQUIRE(up.upstreams.size() == 1);
    CHECK(up.upstreams[0].name == "ghcr.io");
  }
  SUBCASE("environment: unknown and unsupported variables") {
    std::vector<std::string> warnings;
    load_ok(kVersion, warnings, {{"REGISTRY_FOO", "1"}, {"REGISTRY_HTTP_BAR", "x"}, {"PATH", "/bin"},
                                 {"REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL", "http://x"}, {"REGISTRY_VERSION", "0.2"}});
    CHECK(has_warning(warnings, "REGISTRY_FOO: unknown environment variable, ignored"));
    CHECK(has_warning(warnings, "REGISTRY_HTTP_BAR: unknown environment variable, ignored"));
    CHECK(has_warning(warnings, "REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: notifications: "));
    CHECK(has_warning(warnings, "REGISTRY_VERSION: "));
    CHECK_FALSE(has_warning(warnings, "PATH"));
    CHECK(load_error(kVersion, {{"REGISTRY_STORAGE", "swift"}}).key == "storage.swift");
    CHECK(load_error(kVersion, {{"REGISTRY_STORAGE_OSS_BUCKET", "b"}}).key == "storage.oss");
    CHECK(load_error(kVersion, {{"REGISTRY_AUTH", "token"}}).key == "auth.token.service");
    CHECK(load_ok(kVersion + "storage: {filesystem: {rootdirectory: /keep}}\n", {{"REGISTRY_STORAGE", "filesystem"}})
              .root_directory == "/keep");
  }
  SUBCASE("environment: every scalar key in the schema is reachable") {
    // A value each type accepts; keys with stricter checks are covered above.
    int tried = 0;
    for (const KeySpec& k : schema()) {
      if (k.use != KeyUse::Used || k.type != KeyType::Bool) continue;
      if (std::string_view(k.path).starts_with("storage.s3.")) continue;  // need region and bucket: test_s3_config.cpp
      std::vector<std::string> warnings;
      auto c = load_from_string(kVersion, {{env_var_name(k.path), "false"}}, warnings);
      CHECK_MESSAGE(c.has_value(), k.path);
      ++tried;
    }
    CHECK(tried >= 8);
    CHECK_FALSE(load_ok(kVersion, {{"REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED", "false"}}).upload_purging);
    CHECK(load_ok(kVersion, {{"REGISTRY_PROXY_TAGFRESHNESS", "2m"}}).tag_freshness == 2min);
  }
}

TEST_CASE("load_file") {
  ScratchDir dir;
  SUBCASE("reads the file") {
    const auto path = dir.path / "config.yml";
    std::ofstream(path) << kRegistryImageConfig;
    std::vector<std::string> warnings;
    auto c = load_file(path.string(), {{"REGISTRY_HTTP_ADDR", ":6000"}}, warnings);
    REQUIRE(c);
    CHECK(c->http_addr == ":6000");
    CHECK(c->root_directory == "/var/lib/registry");
  }
  SUBCASE("a missing file is named") {
    std::vector<std::string> warnings;
    auto c = load_file((dir.path / "absent.yml").string(), {}, warnings);
    REQUIRE_FALSE(c);
    CHECK(c.error().message.find("absent.yml") != std::string::npos);
  }
  SUBCASE("a YAML error names the file") {
    const auto path = dir.path / "bad.yml";
    std::ofstream(path) << "version: 0.1\nhttp: {\n";
    std::vector<std::string> warnings;
    auto c = load_file(path.string(), {}, warnings);
    REQUIRE_FALSE(c);
    CHECK(c.error().message.find("bad.yml") != std::string::npos);
  }
}

TEST_CASE("conf/config.yml") {
  // The shipped example must load, use every option it shows, and not warn.
  namespace fs = std::filesystem;
  const fs::path here = fs::path(__FILE__).parent_path();
  fs::path example;
  for (const fs::path& candidate : {here / "../../conf/config.yml", fs::path("conf/config.yml"), fs::path("../conf/config.yml")}) {
    if (fs::exists(candidate)) {
      example = candidate;
      break;
    }
  }
  REQUIRE_MESSAGE(!example.empty(), "conf/config.yml not found from " << fs::current_path());
  std::vector<std::string> warnings;
  auto c = load_file(example.string(), {}, warnings);
  REQUIRE_MESSAGE(c, (c ? "" : c.error().str()));
  CHECK(warnings.empty());
  CHECK(c->root_directory == "./data");
  CHECK(c->cache_max_size == 50ull << 30);
  CHECK(c->htpasswd_realm == "wharf");
  CHECK(c->tls_certificate == "/etc/wharf/tls/cert.pem");
  REQUIRE(c->upstreams.size() == 3);
  CHECK(c->upstreams[0].name == "docker.io");
  CHECK(c->upstreams[2].ca == "/etc/wharf/internal-ca.pem");
  CHECK(c->local_namespaces == std::vector<std::string>{"myteam"});
}

TEST_CASE("registry_env") {
  REQUIRE(setenv("REGISTRY_WHARF_UNIT_TEST", "yes", 1) == 0);
  REQUIRE(setenv("WHARF_UNIT_TEST_OTHER", "no", 1) == 0);
  const auto env = registry_env();
  unsetenv("REGISTRY_WHARF_UNIT_TEST");
  unsetenv("WHARF_UNIT_TEST_OTHER");
  REQUIRE(env.contains("REGISTRY_WHARF_UNIT_TEST"));
  CHECK(env.at("REGISTRY_WHARF_UNIT_TEST") == "yes");
  CHECK_FALSE(env.contains("WHARF_UNIT_TEST_OTHER"));
  for (const auto& [name, value] : env) CHECK(name.starts_with("REGISTRY_"));
}

TEST_CASE("proxy.remoteurl and an upstreams entry for the same URL are one upstream") {
  std::vector<std::string> warnings;
  auto cfg = wharf::config::load_from_string(
      "version: 0.1\nproxy:\n  remoteurl: http://127.0.0.1:7000/\n  upstreams:\n"
      "    - {name: docker.io, url: http://127.0.0.1:7000, username: u, password: p}\n"
      "    - {name: ghcr.io, url: http://127.0.0.1:7001}\n",
      {}, warnings);
  REQUIRE(cfg);
  REQUIRE(cfg->upstreams.size() == 2);
  CHECK(cfg->upstreams[0].name == "docker.io");
  CHECK(cfg->upstreams[0].username == "u");
  CHECK(cfg->upstreams[1].name == "ghcr.io");
  CHECK(cfg->default_upstream == "docker.io");
}
