// Loading: YAML text → REGISTRY_* overlay → walk against the key table → cross-key checks → Config.
#include "src/config/config.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "src/config/schema.hpp"

namespace wharf::config {
namespace {

using detail::Draft;
using detail::Field;

constexpr const char* kDefaultYaml = R"(version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: ./data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
proxy:
  remoteurl: https://registry-1.docker.io
)";

// registry:2's default for storage.filesystem without rootdirectory.
constexpr const char* kRegistryRootDirectory = "/var/lib/registry";

struct Walk {
  Draft draft;
  std::set<std::string, std::less<>> seen;  // key paths present with a value (sections even when empty)
  std::vector<std::string>& warnings;
};

std::unexpected<ConfigError> fail(std::string key, std::string message) {
  return std::unexpected(ConfigError{std::move(key), std::move(message)});
}

std::expected<void, ConfigError> walk(Walk& w, const YAML::Node& map, const std::string& path, const KeySpec* section) {
  if (!map.IsMap()) return fail(path, "must be a mapping");
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return fail(path, "keys must be plain strings");
    const std::string child = path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar();
    const Field* f = detail::find_field(child);
    if (f == nullptr) {
      if (section != nullptr && !section->driver_error.empty()) return fail(child, std::string(section->driver_error));
      w.warnings.push_back(child + ": unknown key, ignored");
      continue;
    }
    const KeySpec& spec = f->spec;
    const YAML::Node& value = kv.second;
    if (spec.use == KeyUse::Rejected) return fail(child, std::string(spec.note));
    if (spec.use == KeyUse::Warned) w.warnings.push_back(child + ": " + std::string(spec.note));
    if (spec.use != KeyUse::Used) continue;
    if (spec.type == KeyType::Section) {
      w.seen.insert(child);
      if (value.IsNull()) continue;
      if (value.IsScalar() && !spec.driver_error.empty()) {  // "storage: filesystem" names the driver
        YAML::Node named(YAML::NodeType::Map);
        named[value.Scalar()] = YAML::Node();
        if (auto r = walk(w, named, child, &spec); !r) return r;
      } else if (auto r = walk(w, value, child, &spec); !r) {
        return r;
      }
      continue;
    }
    if (value.IsNull()) continue;  // "key:" with no value leaves the default, as in registry:2
    const detail::Notes notes{child, w.warnings};
    auto converted = detail::convert(value, spec.type, notes);
    if (!converted) return std::unexpected(converted.error());
    if (auto r = f->apply(w.draft, *converted, notes); !r) return fail(child, r.error());
    w.seen.insert(child);
  }
  return {};
}

std::string parent_of(std::string_view path) {
  const size_t dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string() : std::string(path.substr(0, dot));
}

std::string without_trailing_slashes(std::string url) {
  while (url.ends_with('/')) url.pop_back();
  return url;
}

// The upstream table: proxy.remoteurl first (it is the default), then proxy.upstreams.
std::expected<void, ConfigError> assemble_upstreams(Walk& w) {
  Draft& d = w.draft;
  std::vector<Upstream> all;
  if (!d.remote_url.empty()) {
    std::string host = *detail::url_host(d.remote_url);
    if (host == "registry-1.docker.io" || host == "docker.io" || host == "index.docker.io") host = "docker.io";
    all.push_back({host, without_trailing_slashes(d.remote_url), d.remote_username, d.remote_password, ""});
  } else if (!d.remote_username.empty() || !d.remote_password.empty()) {
    w.warnings.push_back("proxy.username: ignored without proxy.remoteurl");
  }
  for (Upstream& u : d.extra_upstreams) {
    u.url = without_trailing_slashes(u.url);
    // An entry for remoteurl's own URL names that upstream (e.g. docker.io): one upstream, not two caches.
    if (!all.empty() && !d.remote_url.empty() && u.url == all.front().url) {
      Upstream& r = all.front();
      r.name = u.name;
      if (r.username.empty()) {
        r.username = u.username;
        r.password = u.password;
      }
      if (r.ca.empty()) r.ca = u.ca;
      continue;
    }
    all.push_back(std::move(u));
  }
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (all[i].name == all[j].name) {
        return fail("proxy.upstreams", "upstream \"" + all[i].name + "\" is configured twice");
      }
    }
  }
  if (!d.remote_url.empty()) {
    d.default_upstream = all.front().name;
  } else if (!all.empty()) {
    d.default_upstream = all.front().name;
    for (const Upstream& u : all)
      if (u.name == "docker.io") d.default_upstream = u.name;
  }
  d.upstreams = std::move(all);
  return {};
}

