// One upstream registry: each fetch is a small state machine over HttpClient transfers —
// attempt (with a cached token if any) → on 401: token request, then one retry → on 3xx: follow up to
// five hops without credentials → deliver the final response to the caller.
#include "proxy/upstream.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "proxy/http_client.hpp"
#include "proxy/http_text.hpp"
#include "proxy/token_cache.hpp"
#include "proxy/www_authenticate.hpp"
#include "src/util/base64.hpp"
#include "src/util/number.hpp"

namespace wharf::proxy {

namespace {

constexpr int kMaxRedirects = 5;
constexpr size_t kMaxHeldBody = 64 * 1024;        // a 401 or 3xx body we may have to deliver or skip
constexpr size_t kMaxTokenBody = 1024 * 1024;
constexpr std::chrono::seconds kDefaultBackoff{60};
constexpr std::chrono::seconds kMaxBackoff{24 * 3600};

std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool is_authorization(std::string_view header) {
  constexpr std::string_view kName = "authorization:";
  if (header.size() < kName.size()) return false;
  for (size_t i = 0; i < kName.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != kName[i]) return false;
  return true;
}

std::vector<std::string> split_scopes(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const size_t sp = s.find(' ');
    if (sp != 0) out.emplace_back(s.substr(0, sp));
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return out;
}

std::vector<Challenge> challenges_of(const HttpHead& h) {
  std::vector<Challenge> out;
  for (const auto& [k, v] : h.headers)
    if (k == "www-authenticate")
      for (Challenge& c : parse_www_authenticate(v)) out.push_back(std::move(c));
  return out;
}

}  // namespace

std::string_view UpstreamResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

struct Upstream::Impl {
  // What to do with the response of the current attempt once its body has been read.
  enum class Next { Deliver, Authenticate, Redirect };

  struct Op {
    uint64_t id = 0;
    std::string method;
    std::string path;
    std::string scope_repo;
    std::vector<std::string> headers;
    FetchCallbacks cb;
    Credential cred;         // the client's forwarded account; empty: the configured one
    std::string url;         // of the current attempt
    int hops = 0;            // redirects followed
    bool retried = false;    // credentials were negotiated after a 401 (at most once)
    std::string auth;        // Authorization value for the upstream's own origin; empty: none
    std::string sent_token;  // Bearer token sent with the current attempt (spots a rejected cached token)
    uint64_t transfer = 0;   // current HttpClient transfer
    Next next = Next::Deliver;
    bool head_seen = false;
    int status = 0;
    HttpHead held;  // a 401 or 3xx head we act on instead of delivering
    std::string held_body;
    size_t skipped = 0;
    std::string token_body;
    int token_status = 0;
    std::chrono::steady_clock::time_point started;
    bool finished = false;  // done or cancelled: no more callbacks
  };
  using OpPtr = std::shared_ptr<Op>;

  Impl(HttpClient& c, TokenCache& t, const config::Upstream& u, UpstreamTimeouts to, Clock clk)
      : client(c), tokens(t), cfg(u), timeouts(to), clock(std::move(clk)), origin(url_origin(u.url).value_or("")) {
    base_url = cfg.url;
    while (base_url.ends_with('/')) base_url.pop_back();
  }

  ~Impl() {
    for (auto& [id, op] : ops) {
      op->finished = true;
      if (op->transfer != 0) client.cancel(op->transfer);
    }
  }

  // A forwarded client account replaces the configured one for its fetch.
  bool has_credentials(const Op& op) const { return !op.cred.empty() || !cfg.username.empty(); }
  const std::string& username(const Op& op) const { return op.cred.empty() ? cfg.username : op.cred.username; }
  std::string basic_credentials(const Op& op) const {
    return "Basic " + util::base64_encode(username(op) + ":" + (op.cred.empty() ? cfg.password : op.cred.password));
  }

  std::string default_scope(const Op& op) const {
    return op.scope_repo.empty() ? "registry:catalog:*" : "repository:" + op.scope_repo + ":pull";
  }

  HttpRequest request(std::string method, std::string url) const {
    HttpRequest r;
    r.method = std::move(method);
    r.url = std::move(url);
    r.ca_file = cfg.ca;
    r.connect_timeout = timeouts.connect;
    r.first_byte_timeout = timeouts.first_byte;
    r.stall_timeout = timeouts.stall;
    r.min_rate = timeouts.min_rate;
    r.min_rate_period = timeouts.min_rate_period;
    return r;
  }

