#pragma once
// wharf's configuration: a registry:2 config.yml (plus wharf's extensions) and REGISTRY_* environment
// overrides, turned into one validated, immutable struct.
#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::config {

enum class LogFormat { Text, Json };

struct Upstream {
  std::string name;      // registry host it stands for, e.g. "docker.io", "ghcr.io"
  std::string url;       // e.g. "https://registry-1.docker.io"
  std::string username;  // optional
  std::string password;  // optional
  std::string ca;        // optional CA file
};

// Which blob store the configuration names (storage.filesystem or storage.s3).
enum class StorageDriver { Filesystem, S3 };

// storage.s3: registry:2's S3 driver keys that wharf uses (conf/README.md lists the ones it ignores).
struct S3Storage {
  std::string region;           // storage.s3.region (required)
  std::string bucket;           // storage.s3.bucket (required)
  std::string access_key;       // storage.s3.accesskey
  std::string secret_key;       // storage.s3.secretkey
  std::string session_token;    // storage.s3.sessiontoken
  std::string region_endpoint;  // storage.s3.regionendpoint (empty: AWS's https://s3.<region>.amazonaws.com)
  std::optional<bool> force_path_style;  // storage.s3.forcepathstyle (unset: path style iff regionendpoint is set)
  bool encrypt = false;         // storage.s3.encrypt (server-side encryption on writes)
  std::string key_id;           // storage.s3.keyid (KMS key with encrypt)
  bool secure = true;           // storage.s3.secure (https for an endpoint given without a scheme)
  bool skip_verify = false;     // storage.s3.skipverify (TLS certificate not checked)
  uint64_t chunk_size = 10ull << 20;                      // storage.s3.chunksize (multipart part size, >= 5 MiB)
  uint64_t multipart_copy_chunk_size = 32ull << 20;       // storage.s3.multipartcopychunksize
  uint64_t multipart_copy_threshold = 32ull << 20;        // storage.s3.multipartcopythresholdsize
  int multipart_copy_max_concurrency = 100;               // storage.s3.multipartcopymaxconcurrency
  std::string root_directory;   // storage.s3.rootdirectory (key prefix in the bucket)
  std::string storage_class = "STANDARD";  // storage.s3.storageclass ("NONE": no header)
  uint64_t small_cache_size = 64ull << 20;  // storage.s3.smallcachesize (wharf: memory for small blobs and manifests)

  // The endpoint URL requests go to: regionendpoint (scheme added from `secure` when missing) or AWS's.
  std::string endpoint_url() const;
  // Path-style addressing (bucket in the path) rather than virtual-host style.
  bool path_style() const;
};

// One access rule (auth.access, wharf): who may do what on the repositories `match` names.
struct AccessRule {
  std::string match;                 // glob over repository names: * any run of characters (also /), ? one
  std::vector<std::string> users;    // user names ("*": every authenticated user, robots included)
  std::vector<std::string> groups;   // names from auth.groups
  std::vector<std::string> actions;  // pull, push, delete ("*": all three)
  bool anonymous = false;            // every caller, even without credentials, gets this rule's pull
};

// One retention rule (storage.retention, wharf): in every repository `match` names, only the `keep` most
// recently pushed tags matching `tags` survive the garbage collector.
struct RetentionRule {
  std::string match;  // glob over repository names, as in AccessRule
  std::string tags;   // glob over tag names (* any run of characters, ? one)
  int64_t keep = 0;   // how many of the matching tags to keep, newest first (>= 0)
};

struct Config {
  int version_major = 0;  // "version: 0.1" → 0.1 accepted
  std::string log_level = "info";     // trace|debug|info|warn|error (registry:2 also: warning, fatal, panic)
  LogFormat log_format = LogFormat::Text;
  bool access_log = true;             // log.accesslog.disabled inverted

