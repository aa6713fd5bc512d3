// The gate: who is calling (anonymous, Basic, Bearer), then whether the request's scope is allowed.
#include "src/api/auth_gate.hpp"

#include <spdlog/spdlog.h>

#include <ctime>

#include "src/api/respond.hpp"

namespace wharf::api {
namespace {

const std::string kDefaultRealm = "wharf";

int64_t unix_now() { return int64_t(std::time(nullptr)); }

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string joined_actions(uint8_t actions) {
  std::string out;
  for (const auto& a : auth::action_names(actions)) out += (out.empty() ? "" : ",") + a;
  return out;
}

// Removes query parameter `key` (a refused cross-repository mount becomes a plain upload, as in registry:2).
void drop_query_param(http::Request& req, std::string_view key) {
  std::string kept;
  std::string_view q = req.query;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.substr(0, part.find('=')) == key) continue;
    if (!kept.empty()) kept += '&';
    kept += part;
  }
  req.query = kept;
  req.target = kept.empty() ? req.path : req.path + "?" + kept;
}

}  // namespace

AuthGate::AuthGate(const config::Config& cfg, event_base* base, AuthLimits limits)
    : cfg_(cfg), token_mode_(cfg.token_enabled), throttle_(limits.failures_per_client) {
  if (!cfg.htpasswd_path.empty() || token_mode_) {
    checks_ = std::make_unique<util::WorkPool>(base, std::max(limits.threads, 1u), size_t(std::max(limits.password_checks, 1)));
  }
}

AuthGate::~AuthGate() {
  if (checks_) checks_->shutdown(util::WorkPool::Pending::Drop);
}

std::expected<std::unique_ptr<AuthGate>, std::string> AuthGate::create(const config::Config& cfg, event_base* base,
                                                                      AuthLimits limits) {
  std::unique_ptr<AuthGate> g(new AuthGate(cfg, base, limits));
  if (!cfg.htpasswd_path.empty()) {
    auto file = auth::HtpasswdFile::open(cfg.htpasswd_path);
    if (!file) return std::unexpected("auth.htpasswd.path: " + file.error());
    g->file_.emplace(std::move(*file));
  }
  if (g->token_mode_) {
    if (!cfg.token_root_certs.empty()) {
      auto keys = auth::load_public_keys(cfg.token_root_certs);
      if (!keys) return std::unexpected("auth.token.rootcertbundle: " + keys.error());
      g->verify_keys_ = std::move(*keys);
    }
    if (cfg.token_realm.empty()) {
      std::vector<auth::Key> signing;
      for (const std::string& path : cfg.token_signing_keys) {
        auto key = auth::load_private_key(path);
        if (!key) return std::unexpected("auth.token.signingkeys: " + key.error());
        signing.push_back(*key);
        g->verify_keys_.push_back(std::move(*key));
      }
      g->issuer_.emplace(std::move(signing), cfg.token_issuer, cfg.token_service, cfg.token_expiration);
    }
  }
  // Without any authentication everyone is anonymous: no rules means open, as before.
  g->rules_ = auth::Rules(cfg, g->enabled() ? auth::Rules::Default::AuthenticatedOnly : auth::Rules::Default::AllowAll);
  if (g->enabled()) {
    std::filesystem::path robots = cfg.robots_path.empty() ? std::filesystem::path(cfg.root_directory) / "robots.json"
                                                           : std::filesystem::path(cfg.robots_path);
    g->robots_.emplace(std::move(robots));
  }
  std::string error;
  g->audit_ = auth::AuditLog::open(cfg.audit_enabled, cfg.audit_path, error);
  if (!g->audit_) return std::unexpected(error);
  return g;
}

std::string AuthGate::describe() const {
  if (token_mode_) return std::string(issuer_ ? "token (own issuer)" : "token (external)") + (file_ ? "+htpasswd" : "");
  return file_ ? "htpasswd" : "off";
}

void AuthGate::reload() {
  tokens_.clear();
  if (!file_) return;
  ++stats_.reloads;
  cache_->clear();
  file_->reload();
}