  uint64_t fetch(std::string method, std::string path, std::string scope_repo, std::vector<std::string> headers,
                 FetchCallbacks cb, Credential cred) {
    auto op = std::make_shared<Op>();
    op->cred = std::move(cred);
    op->id = next_id++;
    op->method = std::move(method);
    op->path = path.starts_with('/') ? std::move(path) : "/" + path;
    op->scope_repo = std::move(scope_repo);
    std::erase_if(headers, is_authorization);  // credentials are ours to choose, per host
    op->headers = std::move(headers);
    op->cb = std::move(cb);
    op->url = base_url + op->path;
    if (basic && has_credentials(*op)) {
      op->auth = basic_credentials(*op);
    } else if (bearer) {
      if (auto token = tokens.get(TokenKey{cfg.name, bearer->first, bearer->second, {default_scope(*op)}, op->cred.id})) {
        op->auth = "Bearer " + *token;
        op->sent_token = *token;
      }
    }
    ops.emplace(op->id, op);
    send(op);
    return op->id;
  }

  std::function<void(int, double)> observer;

  void cancel(uint64_t id) {
    const auto it = ops.find(id);
    if (it == ops.end()) return;
    OpPtr op = it->second;
    ops.erase(it);
    op->finished = true;
    if (op->transfer != 0) client.cancel(op->transfer);
  }

  // Sends the current attempt; credentials only on the first hop and only to the upstream's own origin.
  void send(const OpPtr& op) {
    HttpRequest r = request(op->method, op->url);
    r.headers = op->headers;
    if (op->hops == 0 && !op->auth.empty() && url_origin(op->url) == origin) r.headers.push_back("Authorization: " + op->auth);
    else op->sent_token.clear();
    op->next = Next::Deliver;
    op->head_seen = false;
    op->status = 0;
    op->held = {};
    op->held_body.clear();
    op->skipped = 0;
    op->started = std::chrono::steady_clock::now();
    HttpCallbacks cb;
    cb.on_head = [this, op](const HttpHead& h) { on_head(op, h); };
    cb.on_data = [this, op](const char* d, size_t n) { return on_data(op, d, n); };
    cb.on_done = [this, op](bool ok, const std::string& e) { on_done(op, ok, e); };
    op->transfer = client.start(std::move(r), std::move(cb));
  }

  bool usable_challenge(const Op& op, const HttpHead& h) const {
    for (const Challenge& c : challenges_of(h)) {
      if (c.scheme == AuthScheme::Bearer && url_origin(std::string(c.param("realm")))) return true;
      if (c.scheme == AuthScheme::Basic && has_credentials(op)) return true;
    }
    return false;
  }

  void on_head(const OpPtr& op, const HttpHead& h) {
    if (op->finished) return;
    op->head_seen = true;
    op->status = h.status;
    record_rate_limit(h);
    if (observer)
      observer(h.status, std::chrono::duration<double>(std::chrono::steady_clock::now() - op->started).count());
    if (h.status == 429) start_backoff(h.header("retry-after"));
    if (h.status == 401 && !op->retried && op->hops == 0 && usable_challenge(*op, h)) {
      op->next = Next::Authenticate;
      op->held = h;
      return;
    }
    if (is_redirect(h.status) && !h.header("location").empty() && op->hops < kMaxRedirects) {
      op->next = Next::Redirect;
      op->held = h;
      return;
    }
    if (op->cb.on_head) op->cb.on_head(UpstreamResponse{h.status, h.headers, op->url});
  }

  bool on_data(const OpPtr& op, const char* d, size_t n) {
    if (op->finished) return false;
    switch (op->next) {
      case Next::Deliver:
        return (!op->cb.on_data || op->cb.on_data(d, n)) && !op->finished;
      case Next::Authenticate:
        if (op->held_body.size() + n > kMaxHeldBody) return false;
        op->held_body.append(d, n);
        return true;
      case Next::Redirect:
        op->skipped += n;
        return op->skipped <= kMaxHeldBody;
    }
    return false;
  }

  void on_done(const OpPtr& op, bool ok, const std::string& error) {
    if (op->finished) return;
    op->transfer = 0;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - op->started).count();
    spdlog::debug("upstream {}: {} {} -> {} in {:.3f}s", cfg.name, op->method, redact_url(op->url),
                  op->head_seen ? std::to_string(op->status) : "error: " + error, secs);
    record_health(op, ok, error);
    if (!ok && error != "aborted")  // "aborted": the caller stopped it and says why
      spdlog::warn("upstream {}: {} {} failed after {:.3f}s: {}", cfg.name, op->method, redact_url(op->url), secs, error);
    else if (op->head_seen && op->status >= 500)
      spdlog::warn("upstream {}: {} {} answered {}", cfg.name, op->method, redact_url(op->url), op->status);
    if (!op->head_seen || op->next == Next::Deliver) return finish(op, ok, error);
    if (op->next == Next::Authenticate) return authenticate(op);
    follow(op);
  }