  StorageDriver storage_driver = StorageDriver::Filesystem;  // storage.filesystem or storage.s3
  S3Storage s3;                           // storage.s3.* (with StorageDriver::S3)
  bool redirect_disabled = false;         // storage.redirect.disable (S3: answer blob GETs with 307 unless true)
  std::string root_directory = "./data";  // storage.filesystem.rootdirectory (with s3: where the local index lives)
  bool delete_enabled = false;            // storage.delete.enabled
  bool upload_purging = true;             // storage.maintenance.uploadpurging.enabled
  std::chrono::seconds upload_purge_age{168 * 3600};      // .age (Go duration "168h")
  std::chrono::seconds upload_purge_interval{24 * 3600};  // .interval
  bool upload_purge_dry_run = false;                      // .dryrun (log what would be purged, delete nothing)
  uint64_t cache_max_size = 0;            // storage.cache.maxsize (wharf; 0 = unbounded; "50GiB" units)
  std::chrono::seconds gc_interval{0};    // storage.gc.interval (wharf; 0 = off)
  std::chrono::seconds gc_grace{3600};    // storage.gc.grace (wharf; >= 1s): online GC's grace (cache::kOnlineGcGrace)
  std::vector<RetentionRule> retention;   // storage.retention (wharf): applied by every garbage collection
  std::string database_dsn;               // database.dsn (wharf): PostgreSQL index; empty: LMDB under rootdirectory
  int database_pool_size = 8;             // database.poolsize (wharf): connections per process, 1..1000
  bool database_notify_cache = true;      // database.notifycache (wharf): tag/manifest cache kept by LISTEN/NOTIFY

  std::string http_addr = "127.0.0.1:5000";  // http.addr  (host:port, ":5000" means all addresses)
  std::string http_host;                     // http.host (external URL, for Location headers; may be empty)
  std::string http_secret;                   // http.secret
  std::string http_internal_addr;            // http.internaladdr (host:port other fronts reach this one at; empty: derived)
  std::string tls_certificate;               // http.tls.certificate
  std::string tls_key;                       // http.tls.key
  std::string tls_min_version = "tls1.2";    // http.tls.minimumtls ("tls1.2" or "tls1.3")
  std::chrono::seconds drain_timeout{0};     // http.draintimeout (wait for open connections on shutdown; 0 = none)
  std::vector<std::pair<std::string, std::string>> http_headers;  // http.headers (name → first value... each value)
  std::string debug_addr;                    // http.debug.addr
  bool prometheus_enabled = false;           // http.debug.prometheus.enabled
  std::string prometheus_path = "/metrics";  // http.debug.prometheus.path
  bool ui_enabled = true;                    // http.ui.enabled (the web page and its /api/)
  std::string ui_path = "/";                 // http.ui.path (where the page is served; starts and ends with /)

  std::string htpasswd_realm;  // auth.htpasswd.realm
  std::string htpasswd_path;   // auth.htpasswd.path (empty: no auth)

  // Access control (auth.token is registry:2's; the rest are wharf's extensions).
  bool token_enabled = false;                  // auth.token present
  std::string token_realm;                     // auth.token.realm (empty: wharf is its own token server)
  std::string token_service;                   // auth.token.service (the audience)
  std::string token_issuer;                    // auth.token.issuer
  std::string token_root_certs;                // auth.token.rootcertbundle (PEM certificates/public keys)
  std::string token_jwks;                      // auth.token.jwks (a JWKS JSON file: RSA and P-256 keys by kid)
  std::vector<std::string> token_signing_keys; // auth.token.signingkeys: PEM private keys, first signs, all verify
  std::chrono::seconds token_expiration{300};  // auth.token.expiration: lifetime of tokens wharf issues
  std::vector<AccessRule> access_rules;        // auth.access
  std::map<std::string, std::vector<std::string>> groups;  // auth.groups: group → user names
  std::vector<std::string> immutable_tags;     // auth.immutabletags: "REPO_GLOB:TAG_GLOB" entries
  std::vector<AccessRule> fetch_rules;         // auth.fetch: per upstream (in `match`), who may trigger fetches
  std::string robots_path;                     // auth.robots.path (empty: <rootdirectory>/robots.json)
  std::string audit_path;                      // auth.audit.path (empty: audit lines go to the main log)
  bool audit_enabled = true;                   // auth.audit.enabled

  bool health_storage_enabled = true;                 // health.storagedriver.enabled
  std::chrono::seconds health_storage_interval{10};   // health.storagedriver.interval
  int health_storage_threshold = 3;                   // health.storagedriver.threshold

  // Pull-through (proxy.remoteurl/username/password as registry:2; proxy.upstreams is wharf's extension).
  std::vector<Upstream> upstreams;           // proxy.remoteurl becomes one upstream named "docker.io"
  std::string default_upstream;              // bare names go here: proxy.remoteurl's upstream, else docker.io, else the first
  std::vector<std::string> local_namespaces; // proxy.localnamespaces (wharf)
  bool allow_push_to_proxied = false;        // proxy.allowpush (wharf)
  std::chrono::seconds tag_freshness{60};    // proxy.tagfreshness (wharf)
  bool prefetch_blobs = true;                // proxy.prefetch (wharf)
  bool forward_credentials = false;          // proxy.forwardcredentials (wharf): clients' own upstream accounts
  std::chrono::seconds proxy_ttl{168 * 3600};  // proxy.ttl (registry:2: proxied content expiry; 0 = never)

