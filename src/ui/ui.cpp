// The page's router: assets under http.ui.path, the API under /api/, and who is calling.
#include "src/ui/ui.hpp"

#include <ctime>

#include "src/api/index_call.hpp"
#include "src/api/mirror.hpp"
#include "src/auth/actions.hpp"
#include "src/ui/assets.hpp"
#include "src/ui/cookie.hpp"
#include "src/ui/repo_query.hpp"
#include "src/ui/reply.hpp"

namespace wharf::ui {
namespace {

constexpr std::string_view kApi = "/api/";
constexpr std::string_view kCookie = "wharf_session";
constexpr size_t kMaxRemembered = 256;  // listings remembered by matches()

int64_t unix_now() { return int64_t(std::time(nullptr)); }

// The host[:port] part of an Origin ("https://host:port"); empty if it has none.
std::string_view origin_host(std::string_view origin) {
  const size_t scheme = origin.find("://");
  if (scheme == std::string_view::npos) return {};
  std::string_view rest = origin.substr(scheme + 3);
  return rest.substr(0, rest.find('/'));
}

}  // namespace

Ui::Ui(api::Context& ctx, api::AuthGate& auth, Traffic& traffic, Activity& activity, UiSources sources)
    : ctx_(ctx), auth_(auth), traffic_(traffic), activity_(activity), sources_(std::move(sources)),
      process_csrf_(random_token()) {}

void Ui::observe(const std::string& method, int status, const std::string& cache_status) {
  if (status < 400 && ((method != "GET" && method != "HEAD") || cache_status == "MISS")) {
    names_stale_ = true;
    ++names_writes_;
  }
}

void Ui::with_names(const http::ExchangePtr& ex, std::function<void()> then) {
  const auto now = std::chrono::steady_clock::now();
  if (!names_stale_ && now - names_read_ <= kNamesMaxAge) return then();
  auto read = [](const cache::Index& index) {
    auto txn = index.read();
    bool more = false;
    return index.repos(txn, "", 0, &more);
  };
  api::run_index(ctx_.index, ctx_.pool, read,
                 [this, ex, then, now, writes = names_writes_](std::expected<std::vector<std::string>, std::string> names) {
                   if (!ex->alive() || ex->responded()) return;
                   if (!names) return send_error(ex, oci::ErrorCode::Unavailable, names.error(), 503);
                   names_ = std::move(*names);
                   matches_.clear();
                   names_read_ = now;
                   names_stale_ = writes != names_writes_;  // a write landed while reading: read again next time
                   then();
                 });
}

const std::vector<uint32_t>& Ui::matches(const Who& who, const RepoQuery& query) {
  const std::vector<std::string>& names = repo_names();
  auto is_mirror = [this](std::string_view n) { return upstream_of(n).has_value(); };
  auto may_pull = [this, &who](std::string_view n) { return visible(who, n); };
  if (who.caller.token) return uncached_ = filter_repos(names, query, is_mirror, may_pull);
  std::string key = who.caller.user;
  key.append(1, '\0').append(query.q).append(1, '\0').append(1, char('0' + int(query.kind)));
  auto it = matches_.find(key);
  if (it != matches_.end()) return it->second;
  if (matches_.size() >= kMaxRemembered) matches_.clear();
  return matches_[key] = filter_repos(names, query, is_mirror, may_pull);
}

bool Ui::owns(std::string_view path) const {
  if (path.starts_with(kApi) || path == "/api") return true;
  const std::string& base = ctx_.cfg.ui_path;
  return path == base || path.starts_with(base + "assets/");
}

void Ui::handle(const http::ExchangePtr& ex) {
  const std::string& path = ex->req().path;
  if (path.starts_with(kApi)) {
    ex->req().route = "api";
    return api(ex, std::string_view(path).substr(kApi.size()));
  }
  ex->req().route = "ui";
  const std::string& base = ctx_.cfg.ui_path;
  if (path == base) return serve_asset(ex, "index.html");
  if (path.starts_with(base + "assets/")) {
    const std::string_view name = std::string_view(path).substr(base.size() + 7);
    if (name != "index.html") return serve_asset(ex, name);
  }
  send_error(ex, oci::ErrorCode::Unsupported, "no such page", 404);
}

void Ui::serve_asset(const http::ExchangePtr& ex, std::string_view name) {
  const std::string& m = ex->req().method;
  if (m != "GET" && m != "HEAD") return send_error(ex, oci::ErrorCode::Unsupported, "method " + m + " is not allowed here", 405);
  const Asset* a = find_asset(name);
  if (!a) return send_error(ex, oci::ErrorCode::Unsupported, "no such page", 404);
  const bool fresh = ex->req().header("if-none-match") == a->etag;
  http::Response r(fresh ? 304 : 200);
  r.header("ETag", std::string(a->etag));
  r.header("Cache-Control", "no-cache");
  r.header("Content-Security-Policy",
           "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'");
  r.header("X-Content-Type-Options", "nosniff");
  r.header("Referrer-Policy", "same-origin");
  if (!fresh) {
    r.header("Content-Type", std::string(a->content_type));
    if (m == "HEAD") r.content_length = a->body.size();
    else r.body = std::string(a->body);
  }
  ex->respond(std::move(r));
}

void Ui::api(const http::ExchangePtr& ex, std::string_view endpoint) {
  const std::string& m = ex->req().method;
  const bool get = m == "GET" || m == "HEAD";
  struct Route {
    std::string_view name;
    bool post;  // else GET
  };
  static constexpr Route kRoutes[] = {{"session", false}, {"login", true},       {"logout", true},
                                      {"overview", false}, {"repositories", false}, {"repository", false},
                                      {"activity", false}, {"delete-tag", true},  {"evict", true}};
  const Route* route = nullptr;
  for (const Route& r : kRoutes)
    if (r.name == endpoint) route = &r;
  if (!route) return send_error(ex, oci::ErrorCode::Unsupported, "no such API endpoint", 404);
  if (route->post ? m != "POST" : !get) {
    return send_error(ex, oci::ErrorCode::Unsupported,
                      std::string("use ").append(route->post ? "POST" : "GET") + " for /api/" + std::string(endpoint), 405);
  }
  if (endpoint == "session") return session(ex);
  if (endpoint == "login") return login(ex);
  resolve(ex, [this, ex, endpoint](const Who& who) {
    if (endpoint == "logout") return logout(ex, who);
    if (endpoint == "overview") return overview(ex);
    if (endpoint == "repositories") return repositories(ex, who);
    if (endpoint == "repository") return repository(ex, who);
    if (endpoint == "activity") return activity(ex, who);
    if (endpoint == "delete-tag") return delete_tag(ex, who);
    evict(ex, who);
  });
}

const Session* Ui::cookie_session(const http::Request& req) {
  for (const auto& [name, value] : req.headers) {
    if (!http::iequals(name, "cookie")) continue;
    if (auto id = cookie_value(value, kCookie)) return sessions_.find(*id, unix_now());
  }
  return nullptr;
}

bool Ui::csrf_ok(const http::Request& req, const std::string& csrf) const {
  if (!tokens_equal(req.header("x-csrf-token"), csrf)) return false;
  if (!req.has_header("origin")) return true;
  const std::string_view host = origin_host(req.header("origin"));
  return !host.empty() && http::iequals(host, req.header("host"));
}

void Ui::resolve(const http::ExchangePtr& ex, std::function<void(const Who&)> next) {
  const bool post = ex->req().method == "POST";
  auto finish = [this, ex, post, next](Who who) {
    ex->req().user = who.caller.user;
    if (post && who.ambient && !csrf_ok(ex->req(), who.csrf)) {
      auth_.audit(ex, "denied", who.caller.user, "", ex->req().method + " " + ex->req().path, "CSRF check failed");
      return send_error(ex, oci::ErrorCode::Denied, "CSRF check failed", 403);
    }
    next(who);
  };
  if (!ex->req().header("authorization").empty() && auth_.enabled()) {
    return auth_.authenticate(
        ex, [finish](api::Caller caller) { finish(Who{std::move(caller), false, {}}); },
        [ex](const api::Refusal& r) { refuse(ex, r); });
  }
  if (const Session* s = cookie_session(ex->req())) return finish(Who{api::Caller{s->user, nullptr}, true, s->csrf});
  if (!auth_.enabled()) return finish(Who{api::Caller{}, !ex->req().has_header("authorization"), process_csrf_});
  send_error(ex, oci::ErrorCode::Unauthorized, "sign in first (POST /api/login) or send an Authorization header");
}

void Ui::refuse(const http::ExchangePtr& ex, const api::Refusal& r) {
  http::Response res(oci::error_info(r.code).status);
  res.body = nlohmann::json{{"error", r.why}, {"code", std::string(oci::error_info(r.code).wire)}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  res.header("Content-Type", "application/json; charset=utf-8");
  res.header("Cache-Control", "no-store");
  if (r.wait.count() > 0) res.header("Retry-After", std::to_string(r.wait.count()));
  ex->respond(std::move(res));
}

bool Ui::visible(const Who& who, std::string_view repo) {
  if ((auth_.allowed(who.caller, repo) & auth::kPull) == 0) return false;
  // proxy.forwardcredentials: a repository cached for one client's upstream account stays hidden here.
  if (ctx_.cfg.forward_credentials && ctx_.mirror && upstream_of(repo)) return ctx_.mirror->shared(std::string(repo));
  return true;
}

bool Ui::may_delete(const api::Caller& caller, std::string_view repo) {
  if (!ctx_.cfg.delete_enabled) return false;
  if (!auth_.rules().configured() && !caller.token && !caller.user.starts_with(auth::kRobotPrefix)) return true;
  return (auth_.allowed(caller, repo) & auth::kDelete) != 0;
}

bool Ui::may_delete_somewhere(const api::Caller& caller) {
  if (!auth_.rules().configured() && !caller.token && !caller.user.starts_with(auth::kRobotPrefix)) return true;
  for (const std::string& name : repo_names())
    if (auth_.allowed(caller, name) & auth::kDelete) return true;
  return false;
}

std::optional<std::string> Ui::upstream_of(std::string_view repo) const {
  const std::string_view first = repo.substr(0, repo.find('/'));
  if (first.size() == repo.size()) return std::nullopt;
  for (const auto& u : ctx_.cfg.upstreams)
    if (u.name == first) return u.name;
  return std::nullopt;
}

std::string Ui::registry_host(const http::Request& req) const {
  std::string_view host = req.header("host");
  for (char c : host)
    if (c <= ' ' || c == '"' || c == '\\' || c == '<' || c == '>' || c == 0x7f) host = {};
  if (!host.empty()) return std::string(host);
  std::string_view external = ctx_.cfg.http_host;
  if (const size_t at = external.find("://"); at != std::string_view::npos) external = external.substr(at + 3);
  external = external.substr(0, external.find('/'));
  if (!external.empty()) return std::string(external);
  return ctx_.cfg.http_addr;
}

}  // namespace wharf::ui