  // Chooses credentials for the held 401 and retries once; delivers the 401 when nothing applies.
  void authenticate(const OpPtr& op) {
    const std::vector<Challenge> challenges = challenges_of(op->held);
    for (const Challenge& c : challenges) {
      if (c.scheme != AuthScheme::Bearer || !url_origin(std::string(c.param("realm")))) continue;
      std::vector<std::string> scopes = split_scopes(c.param("scope"));
      if (scopes.empty()) scopes.push_back(default_scope(*op));
      TokenKey key{cfg.name, std::string(c.param("realm")), std::string(c.param("service")), std::move(scopes),
                   op->cred.id};
      if (auto token = tokens.get(key)) {
        if (*token != op->sent_token) return retry_with_token(op, *token);
        tokens.erase(key);  // the upstream rejected it
      }
      return request_token(op, std::move(key));
    }
    for (const Challenge& c : challenges) {
      if (c.scheme != AuthScheme::Basic || !has_credentials(*op)) continue;
      basic = true;
      op->auth = basic_credentials(*op);
      op->retried = true;
      return send(op);
    }
    deliver_held(op);
  }

  void retry_with_token(const OpPtr& op, const std::string& token) {
    op->auth = "Bearer " + token;
    op->sent_token = token;
    op->retried = true;
    send(op);
  }

  void request_token(const OpPtr& op, TokenKey key) {
    std::string query;
    auto add = [&query](std::string_view name, std::string_view value) {
      if (!query.empty()) query += '&';
      query += name;
      query += '=';
      query += url_encode(value);
    };
    if (!key.service.empty()) add("service", key.service);
    for (const std::string& s : key.scopes) add("scope", s);
    // Credentials go to the realm the upstream named, and never in clear text to a TLS upstream's realm.
    const bool send_credentials =
        has_credentials(*op) && (key.realm.starts_with("https://") || !cfg.url.starts_with("https://"));
    if (send_credentials) add("account", username(*op));
    HttpRequest r = request("GET", key.realm + (key.realm.find('?') == std::string::npos ? '?' : '&') + query);
    r.headers.push_back("Accept: application/json");
    if (send_credentials) r.headers.push_back("Authorization: " + basic_credentials(*op));
    op->token_body.clear();
    op->token_status = 0;
    op->started = std::chrono::steady_clock::now();
    HttpCallbacks cb;
    cb.on_head = [op](const HttpHead& h) { op->token_status = h.status; };
    cb.on_data = [op](const char* d, size_t n) {
      if (op->token_body.size() + n > kMaxTokenBody) return false;
      op->token_body.append(d, n);
      return true;
    };
    cb.on_done = [this, op, key = std::move(key)](bool ok, const std::string& e) { on_token(op, key, ok, e); };
    op->transfer = client.start(std::move(r), std::move(cb));
  }

