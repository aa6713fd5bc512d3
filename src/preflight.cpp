#include "src/preflight.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "src/auth/htpasswd.hpp"

namespace wharf {

namespace {

namespace fs = std::filesystem;

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

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

// The certificate chain and the key load and belong together.
std::optional<std::string> tls_problem(const std::string& cert, const std::string& key) {
  if (auto p = unreadable(cert)) return "http.tls.certificate: " + *p;
  if (auto p = unreadable(key)) return "http.tls.key: " + *p;
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return "http.tls: " + openssl_error();
  std::optional<std::string> problem;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    problem = "http.tls.certificate: '" + cert + "' is not a PEM certificate: " + openssl_error();
  } else if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    problem = "http.tls.key: '" + key + "' is not a PEM private key: " + openssl_error();
  } else if (SSL_CTX_check_private_key(ctx) != 1) {
    problem = "http.tls.key: '" + key + "' does not match the certificate '" + cert + "'";
    ERR_clear_error();
  }
  SSL_CTX_free(ctx);
  return problem;
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
  if (cfg.tls_certificate.empty() != cfg.tls_key.empty()) {
    problems.push_back(cfg.tls_key.empty() ? "http.tls.key: required with http.tls.certificate"
                                           : "http.tls.certificate: required with http.tls.key");
  } else if (!cfg.tls_certificate.empty()) {
    if (auto p = tls_problem(cfg.tls_certificate, cfg.tls_key)) problems.push_back(*p);
  }
  for (const auto& u : cfg.upstreams) {
    if (u.ca.empty()) continue;
    if (auto p = unreadable(u.ca)) problems.push_back("proxy.upstreams (" + u.name + ").ca: " + *p);
  }
  return problems;
}

}  // namespace wharf
