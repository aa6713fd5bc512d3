#include "src/preflight.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "src/auth/htpasswd.hpp"
#include "src/auth/keys.hpp"
#include "src/http/server.hpp"
#include "src/s3/probe.hpp"
#include "cache/pg/pg_index.hpp"

namespace wharf {

namespace {

namespace fs = std::filesystem;

// The problem with reading `path` as a regular file, if any.
std::optional<std::string> unreadable(const std::string& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return "'" + path + "' does not exist";
  if (!fs::is_regular_file(st)) return "'" + path + "' is not a regular file";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read '" + path + "': " + std::strerror(errno);
  return std::nullopt;
}

// The root directory must exist as a writable directory, or be creatable under the nearest existing ancestor.
std::optional<std::string> root_problem(const std::string& root) {
  std::error_code ec;
  fs::path p = fs::absolute(root, ec);
  if (ec) return "cannot resolve '" + root + "': " + ec.message();
  if (fs::exists(p, ec)) {
    if (!fs::is_directory(p, ec)) return "'" + root + "' exists and is not a directory";
    if (::access(p.c_str(), W_OK | X_OK) != 0) return "'" + root + "' is not writable: " + std::strerror(errno);
    return std::nullopt;
  }
  fs::path parent = p.parent_path();
  while (!parent.empty() && !fs::exists(parent, ec)) {
    if (parent == parent.parent_path()) break;
    parent = parent.parent_path();
  }
  if (!fs::is_directory(parent, ec)) return "cannot create '" + root + "': '" + parent.string() + "' is not a directory";
  if (::access(parent.c_str(), W_OK | X_OK) != 0) {
    return "cannot create '" + root + "': '" + parent.string() + "' is not writable: " + std::strerror(errno);
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> preflight(const config::Config& cfg) {
  std::vector<std::string> problems;
  if (auto p = root_problem(cfg.root_directory)) problems.push_back("storage.filesystem.rootdirectory: " + *p);
  if (!cfg.htpasswd_path.empty()) {
    if (auto p = unreadable(cfg.htpasswd_path)) {
      problems.push_back("auth.htpasswd.path: " + *p);
    } else if (auto users = auth::Htpasswd::load(cfg.htpasswd_path); !users) {
      problems.push_back("auth.htpasswd.path: " + users.error());
    }
  }
  if (cfg.token_enabled) {
    // The same loads the auth gate does at start: a key that does not load stops serve.
    if (!cfg.token_root_certs.empty()) {
      if (auto p = unreadable(cfg.token_root_certs)) problems.push_back("auth.token.rootcertbundle: " + *p);
      else if (auto keys = auth::load_public_keys(cfg.token_root_certs); !keys)
        problems.push_back("auth.token.rootcertbundle: " + keys.error());
    }
    if (cfg.token_realm.empty()) {
      for (size_t i = 0; i < cfg.token_signing_keys.size(); ++i) {
        const std::string key = "auth.token.signingkeys[" + std::to_string(i) + "]: ";
        if (auto p = unreadable(cfg.token_signing_keys[i])) problems.push_back(key + *p);
        else if (auto k = auth::load_private_key(cfg.token_signing_keys[i]); !k) problems.push_back(key + k.error());
      }
    }
  }
  if (cfg.tls_certificate.empty() != cfg.tls_key.empty()) {
    problems.push_back(cfg.tls_key.empty() ? "http.tls.key: required with http.tls.certificate"
                                           : "http.tls.certificate: required with http.tls.key");
  } else if (!cfg.tls_certificate.empty()) {
    if (auto p = unreadable(cfg.tls_certificate)) {
      problems.push_back("http.tls.certificate: " + *p);
    } else if (auto q = unreadable(cfg.tls_key)) {
      problems.push_back("http.tls.key: " + *q);
    } else if (auto tls = http::check_tls_files(cfg.tls_certificate, cfg.tls_key); !tls) {
      problems.push_back(tls.error());
    }
  }
  for (const auto& u : cfg.upstreams) {
    if (u.ca.empty()) continue;
    if (auto p = unreadable(u.ca)) problems.push_back("proxy.upstreams (" + u.name + ").ca: " + *p);
  }
  if (cfg.storage_driver == config::StorageDriver::S3) {
    for (std::string& p : s3::probe_bucket(cfg.s3)) problems.push_back(std::move(p));
  }
  if (!cfg.database_dsn.empty()) {
    if (auto p = cache::PgIndex::probe(cfg.database_dsn)) problems.push_back(std::move(*p));
  }
  return problems;
}

std::string auth_mode(const config::Config& cfg) {
  std::string mode;
  if (cfg.token_enabled) {
    mode = cfg.token_realm.empty() ? "token (wharf issues them at /auth/token, service " + cfg.token_service + ")"
                                   : "token (external realm " + cfg.token_realm + ", service " + cfg.token_service + ")";
    if (!cfg.htpasswd_path.empty()) mode += " + htpasswd";
  } else {
    mode = cfg.htpasswd_path.empty() ? "off" : "htpasswd";
  }
  if (!cfg.access_rules.empty()) mode += ", " + std::to_string(cfg.access_rules.size()) + " access rule(s)";
  return mode;
}

}  // namespace wharf