  // Limits that keep one client or one upstream from starving the others (all wharf extensions;
  // conf/README.md says what happens at each limit).
  std::chrono::seconds header_timeout{10};   // http.limits.headertimeout: whole request head must arrive within
  uint64_t min_body_rate = 1024;             // http.limits.minbodyrate: bytes/s averaged over bodyrateperiod; 0 = off
  std::chrono::seconds body_rate_period{30}; // http.limits.bodyrateperiod: window for minbodyrate
  int max_uploads = 1000;                    // http.limits.uploads: open upload sessions in total (429 beyond)
  int max_uploads_per_client = 100;          // http.limits.uploadsperclient: open upload sessions per client address
  int password_checks = 256;                 // http.limits.passwordchecks: queued bcrypt checks (beyond: 429)
  int auth_failures_per_client = 8;          // http.limits.authfailures: concurrent failed checks per address before backoff
  int upstream_downloads = 64;               // proxy.limits.downloads: concurrent upstream blob downloads in total
  int upstream_downloads_per_upstream = 16;  // proxy.limits.downloadsperupstream: ... per upstream (the rest queue)
  uint64_t upstream_min_rate = 1024;         // proxy.limits.minrate: bytes/s over stalltime, else the transfer aborts; 0 = off
  std::chrono::seconds upstream_stall_time{30};  // proxy.limits.stalltime
  uint64_t upstream_manifest_max = 4 * 1024 * 1024;  // proxy.limits.manifestsize: largest upstream manifest accepted
};

// A problem found while loading: the key path (e.g. "http.addr") and what is wrong with it.
struct ConfigError {
  std::string key;
  std::string message;
  std::string str() const { return key.empty() ? message : key + ": " + message; }
};

// The kind of value a configuration key holds.
enum class KeyType {
  Section, Version, String, Bool, Int, Duration, Size, StringList, HeaderMap, UpstreamList, AccessRules, FetchRules, GroupMap,
  RetentionRules, Any
};
// What wharf does with a key: use it, accept it silently, accept it with a warning, or refuse to start.
enum class KeyUse { Used, Ignored, Warned, Rejected };

// One known configuration key (registry:2's or wharf's).
struct KeySpec {
  std::string_view path;          // dotted key path, e.g. "http.tls.certificate"
  KeyType type = KeyType::Any;
  KeyUse use = KeyUse::Used;
  bool required = false;          // must be present whenever its parent section is
  std::string_view note{};        // Warned/Rejected: the message given with the key path
  std::string_view driver_error{};  // sections whose children name a driver (storage, auth): the error for an
                                    // unknown child; a scalar value ("storage: filesystem") names the child
};

// Every known key, parents before children. Loading, validation and REGISTRY_* overrides all use this table.
std::span<const KeySpec> schema();
// The REGISTRY_* variable that overrides a key: "http.tls.key" → "REGISTRY_HTTP_TLS_KEY".
std::string env_var_name(std::string_view key_path);

// The embedded default configuration (local store ./data, 127.0.0.1:5000, push/pull, Docker Hub proxied).
const char* default_yaml();

// Parses YAML text, applies REGISTRY_* overrides from `env` (name → value), validates.
// Unknown keys are appended to `warnings` (naming the key); invalid values fail with the key named.
std::expected<Config, ConfigError> load_from_string(const std::string& yaml,
                                                    const std::map<std::string, std::string>& env,
                                                    std::vector<std::string>& warnings);
// Reads the file (failing with its path named) then as above.
std::expected<Config, ConfigError> load_file(const std::string& path,
                                             const std::map<std::string, std::string>& env,
                                             std::vector<std::string>& warnings);
// The process environment's REGISTRY_* variables.
std::map<std::string, std::string> registry_env();

// Parses Go durations ("10s", "1h30m", "168h"); nullopt if invalid.
std::optional<std::chrono::seconds> parse_duration(const std::string& s);
// Parses sizes ("1024", "10MB", "50GiB", "1.5G"); nullopt if invalid.
std::optional<uint64_t> parse_size(const std::string& s);

}  // namespace wharf::config