std::optional<std::string> AuthGate::problem() const {
  if (!file_ || !file_->problem()) return std::nullopt;
  return "auth.htpasswd.path: " + *file_->problem();
}

void AuthGate::audit(const http::ExchangePtr& ex, std::string_view event, std::string_view user, std::string_view repo,
                     std::string_view action, std::string_view outcome) {
  audit_->record(auth::AuditEvent{event, user, ex->req().peer, repo, action, outcome});
}

std::string AuthGate::realm_for(const http::Request& req) const {
  if (!cfg_.token_realm.empty()) return cfg_.token_realm;
  std::string base = cfg_.http_host;
  if (base.empty()) {
    std::string_view host = req.header("host");
    for (char c : host)
      if (c <= ' ' || c == '"' || c == '\\' || c == 0x7f) host = {};
    base = std::string(cfg_.tls_certificate.empty() ? "http://" : "https://") +
           std::string(host.empty() ? std::string_view(cfg_.http_addr) : host);
  }
  while (base.ends_with('/')) base.pop_back();
  return base + "/auth/token";
}

void AuthGate::challenge(const http::ExchangePtr& ex, const std::string& why, const Scope& scope,
                         std::string_view error) {
  auto res = error_response(oci::ErrorCode::Unauthorized, why);
  if (token_mode_) {
    std::string h = std::string("Bearer realm=\"").append(realm_for(ex->req())) + "\",service=\"" + cfg_.token_service + "\"";
    if (!scope.repo.empty() && scope.actions != 0) {
      const uint8_t wanted = scope.actions & auth::kPush ? uint8_t(scope.actions | auth::kPull) : scope.actions;
      h += ",scope=\"repository:" + scope.repo + ":" + joined_actions(wanted) + "\"";
    }
    if (!error.empty()) h += std::string(",error=\"") + std::string(error) + "\"";
    res.header("WWW-Authenticate", h);
  } else {
    const std::string& realm = cfg_.htpasswd_realm.empty() ? kDefaultRealm : cfg_.htpasswd_realm;
    res.header("WWW-Authenticate", "Basic realm=\"" + realm + "\"");
  }
  ex->respond(std::move(res));
}

void AuthGate::refuse(const http::ExchangePtr& ex, oci::ErrorCode code, const std::string& why,
                      std::chrono::seconds wait) {
  auto res = error_response(code, why);
  res.header("Retry-After", std::to_string(wait.count()));
  ex->respond(std::move(res));
}

uint8_t AuthGate::allowed(const Caller& caller, std::string_view repo) {
  const int64_t now = unix_now();
  if (caller.token) {
    uint8_t out = 0;
    for (const auth::Access& a : caller.token->access)
      if (a.type == "repository" && a.name == repo) out |= auth::parse_actions(a.actions);
    // A robot's token grants no more than the robot may still do (revoked: nothing).
    if (issuer_ && caller.user.starts_with(auth::kRobotPrefix)) {
      const auth::Robot* r = robots_->find(std::string_view(caller.user).substr(auth::kRobotPrefix.size()));
      return r ? uint8_t(out & auth::robot_allowed(*r, repo, now)) : uint8_t(0);
    }
    return out;
  }
  if (caller.user.starts_with(auth::kRobotPrefix) && robots_) {
    const auth::Robot* r = robots_->find(std::string_view(caller.user).substr(auth::kRobotPrefix.size()));
    return r ? auth::robot_allowed(*r, repo, now) : 0;
  }
  return rules_.allowed(caller.user, repo);
}

void AuthGate::answer_refusal(const http::ExchangePtr& ex, const Scope& scope, const Refusal& r) {
  if (r.code == oci::ErrorCode::Unauthorized) return challenge(ex, r.why, scope, r.token_error);
  refuse(ex, r.code, r.why, r.wait);
}

void AuthGate::authenticate(const http::ExchangePtr& ex, std::function<void(Caller)> next,
                            std::function<void(const Refusal&)> refused) {
  identify(ex, "", std::move(next), std::move(refused));
}

