// The table of configuration keys: registry:2's (used, tolerated or refused) and wharf's extensions.
#include <algorithm>
#include <cctype>
#include <type_traits>

#include "src/config/schema.hpp"

namespace wharf::config::detail {
namespace {

using Result = std::expected<void, std::string>;
using Check = std::optional<std::string> (*)(const std::string&);

constexpr std::string_view kStorageDriver = "unsupported storage driver; wharf supports filesystem and s3";
constexpr std::string_view kAuthProvider = "unsupported auth provider; wharf supports htpasswd and token";
constexpr std::string_view kNotSupported = "not supported by wharf, ignored";
constexpr std::string_view kBlobDescriptor =
    "registry:2's blob descriptor cache is not needed by wharf (its index is always on), ignored";

// Copies the converted value into a member of Config or Draft.
template <auto Member>
Result store(Draft& d, const Value& v, const Notes&) {
  using T = std::remove_cvref_t<decltype(d.*Member)>;
  if constexpr (std::is_same_v<T, int>) {
    d.*Member = static_cast<int>(std::get<int64_t>(v));
  } else {
    d.*Member = std::get<T>(v);
  }
  return {};
}

// Like store, for strings that must pass `check` first.
template <auto Member, Check check>
Result store_checked(Draft& d, const Value& v, const Notes& n) {
  if (auto problem = check(std::get<std::string>(v))) return std::unexpected(*problem);
  return store<Member>(d, v, n);
}

std::optional<std::string> non_empty(const std::string& s) {
  return s.empty() ? std::optional<std::string>("must not be empty") : std::nullopt;
}
std::optional<std::string> http_url(const std::string& s) {
  return url_host(s) ? std::nullopt : std::optional<std::string>("must be an http:// or https:// URL");
}
// A libpq connection string: a postgresql:// (or postgres://) URI or key=value pairs; empty means LMDB.
std::optional<std::string> postgres_dsn(const std::string& s) {
  if (s.empty() || s.starts_with("postgresql://") || s.starts_with("postgres://") || s.find('=') != std::string::npos)
    return std::nullopt;
  return std::string("must be a PostgreSQL connection string: postgresql://user@host:5432/db or \"host=... dbname=...\"");
}
std::optional<std::string> empty_or_http_url(const std::string& s) { return s.empty() ? std::nullopt : http_url(s); }
// Where other fronts of a fleet reach this one: empty, or host:port with a host (not a wildcard).
std::optional<std::string> internal_addr(const std::string& s) {
  if (s.empty()) return std::nullopt;
  if (auto bad = check_listen_addr(s)) return bad;
  const std::string host = s.substr(0, s.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]")
    return std::string("must name this front's host, e.g. \"10.0.0.5:5000\" or \"wharf-1.internal:5000\"");
  return std::nullopt;
}
std::optional<std::string> absolute_path(const std::string& s) {
  return s.starts_with('/') ? std::nullopt : std::optional<std::string>("must start with /");
}
// A path prefix for the web page: "/" or "/x/.../", never under /v2/, /api/ or /auth/.
std::optional<std::string> ui_path(const std::string& s) {
  if (!s.starts_with('/') || !s.ends_with('/')) return std::string("must start and end with /, e.g. \"/ui/\"");
  for (char c : s)
    if (c <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '%' || c == '\\') return std::string("must be a plain path");
  if (s.find("//") != std::string::npos || s.find("/./") != std::string::npos || s.find("/../") != std::string::npos)
    return std::string("must be a plain path (no empty, . or .. segments)");
  for (const char* taken : {"/v2/", "/api/", "/auth/", "/debug/"})
    if (s.starts_with(taken)) return std::string("must not be under ").append(taken);
  return std::nullopt;
}

// logrus levels (registry:2) folded onto wharf's five: warning → warn, fatal/panic → error.
std::expected<std::string, std::string> log_level(const std::string& text) {
  const std::string s = lower(text);
  if (s == "trace" || s == "debug" || s == "info" || s == "warn" || s == "error") return s;
  if (s == "warning") return std::string("warn");
  if (s == "fatal" || s == "panic") return std::string("error");
  return std::unexpected("must be one of error, warn, info, debug (or trace, warning, fatal, panic), got \"" +
                         text + "\"");
}

Result set_version(Draft& d, const Value&, const Notes&) {
  d.version_major = 0;
  return {};
}

Result set_log_level(Draft& d, const Value& v, const Notes&) {
  auto level = log_level(std::get<std::string>(v));
  if (!level) return std::unexpected(level.error());
  d.log_level = *level;
  return {};
}

Result set_legacy_log_level(Draft& d, const Value& v, const Notes& n) {
  auto level = log_level(std::get<std::string>(v));
  if (!level) return std::unexpected(level.error());
  n.warn("deprecated; use log.level");
  d.legacy_log_level = *level;
  return {};
}

Result set_log_formatter(Draft& d, const Value& v, const Notes& n) {
  const std::string s = lower(std::get<std::string>(v));
  if (s == "text") {
    d.log_format = LogFormat::Text;
  } else if (s == "json") {
    d.log_format = LogFormat::Json;
  } else if (s == "logstash") {
    d.log_format = LogFormat::Json;
    n.warn("logstash is written as json");
  } else {
    return std::unexpected("must be text, json or logstash, got \"" + std::get<std::string>(v) + "\"");
  }
  return {};
}

Result set_access_log_disabled(Draft& d, const Value& v, const Notes&) {
  d.access_log = !std::get<bool>(v);
  return {};
}

Result warn_read_only(Draft&, const Value& v, const Notes& n) {
  if (std::get<bool>(v)) n.warn("read-only mode is not supported by wharf; the registry stays writable");
  return {};
}

Result check_net(Draft&, const Value& v, const Notes&) {
  const std::string& s = std::get<std::string>(v);
  if (s.empty() || s == "tcp") return {};
  return std::unexpected("wharf listens on tcp only, got \"" + s + "\"");
}

Result check_prefix(Draft&, const Value& v, const Notes& n) {
  const std::string& s = std::get<std::string>(v);
  if (!s.empty() && s != "/") n.warn("path prefixes are not supported by wharf; serving at /");
  return {};
}

Result warn_relative_urls(Draft&, const Value& v, const Notes& n) {
  if (std::get<bool>(v)) n.warn("relative Location URLs are not supported by wharf, ignored");
  return {};
}

Result set_min_tls(Draft& d, const Value& v, const Notes& n) {
  const std::string s = lower(std::get<std::string>(v));
  if (s == "tls1.2" || s == "tls1.3") {
    d.tls_min_version = s;
  } else if (s == "tls1.0" || s == "tls1.1") {
    d.tls_min_version = "tls1.2";
    n.warn(s + " is not offered by wharf; using tls1.2");
  } else {
    return std::unexpected("must be tls1.2 or tls1.3, got \"" + std::get<std::string>(v) + "\"");
  }
  return {};
}

Result set_threshold(Draft& d, const Value& v, const Notes&) {
  const int64_t t = std::get<int64_t>(v);
  if (t < 0 || t > 1000000) return std::unexpected("must be a non-negative integer");
  d.health_storage_threshold = static_cast<int>(t);
  return {};
}

// Positive integer limits (1 .. Max, by default 1,000,000).
template <auto Member, int64_t Max = 1000000>
Result store_limit(Draft& d, const Value& v, const Notes&) {
  const int64_t t = std::get<int64_t>(v);
  if (t < 1 || t > Max) return std::unexpected("must be an integer from 1 to " + std::to_string(Max));
  d.*Member = static_cast<int>(t);
  return {};
}

// Durations that must not be zero.
template <auto Member>
Result store_positive_duration(Draft& d, const Value& v, const Notes&) {
  const auto s = std::get<std::chrono::seconds>(v);
  if (s.count() <= 0) return std::unexpected("must be at least 1s");
  d.*Member = s;
  return {};
}

// A member of Config::s3.
template <auto Member>
Result store_s3(Draft& d, const Value& v, const Notes&) {
  using T = std::remove_cvref_t<decltype(d.s3.*Member)>;
  if constexpr (std::is_same_v<T, int>) {
    d.s3.*Member = static_cast<int>(std::get<int64_t>(v));
  } else if constexpr (std::is_same_v<T, std::optional<bool>>) {
    d.s3.*Member = std::get<bool>(v);
  } else {
    d.s3.*Member = std::get<T>(v);
  }
  return {};
}

template <auto Member, Check check>
Result store_s3_checked(Draft& d, const Value& v, const Notes& n) {
  if (auto problem = check(std::get<std::string>(v))) return std::unexpected(*problem);
  return store_s3<Member>(d, v, n);
}

// S3 part sizes: 5 MiB .. 5 GiB (S3's limits for every part but the last).
template <auto Member>
Result store_s3_part_size(Draft& d, const Value& v, const Notes&) {
  const uint64_t size = std::get<uint64_t>(v);
  if (size < (5ull << 20) || size > (5ull << 30)) {
    return std::unexpected("must be from 5MiB (5242880) to 5GiB, got " + std::to_string(size));
  }
  d.s3.*Member = size;
  return {};
}

Result set_s3_copy_threshold(Draft& d, const Value& v, const Notes&) {
  const uint64_t size = std::get<uint64_t>(v);
  if (size > (5ull << 30)) return std::unexpected("must be at most 5GiB (a single CopyObject's limit)");
  d.s3.multipart_copy_threshold = size;
  return {};
}

Result set_s3_small_cache(Draft& d, const Value& v, const Notes&) {
  const uint64_t size = std::get<uint64_t>(v);
  if (size > (64ull << 30)) return std::unexpected("must be at most 64GiB (it is held in memory), got " + std::to_string(size));
  d.s3.small_cache_size = size;
  return {};
}

Result set_s3_copy_concurrency(Draft& d, const Value& v, const Notes&) {
  const int64_t n = std::get<int64_t>(v);
  if (n < 1 || n > 10000) return std::unexpected("must be an integer from 1 to 10000");
  d.s3.multipart_copy_max_concurrency = static_cast<int>(n);
  return {};
}

Result set_s3_storage_class(Draft& d, const Value& v, const Notes&) {
  const std::string& s = std::get<std::string>(v);
  for (std::string_view known : {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                                 "GLACIER_IR", "NONE"}) {
    if (s == known) {
      d.s3.storage_class = s;
      return {};
    }
  }
  return std::unexpected("must be STANDARD, REDUCED_REDUNDANCY, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, "
                         "GLACIER_IR or NONE, got \"" + s + "\"");
}

Result check_v4auth(Draft&, const Value& v, const Notes& n) {
  if (!std::get<bool>(v)) n.warn("wharf always signs with AWS Signature Version 4; false is ignored");
  return {};
}

Result check_object_acl(Draft&, const Value& v, const Notes& n) {
  if (std::get<std::string>(v) != "private") n.warn("wharf writes objects with the bucket's default ACL (private); ignored");
  return {};
}

template <const char* What>
Result warn_if_true(Draft&, const Value& v, const Notes& n) {
  if (std::get<bool>(v)) n.warn(What);
  return {};
}
constexpr char kAccelerate[] = "S3 transfer acceleration is not supported by wharf, ignored";
constexpr char kDualStack[] = "dual-stack endpoints are not supported by wharf, ignored";

// An endpoint: "http(s)://host[:port]" or "host[:port]" (the scheme then follows storage.s3.secure).
std::optional<std::string> s3_endpoint(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::string_view rest(s);
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  else if (rest.starts_with("https://")) rest.remove_prefix(8);
  else if (rest.find("://") != std::string_view::npos) return "must be an http:// or https:// URL or host[:port]";
  while (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.empty() || rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return "must be an http:// or https:// URL or host[:port] without a path, got \"" + s + "\"";
  }
  return std::nullopt;
}

Result set_local_namespaces(Draft& d, const Value& v, const Notes&) {
  const auto& list = std::get<std::vector<std::string>>(v);
  for (const std::string& ns : list) {
    if (ns.empty() || ns.starts_with('/') || ns.ends_with('/')) {
      return std::unexpected("entries must be repository name prefixes such as \"team\", got \"" + ns + "\"");
    }
  }
  d.local_namespaces = list;
  return {};
}

constexpr Field used(std::string_view path, KeyType type, Apply apply) {
  return {.spec = {.path = path, .type = type}, .apply = apply};
}
constexpr Field required(std::string_view path, KeyType type, Apply apply) {
  return {.spec = {.path = path, .type = type, .required = true}, .apply = apply};
}
constexpr Field section(std::string_view path) { return {.spec = {.path = path, .type = KeyType::Section}}; }
constexpr Field driver_section(std::string_view path, std::string_view error) {
  return {.spec = {.path = path, .type = KeyType::Section, .driver_error = error}};
}
constexpr Field ignored(std::string_view path, KeyType type = KeyType::Any) {
  return {.spec = {.path = path, .type = type, .use = KeyUse::Ignored}};
}
constexpr Field warned(std::string_view path, KeyType type, std::string_view note) {
  return {.spec = {.path = path, .type = type, .use = KeyUse::Warned, .note = note}};
}
constexpr Field rejected(std::string_view path, std::string_view note) {
  return {.spec = {.path = path, .type = KeyType::Any, .use = KeyUse::Rejected, .note = note}};
}

const Field kFields[] = {
    required("version", KeyType::Version, set_version),
    used("loglevel", KeyType::String, set_legacy_log_level),
    section("log"),
    used("log.level", KeyType::String, set_log_level),
    used("log.formatter", KeyType::String, set_log_formatter),
    ignored("log.fields"),
    section("log.accesslog"),
    used("log.accesslog.disabled", KeyType::Bool, set_access_log_disabled),
    warned("log.hooks", KeyType::Any, "log hooks are not supported by wharf, ignored"),

    driver_section("storage", kStorageDriver),
    section("storage.filesystem"),
    used("storage.filesystem.rootdirectory", KeyType::String, store_checked<&Config::root_directory, non_empty>),
    ignored("storage.filesystem.maxthreads", KeyType::Int),
    rejected("storage.inmemory", kStorageDriver),
    section("storage.s3"),
    required("storage.s3.region", KeyType::String, store_s3_checked<&S3Storage::region, non_empty>),
    required("storage.s3.bucket", KeyType::String, store_s3_checked<&S3Storage::bucket, non_empty>),
    used("storage.s3.accesskey", KeyType::String, store_s3<&S3Storage::access_key>),
    used("storage.s3.secretkey", KeyType::String, store_s3<&S3Storage::secret_key>),
    used("storage.s3.sessiontoken", KeyType::String, store_s3<&S3Storage::session_token>),
    used("storage.s3.regionendpoint", KeyType::String, store_s3_checked<&S3Storage::region_endpoint, s3_endpoint>),
    used("storage.s3.forcepathstyle", KeyType::Bool, store_s3<&S3Storage::force_path_style>),
    used("storage.s3.encrypt", KeyType::Bool, store_s3<&S3Storage::encrypt>),
    used("storage.s3.keyid", KeyType::String, store_s3<&S3Storage::key_id>),
    used("storage.s3.secure", KeyType::Bool, store_s3<&S3Storage::secure>),
    used("storage.s3.skipverify", KeyType::Bool, store_s3<&S3Storage::skip_verify>),
    used("storage.s3.v4auth", KeyType::Bool, check_v4auth),
    used("storage.s3.chunksize", KeyType::Size, store_s3_part_size<&S3Storage::chunk_size>),
    used("storage.s3.multipartcopychunksize", KeyType::Size, store_s3_part_size<&S3Storage::multipart_copy_chunk_size>),
    used("storage.s3.multipartcopythresholdsize", KeyType::Size, set_s3_copy_threshold),
    used("storage.s3.multipartcopymaxconcurrency", KeyType::Int, set_s3_copy_concurrency),
    used("storage.s3.rootdirectory", KeyType::String, store_s3<&S3Storage::root_directory>),
    used("storage.s3.smallcachesize", KeyType::Size, set_s3_small_cache),
    used("storage.s3.storageclass", KeyType::String, set_s3_storage_class),
    used("storage.s3.objectacl", KeyType::String, check_object_acl),
    used("storage.s3.accelerate", KeyType::Bool, warn_if_true<kAccelerate>),
    used("storage.s3.usedualstack", KeyType::Bool, warn_if_true<kDualStack>),
    warned("storage.s3.loglevel", KeyType::Any, "the AWS SDK's log levels do not apply; S3 calls are logged at log.level"),
    warned("storage.s3.useragent", KeyType::String, "wharf sends its own User-Agent, ignored"),
    ignored("storage.s3.maxbuffers", KeyType::Int),
    ignored("storage.s3.checksumdisabled", KeyType::Any),
    ignored("storage.s3.disablekeepalives", KeyType::Bool),
    rejected("storage.azure", kStorageDriver),
    rejected("storage.gcs", kStorageDriver),
    rejected("storage.swift", kStorageDriver),
    rejected("storage.oss", kStorageDriver),
    section("storage.delete"),
    used("storage.delete.enabled", KeyType::Bool, store<&Config::delete_enabled>),
    section("storage.cache"),
    used("storage.cache.maxsize", KeyType::Size, store<&Config::cache_max_size>),
    warned("storage.cache.blobdescriptor", KeyType::String, kBlobDescriptor),
    ignored("storage.cache.blobdescriptorsize", KeyType::Int),
    warned("storage.cache.layerinfo", KeyType::String, kBlobDescriptor),
    section("storage.gc"),
    used("storage.gc.interval", KeyType::Duration, store<&Config::gc_interval>),
    used("storage.gc.grace", KeyType::Duration, store_positive_duration<&Config::gc_grace>),
    used("storage.retention", KeyType::RetentionRules, store<&Config::retention>),
    section("storage.maintenance"),
    section("storage.maintenance.uploadpurging"),
    used("storage.maintenance.uploadpurging.enabled", KeyType::Bool, store<&Config::upload_purging>),
    used("storage.maintenance.uploadpurging.age", KeyType::Duration, store<&Config::upload_purge_age>),
    used("storage.maintenance.uploadpurging.interval", KeyType::Duration, store<&Config::upload_purge_interval>),
    used("storage.maintenance.uploadpurging.dryrun", KeyType::Bool, store<&Config::upload_purge_dry_run>),
    section("storage.maintenance.readonly"),
    used("storage.maintenance.readonly.enabled", KeyType::Bool, warn_read_only),
    section("storage.redirect"),
    used("storage.redirect.disable", KeyType::Bool, store<&Config::redirect_disabled>),
    ignored("storage.tag"),

    driver_section("auth", kAuthProvider),
    section("auth.htpasswd"),
    required("auth.htpasswd.realm", KeyType::String, store<&Config::htpasswd_realm>),
    required("auth.htpasswd.path", KeyType::String, store_checked<&Config::htpasswd_path, non_empty>),
    // Access control: registry:2's auth.token, and wharf's own token server, rules, robots and audit log.
    section("auth.token"),
    required("auth.token.service", KeyType::String, store_checked<&Config::token_service, non_empty>),
    required("auth.token.issuer", KeyType::String, store_checked<&Config::token_issuer, non_empty>),
    used("auth.token.realm", KeyType::String, store_checked<&Config::token_realm, empty_or_http_url>),
    used("auth.token.rootcertbundle", KeyType::String, store<&Config::token_root_certs>),
    used("auth.token.signingkeys", KeyType::StringList, store<&Config::token_signing_keys>),
    used("auth.token.expiration", KeyType::Duration, store_positive_duration<&Config::token_expiration>),
    ignored("auth.token.autoredirect", KeyType::Bool),
    used("auth.token.jwks", KeyType::String, store_checked<&Config::token_jwks, non_empty>),
    used("auth.access", KeyType::AccessRules, store<&Config::access_rules>),
    used("auth.groups", KeyType::GroupMap, store<&Config::groups>),
    used("auth.fetch", KeyType::FetchRules, store<&Config::fetch_rules>),
    used("auth.immutabletags", KeyType::StringList, store<&Config::immutable_tags>),
    section("auth.robots"),
    used("auth.robots.path", KeyType::String, store<&Config::robots_path>),
    section("auth.audit"),
    used("auth.audit.enabled", KeyType::Bool, store<&Config::audit_enabled>),
    used("auth.audit.path", KeyType::String, store<&Config::audit_path>),
    rejected("auth.silly", kAuthProvider),
    ignored("auth.none"),

    section("http"),
    used("http.addr", KeyType::String, store_checked<&Config::http_addr, check_listen_addr>),
    used("http.net", KeyType::String, check_net),
    used("http.prefix", KeyType::String, check_prefix),
    used("http.host", KeyType::String, store_checked<&Config::http_host, empty_or_http_url>),
    used("http.secret", KeyType::String, store<&Config::http_secret>),
    used("http.internaladdr", KeyType::String, store_checked<&Config::http_internal_addr, internal_addr>),
    used("http.relativeurls", KeyType::Bool, warn_relative_urls),
    used("http.draintimeout", KeyType::Duration, store<&Config::drain_timeout>),
    section("http.tls"),
    used("http.tls.certificate", KeyType::String, store<&Config::tls_certificate>),
    used("http.tls.key", KeyType::String, store<&Config::tls_key>),
    used("http.tls.minimumtls", KeyType::String, set_min_tls),
    warned("http.tls.clientcas", KeyType::StringList, "client certificates are not verified by wharf, ignored"),
    ignored("http.tls.clientauth", KeyType::String),
    warned("http.tls.ciphersuites", KeyType::StringList, "ignored; wharf uses OpenSSL's default cipher suites"),
    warned("http.tls.letsencrypt", KeyType::Any, "Let's Encrypt is not supported by wharf, ignored"),
    section("http.debug"),
    used("http.debug.addr", KeyType::String, store_checked<&Config::debug_addr, check_listen_addr>),
    section("http.debug.prometheus"),
    used("http.debug.prometheus.enabled", KeyType::Bool, store<&Config::prometheus_enabled>),
    used("http.debug.prometheus.path", KeyType::String, store_checked<&Config::prometheus_path, absolute_path>),
    section("http.ui"),
    used("http.ui.enabled", KeyType::Bool, store<&Config::ui_enabled>),
    used("http.ui.path", KeyType::String, store_checked<&Config::ui_path, ui_path>),
    used("http.headers", KeyType::HeaderMap, store<&Config::http_headers>),
    section("http.limits"),
    used("http.limits.headertimeout", KeyType::Duration, store_positive_duration<&Config::header_timeout>),
    used("http.limits.minbodyrate", KeyType::Size, store<&Config::min_body_rate>),
    used("http.limits.bodyrateperiod", KeyType::Duration, store_positive_duration<&Config::body_rate_period>),
    used("http.limits.uploads", KeyType::Int, store_limit<&Config::max_uploads>),
    used("http.limits.uploadsperclient", KeyType::Int, store_limit<&Config::max_uploads_per_client>),
    used("http.limits.passwordchecks", KeyType::Int, store_limit<&Config::password_checks>),
    used("http.limits.authfailures", KeyType::Int, store_limit<&Config::auth_failures_per_client>),
    ignored("http.http2"),
    ignored("http.h2c"),

    section("health"),
    section("health.storagedriver"),
    used("health.storagedriver.enabled", KeyType::Bool, store<&Config::health_storage_enabled>),
    used("health.storagedriver.interval", KeyType::Duration, store<&Config::health_storage_interval>),
    used("health.storagedriver.threshold", KeyType::Int, set_threshold),
    warned("health.file", KeyType::Any, "file health checks are not supported by wharf, ignored"),
    warned("health.http", KeyType::Any, "HTTP health checks are not supported by wharf, ignored"),
    warned("health.tcp", KeyType::Any, "TCP health checks are not supported by wharf, ignored"),

    section("proxy"),
    used("proxy.remoteurl", KeyType::String, store_checked<&Draft::remote_url, http_url>),
    used("proxy.username", KeyType::String, store<&Draft::remote_username>),
    used("proxy.password", KeyType::String, store<&Draft::remote_password>),
    used("proxy.ttl", KeyType::Duration, store<&Config::proxy_ttl>),
    warned("proxy.exec", KeyType::Any, "credential helpers are not supported by wharf, ignored"),
    warned("proxy.remotenamespace", KeyType::String, kNotSupported),
    used("proxy.upstreams", KeyType::UpstreamList, store<&Draft::extra_upstreams>),
    used("proxy.localnamespaces", KeyType::StringList, set_local_namespaces),
    used("proxy.allowpush", KeyType::Bool, store<&Config::allow_push_to_proxied>),
    used("proxy.tagfreshness", KeyType::Duration, store<&Config::tag_freshness>),
    used("proxy.prefetch", KeyType::Bool, store<&Config::prefetch_blobs>),
    used("proxy.forwardcredentials", KeyType::Bool, store<&Config::forward_credentials>),
    section("proxy.limits"),
    used("proxy.limits.downloads", KeyType::Int, store_limit<&Config::upstream_downloads>),
    used("proxy.limits.downloadsperupstream", KeyType::Int, store_limit<&Config::upstream_downloads_per_upstream>),
    used("proxy.limits.minrate", KeyType::Size, store<&Config::upstream_min_rate>),
    used("proxy.limits.stalltime", KeyType::Duration, store_positive_duration<&Config::upstream_stall_time>),
    used("proxy.limits.manifestsize", KeyType::Size, store<&Config::upstream_manifest_max>),

    section("database"),
    used("database.dsn", KeyType::String, store_checked<&Config::database_dsn, postgres_dsn>),
    used("database.poolsize", KeyType::Int, store_limit<&Config::database_pool_size, 1000>),
    used("database.notifycache", KeyType::Bool, store<&Config::database_notify_cache>),

    warned("middleware", KeyType::Any, kNotSupported),
    warned("notifications", KeyType::Any, kNotSupported),
    warned("redis", KeyType::Any, kNotSupported),
    warned("reporting", KeyType::Any, kNotSupported),
    warned("validation", KeyType::Any, kNotSupported),
    warned("compatibility", KeyType::Any, kNotSupported),
    warned("catalog", KeyType::Any, kNotSupported),
};

}  // namespace

std::span<const Field> fields() { return kFields; }

const Field* find_field(std::string_view path) {
  auto it = std::find_if(std::begin(kFields), std::end(kFields), [&](const Field& f) { return f.spec.path == path; });
  return it == std::end(kFields) ? nullptr : &*it;
}

}  // namespace wharf::config::detail

namespace wharf::config {

std::span<const KeySpec> schema() {
  static const std::vector<KeySpec> specs = [] {
    std::vector<KeySpec> out;
    for (const detail::Field& f : detail::fields()) out.push_back(f.spec);
    return out;
  }();
  return specs;
}

}  // namespace wharf::config