// The storage driver: exactly one of filesystem and s3; s3 needs an access key pair.
std::expected<void, ConfigError> settle_storage(Walk& w) {
  const bool fs = w.seen.contains("storage.filesystem");
  const bool s3 = w.seen.contains("storage.s3");
  if (fs && s3) return fail("storage", "names both filesystem and s3; a configuration uses one storage driver");
  if (!s3) return {};
  Draft& d = w.draft;
  d.storage_driver = StorageDriver::S3;
  if (d.s3.access_key.empty() && d.s3.secret_key.empty()) {
    return fail("storage.s3.accesskey",
                "missing; wharf signs S3 requests with storage.s3.accesskey and storage.s3.secretkey "
                "(instance-role credentials are not supported)");
  }
  if (d.s3.access_key.empty()) return fail("storage.s3.accesskey", "missing; storage.s3.secretkey is set");
  if (d.s3.secret_key.empty()) return fail("storage.s3.secretkey", "missing; storage.s3.accesskey is set");
  if (!d.s3.key_id.empty() && !d.s3.encrypt) w.warnings.push_back("storage.s3.keyid: ignored without storage.s3.encrypt: true");
  return {};
}

// Checks that need the whole document, and defaults that depend on what was present.
std::expected<Config, ConfigError> finish(Walk& w) {
  for (const Field& f : detail::fields()) {
    if (!f.spec.required || w.seen.contains(f.spec.path)) continue;
    const std::string parent = parent_of(f.spec.path);
    if (parent.empty()) return fail(std::string(f.spec.path), "missing; registry:2 configurations must say version: 0.1");
    if (w.seen.contains(parent)) return fail(std::string(f.spec.path), "missing; required when " + parent + " is set");
  }
  Draft& d = w.draft;
  if (!d.tls_certificate.empty() && d.tls_key.empty()) return fail("http.tls.key", "missing; http.tls.certificate is set");
  if (d.tls_certificate.empty() && !d.tls_key.empty()) return fail("http.tls.certificate", "missing; http.tls.key is set");
  if (w.seen.contains("storage.filesystem") && !w.seen.contains("storage.filesystem.rootdirectory")) {
    d.root_directory = kRegistryRootDirectory;
  }
  if (!w.seen.contains("log.level") && !d.legacy_log_level.empty()) d.log_level = d.legacy_log_level;
  if (auto r = settle_storage(w); !r) return std::unexpected(r.error());
  if (auto r = assemble_upstreams(w); !r) return std::unexpected(r.error());
  if (auto r = detail::finish_access(d, w.seen.contains("auth.token")); !r) return std::unexpected(r.error());
  return static_cast<Config>(std::move(d));
}

// Adds "(set by REGISTRY_X)" when the failing key, or a section above it, came from the environment.
ConfigError with_source(ConfigError e, const std::map<std::string, std::string>& sources) {
  for (std::string path = e.key; !path.empty(); path = parent_of(path)) {
    if (auto it = sources.find(path); it != sources.end()) {
      e.message += " (set by " + it->second + ")";
      break;
    }
  }
  return e;
}

}  // namespace

const char* default_yaml() { return kDefaultYaml; }

std::string S3Storage::endpoint_url() const {
  if (region_endpoint.empty()) return std::string(secure ? "https" : "http").append("://s3.").append(region).append(".amazonaws.com");
  std::string url = region_endpoint;
  while (url.ends_with('/')) url.pop_back();
  if (url.starts_with("http://") || url.starts_with("https://")) return url;
  return std::string(secure ? "https://" : "http://").append(url);
}

bool S3Storage::path_style() const { return force_path_style.value_or(!region_endpoint.empty()); }

std::expected<Config, ConfigError> load_from_string(const std::string& yaml,
                                                    const std::map<std::string, std::string>& env,
                                                    std::vector<std::string>& warnings) {
  std::map<std::string, std::string> sources;
  try {
    YAML::Node root = YAML::Load(yaml);
    if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) return fail("", "the configuration must be a YAML mapping of keys");
    detail::apply_env(root, env, sources, warnings);
    Walk w{Draft{}, {}, warnings};
    if (auto r = walk(w, root, "", nullptr); !r) return std::unexpected(with_source(r.error(), sources));
    auto config = finish(w);
    if (!config) return std::unexpected(with_source(config.error(), sources));
    return config;
  } catch (const YAML::ParserException& e) {
    return fail("", "invalid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
                        std::to_string(e.mark.column + 1) + ": " + e.msg);
  } catch (const YAML::Exception& e) {
    return fail("", std::string("invalid configuration: ") + e.what());
  }
}

std::expected<Config, ConfigError> load_file(const std::string& path, const std::map<std::string, std::string>& env,
                                             std::vector<std::string>& warnings) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("", "cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail("", "cannot read " + path + ": " + std::strerror(errno));
  auto config = load_from_string(text.str(), env, warnings);
  if (!config && config.error().key.empty()) config.error().message = path + ": " + config.error().message;
  return config;
}

}  // namespace wharf::config