void AuthGate::check(const http::ExchangePtr& ex, const Scope& scope, std::function<void(const Caller&)> next) {
  auto refused = [this, ex, scope](const Refusal& r) { answer_refusal(ex, scope, r); };
  identify(ex, scope.repo, [this, ex, scope, next = std::move(next)](Caller caller) {
    bool ok;
    if (scope.repo.empty()) {
      // Base and catalog: signed-in callers (and bearer holders); anonymous ones where nothing is required.
      ok = !enabled() || caller.signed_in() || caller.token != nullptr ||
           (ex->req().route == std::string_view("catalog") && rules_.anonymous_can_pull_somewhere());
    } else {
      ok = (allowed(caller, scope.repo) & scope.actions) == scope.actions;
    }
    if (ok) {
      if (!scope.mount_from.empty() && !(allowed(caller, scope.mount_from) & auth::kPull)) drop_query_param(ex->req(), "from");
      ex->req().user = caller.user;
      const std::string& m = ex->req().method;
      const bool manifest_put = m == "PUT" && ex->req().route == std::string_view("manifest");
      if (manifest_put || (scope.actions & auth::kDelete)) {  // pushes of tags/manifests, and every delete
        audit(ex, m == "PUT" ? "push" : "delete", caller.user, scope.repo, m + " " + ex->req().path, "authorized");
      }
      return next(caller);
    }
    ex->req().user = caller.user;  // for the access log
    const std::string need = joined_actions(scope.actions);
    // The anonymous GET /v2/ every client starts with is the challenge handshake, not worth a line.
    if (caller.signed_in() || caller.token || !scope.repo.empty() || ex->req().route != std::string_view("base"))
      audit(ex, "denied", caller.user, scope.repo, ex->req().method + " " + ex->req().path, need.empty() ? "sign-in" : need);
    if (!caller.signed_in()) {
      return challenge(ex, scope.repo.empty() ? "authentication required"
                                              : "authentication required to " + need + " " + scope.repo,
                       scope, caller.token ? "insufficient_scope" : "");
    }
    auto res = error_response(oci::ErrorCode::Denied,
                              "user " + caller.user + " may not " + need + " repository " + scope.repo);
    if (token_mode_) {
      res.header("WWW-Authenticate", std::string("Bearer realm=\"").append(realm_for(ex->req())) + "\",service=\"" + cfg_.token_service +
                                         "\",scope=\"repository:" + scope.repo + ":" + need + "\",error=\"insufficient_scope\"");
    }
    ex->respond(std::move(res));
  }, std::move(refused));
}