  void on_token(const OpPtr& op, const TokenKey& key, bool ok, const std::string& error) {
    if (op->finished) return;
    op->transfer = 0;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - op->started).count();
    spdlog::debug("upstream {}: token GET {} -> {} in {:.3f}s", cfg.name, redact_url(key.realm),
                  ok ? std::to_string(op->token_status) : "error: " + error, secs);
    if (!ok) {
      spdlog::warn("upstream {}: token request to {} failed: {}", cfg.name, redact_url(key.realm), error);
      return finish(op, false, "token request to " + redact_url(key.realm) + " failed: " + error);
    }
    const auto token = parse_token(op->token_body, op->token_status);
    if (!token) {
      spdlog::warn("upstream {}: token service {} answered {} without a usable token", cfg.name,
                   redact_url(key.realm), op->token_status);
      return deliver_held(op);
    }
    tokens.put(key, token->token, token->expires_in, token->issued_at);
    bearer = {key.realm, key.service};
    retry_with_token(op, token->token);
  }

  // The token in a token-service answer; nullopt if the answer is not a 2xx JSON object carrying one.
  static std::optional<TokenResponse> parse_token(const std::string& body, int status) {
    if (status / 100 != 2) return std::nullopt;
    return parse_token_response(body);
  }

  void follow(const OpPtr& op) {
    const auto next = resolve_url(op->url, std::string(op->held.header("location")));
    if (!next) return deliver_held(op);
    ++op->hops;
    op->url = *next;
    if (op->held.status == 303 && op->method != "HEAD") op->method = "GET";
    send(op);
  }

  // Delivers the held response (a 401 we could not get past, or an unusable redirect) as the final one.
  void deliver_held(const OpPtr& op) {
    if (op->cb.on_head) op->cb.on_head(UpstreamResponse{op->held.status, op->held.headers, op->url});
    if (op->finished) return;
    if (!op->held_body.empty() && op->cb.on_data && !op->cb.on_data(op->held_body.data(), op->held_body.size()))
      return op->finished ? void() : finish(op, false, "aborted");
    if (op->finished) return;
    finish(op, true, "");
  }

  void finish(const OpPtr& op, bool ok, const std::string& error) {
    ops.erase(op->id);
    op->finished = true;
    auto done = std::move(op->cb.on_done);
    if (done) done(ok, error);  // last: the caller may destroy this upstream
  }

  void record_health(const OpPtr& op, bool ok, const std::string& error) {
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock().time_since_epoch()).count();
    if (!ok && error != "aborted") {
      health.last_error = error;
      health.last_error_at = now;
      health.failing = true;
    } else if (op->head_seen && (op->status >= 500 || op->status == 429)) {
      health.last_error = std::string("HTTP ").append(std::to_string(op->status)).append(op->status == 429 ? " (rate limited)" : "");
      health.last_error_at = now;
      health.failing = true;
    } else if (op->head_seen) {
      health.last_ok = now;
      health.failing = false;
    }
  }

  void record_rate_limit(const HttpHead& h) {
    if (auto v = h.header("ratelimit-limit"); !v.empty()) rate.limit = v;
    if (auto v = h.header("ratelimit-remaining"); !v.empty()) rate.remaining = v;
    if (auto v = h.header("docker-ratelimit-source"); !v.empty()) rate.source = v;
  }

  // Retry-After is delay-seconds or an HTTP date; anything else (or nothing) means kDefaultBackoff, and
  // every wait is clamped to [0, kMaxBackoff] (a huge number is the longest wait, never an overflow).
  void start_backoff(std::string_view retry_after) {
    const auto now = clock();
    std::chrono::seconds wait = kDefaultBackoff;
    if (!retry_after.empty() && retry_after.find_first_not_of("0123456789") == std::string_view::npos) {
      const auto secs = util::parse_u64(retry_after);
      wait = secs ? util::clamp_seconds(static_cast<int64_t>(std::min<uint64_t>(*secs, kMaxBackoff.count())),
                                        kMaxBackoff.count())
                  : kMaxBackoff;
    } else if (!retry_after.empty()) {
      const time_t when = curl_getdate(std::string(retry_after).c_str(), nullptr);
      if (when >= 0) {
        const int64_t delta = static_cast<int64_t>(when) - static_cast<int64_t>(std::chrono::system_clock::to_time_t(now));
        wait = util::clamp_seconds(delta, kMaxBackoff.count());
      }
    }
    backoff_until = now + wait;
    spdlog::warn("upstream {}: rate limited (429), backing off for {} s", cfg.name, wait.count());
  }

  HttpClient& client;
  TokenCache& tokens;
  const config::Upstream& cfg;
  UpstreamTimeouts timeouts;
  Clock clock;
  std::string origin;    // scheme://host[:port] of cfg.url: the only host that gets Basic credentials
  std::string base_url;  // cfg.url without a trailing slash
  std::unordered_map<uint64_t, OpPtr> ops;
  uint64_t next_id = 1;
  RateLimitInfo rate;
  UpstreamHealth health;
  std::chrono::system_clock::time_point backoff_until{};
  std::optional<std::pair<std::string, std::string>> bearer;  // realm and service of the last token obtained
  bool basic = false;  // the upstream asked for Basic and we have credentials: send them right away
};

Upstream::Upstream(HttpClient& client, TokenCache& tokens, config::Upstream cfg, UpstreamTimeouts timeouts, Clock clock)
    : cfg_(std::move(cfg)) {
  impl_ = std::make_unique<Impl>(client, tokens, cfg_, timeouts, std::move(clock));
}

Upstream::~Upstream() = default;

uint64_t Upstream::fetch(std::string method, std::string path, std::string scope_repo, std::vector<std::string> headers,
                         FetchCallbacks cb, Credential cred) {
  return impl_->fetch(std::move(method), std::move(path), std::move(scope_repo), std::move(headers), std::move(cb),
                      std::move(cred));
}

void Upstream::cancel(uint64_t id) { impl_->cancel(id); }

void Upstream::set_observer(std::function<void(int status, double seconds)> observer) {
  impl_->observer = std::move(observer);
}

RateLimitInfo Upstream::rate_limit() const { return impl_->rate; }

UpstreamHealth Upstream::health() const { return impl_->health; }

bool Upstream::backing_off() const { return impl_->clock() < impl_->backoff_until; }

}  // namespace wharf::proxy