void AuthGate::identify(const http::ExchangePtr& ex, std::string repo, std::function<void(Caller)> next,
                        std::function<void(const Refusal&)> refused) {
  const std::string_view header = trim(ex->req().header("authorization"));
  if (header.empty()) return next(Caller{});
  if (starts_with_ci(header, "bearer ")) {
    if (!token_mode_) return refused(Refusal{oci::ErrorCode::Unauthorized, "bearer tokens are not accepted here; use Basic authentication", "", {}});
    const std::string_view token = trim(header.substr(7));
    const int64_t now = unix_now();
    auto claims = tokens_.lookup(token, now);
    if (!claims) {
      auto verified = auth::verify_jwt(token, verify_keys_,
                                       auth::VerifyOptions{cfg_.token_issuer, cfg_.token_service, now, 60});
      if (!verified) {
        audit(ex, "denied", "", repo, "bearer token", verified.error());
        return refused(Refusal{oci::ErrorCode::Unauthorized, "invalid token: " + verified.error(), "invalid_token", {}});
      }
      claims = std::make_shared<const auth::Claims>(std::move(*verified));
      tokens_.remember(token, claims, claims->expires + 60, now);
    }
    // A robot revoked (or expired) after its token was issued loses the token at once.
    if (issuer_ && claims->subject.starts_with(auth::kRobotPrefix)) {
      const auth::Robot* r = robots_->find(std::string_view(claims->subject).substr(auth::kRobotPrefix.size()));
      if (r == nullptr || (r->expires != 0 && r->expires <= now)) {
        audit(ex, "denied", claims->subject, repo, "bearer token", "robot revoked or expired");
        return refused(Refusal{oci::ErrorCode::Unauthorized, "robot account " + claims->subject + " is revoked or expired",
                               "invalid_token", {}});
      }
    }
    return next(Caller{claims->subject, claims});
  }
  std::string authz(header);
  if (file_) {
    const uint64_t before = file_->generation();
    (void)file_->users();  // re-reads the file if it changed
    if (file_->generation() != before) {
      ++stats_.reloads;
      cache_->clear();
    }
  }
  if (auto user = cache_->lookup(authz)) return next(Caller{*user, nullptr});
  auto creds = auth::parse_basic(authz);
  if (!creds) return refused(Refusal{oci::ErrorCode::Unauthorized, "unsupported Authorization header; use Basic or Bearer", "", {}});
  if (creds->first.starts_with(auth::kRobotPrefix) && robots_) {
    const auth::Robot* r = robots_->find(std::string_view(creds->first).substr(auth::kRobotPrefix.size()));
    const bool ok = r != nullptr && auth::robot_secret_matches(*r, creds->second) &&
                    (r->expires == 0 || r->expires > unix_now());
    if (!ok) {
      audit(ex, "login", creds->first, repo, "", "failed");
      return refused(Refusal{oci::ErrorCode::Unauthorized, "invalid username or password", "", {}});
    }
    return next(Caller{creds->first, nullptr});  // not cached: revocation counts at the next request
  }
  verify_password(ex, std::move(repo), std::move(authz), std::move(creds->first), std::move(creds->second), std::move(next),
                  std::move(refused));
}

void AuthGate::verify_password(const http::ExchangePtr& ex, std::string repo, std::string authz, std::string user, std::string password,
                               std::function<void(Caller)> next, std::function<void(const Refusal&)> refused) {
  auto users = file_ ? file_->users() : nullptr;
  if (!users) {
    return refused(Refusal{oci::ErrorCode::Unauthorized,
                           file_ ? "authentication is unavailable: the server's htpasswd file cannot be used"
                                 : "invalid username or password", "", {}});
  }
  const std::string client = auth::client_key(ex->req().peer);
  if (auto wait = throttle_.begin(client)) {
    ++stats_.throttled;
    return refused(Refusal{oci::ErrorCode::TooManyRequests,
                           "too many failed or concurrent logins from this address; retry later", "", *wait});
  }
  auto ok = std::make_shared<bool>(false);
  auto creds = std::make_shared<std::pair<std::string, std::string>>(std::move(user), std::move(password));
  const uint64_t generation = file_->generation();
  const bool queued = checks_->try_submit(
      [users, creds, ok] { *ok = users->verify(creds->first, creds->second); },
      [this, ex, repo, ok, creds, authz, client, generation, next, refused]() mutable {
        ++stats_.checks;
        if (!*ok) ++stats_.failures;
        throttle_.finish(client, *ok ? auth::FailureThrottle::Outcome::Verified : auth::FailureThrottle::Outcome::Failed);
        if (!ex->alive()) return;
        if (generation != file_->generation()) return identify(ex, repo, std::move(next), std::move(refused));  // the file changed meanwhile
        if (!*ok) {
          spdlog::warn("authentication failed for user '{}' from {}", creds->first, ex->req().peer);
          audit(ex, "login", creds->first, repo, "", "failed");
          return refused(Refusal{oci::ErrorCode::Unauthorized, "invalid username or password", "", {}});
        }
        audit(ex, "login", creds->first, repo, "", "ok");
        cache_->remember(authz, creds->first);
        next(Caller{creds->first, nullptr});
      });
  if (!queued) {
    throttle_.finish(client, auth::FailureThrottle::Outcome::NotRun);
    ++stats_.overloaded;
    return refused(Refusal{oci::ErrorCode::Unavailable, "too many logins waiting for a password check; retry later", "",
                           std::chrono::seconds(1)});
  }
}

}  // namespace wharf::api
