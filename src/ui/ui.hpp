#pragma once
// The web page and its JSON API (docs/api.md): the embedded assets at http.ui.path, and /api/ with
// sign-in sessions (cookie + CSRF token) or the same Authorization header as /v2/. Loop thread only;
// work that reads files or writes the index runs on the work pool.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/api/auth_gate.hpp"
#include "src/api/context.hpp"
#include "src/http/server.hpp"
#include "src/ui/activity.hpp"
#include "src/ui/repo_query.hpp"
#include "src/ui/sessions.hpp"
#include "src/ui/traffic.hpp"

namespace wharf::ui {

// Figures the App measures in the background (the store walk) and owns.
struct StoreFigures {
  uint64_t bytes = 0;  // bytes of blobs and manifests stored
  uint64_t blobs = 0;  // blob records in the index
};

// What the page reads that the App owns.
struct UiSources {
  std::function<StoreFigures()> store;  // the last measurement
  int64_t started = 0;                  // unix seconds when serving began
};

// Who is calling an /api/ endpoint, once established.
struct Who {
  api::Caller caller;
  bool ambient = false;          // authenticated by the session cookie (or nothing, with auth off): CSRF applies
  std::string csrf;              // the token that caller must send with non-GET requests (ambient only)
};

class Ui {
 public:
  // Builds the page's handler; `traffic` and `activity` are fed by the App.
  Ui(api::Context& ctx, api::AuthGate& auth, Traffic& traffic, Activity& activity, UiSources sources);
  // Whether `path` is the page's (ui.path, its assets) or the API's (/api/...).
  bool owns(std::string_view path) const;
  // Answers one request for a path owns() accepted.
  void handle(const http::ExchangePtr& ex);
  // Sees every finished request (the access logger): a write or a mirror miss may have added or
  // removed repositories, so the cached list of names is read again at the next listing.
  void observe(const std::string& method, int status, const std::string& cache_status);
  // Signed-in sessions held now.
  size_t sessions() const { return sessions_.size(); }

 private:
  void serve_asset(const http::ExchangePtr& ex, std::string_view name);
  // The /api/session answer for `caller` (nullopt: not established) with its CSRF token.
  void answer_session(const http::ExchangePtr& ex, const std::optional<api::Caller>& caller, const std::string& csrf);
  void api(const http::ExchangePtr& ex, std::string_view endpoint);
  // The sorted repository names: the copy read from the index by the last with_names().
  const std::vector<std::string>& repo_names() const { return names_; }
  // Calls `then` on the loop once repo_names() was read from the index at most kNamesMaxAge ago and
  // after the last write (the listing then only filters; reading 10,000 names costs more than the
  // rest). The read runs where the index may block; if it fails, answers 503 on `ex` instead; nothing
  // is called if `ex`'s client went away meanwhile.
  void with_names(const http::ExchangePtr& ex, std::function<void()> then);
  static constexpr std::chrono::milliseconds kNamesMaxAge{1000};
  // The positions in repo_names() a listing matches for `who` (remembered per user, q and kind until the
  // names are read again; not for bearer tokens, whose claims decide).
  const std::vector<uint32_t>& matches(const Who& who, const RepoQuery& query);
  // Establishes the caller (cookie, Authorization header, or anonymous with auth off) and checks
  // CSRF for non-GET ambient requests; answers 401/403/429/503 itself.
  void resolve(const http::ExchangePtr& ex, std::function<void(const Who&)> next);
  // The session of the request's cookie (not expired), or nullptr.
  const Session* cookie_session(const http::Request& req);
  // Whether a non-GET ambient request carries the right CSRF token and a matching Origin.
  bool csrf_ok(const http::Request& req, const std::string& csrf) const;
  // Answers a refusal of the gate as {"error","code"} (with Retry-After for 429/503).
  static void refuse(const http::ExchangePtr& ex, const api::Refusal& r);
  // Whether `caller` may delete in some repository (for the page's delete buttons): without access
  // rules every signed-in user may; otherwise the rules (robot allow lists, token claims) are asked
  // about each repository until one allows it.
  bool may_delete_somewhere(const api::Caller& caller);
  // Whether `caller` may delete in `repo` (storage.delete.enabled and the delete action there).
  bool may_delete(const api::Caller& caller, std::string_view repo);
  // Whether `who` may pull `repo`.
  bool visible(const Who& who, std::string_view repo);
  // Whether `repo` is a mirrored (cached) repository: its first component names an upstream.
  std::optional<std::string> upstream_of(std::string_view repo) const;
  // "host:port" as the client reached wharf (Host header, else http.host, else http.addr).
  std::string registry_host(const http::Request& req) const;

  // Endpoints (api_session.cpp, api_overview.cpp, api_repos.cpp, api_actions.cpp).
  void session(const http::ExchangePtr& ex);
  void login(const http::ExchangePtr& ex);
  void logout(const http::ExchangePtr& ex, const Who& who);
  void overview(const http::ExchangePtr& ex);
  void activity(const http::ExchangePtr& ex, const Who& who);
  void repositories(const http::ExchangePtr& ex, const Who& who);
  void repository(const http::ExchangePtr& ex, const Who& who);
  void delete_tag(const http::ExchangePtr& ex, const Who& who);
  void evict(const http::ExchangePtr& ex, const Who& who);
  // Reads the JSON body {"name":..,"tag":..} and checks delete permission, then calls `next(name, tag)`.
  void tag_action(const http::ExchangePtr& ex, const Who& who, bool evict,
                  std::function<void(std::string, std::string)> next);

  api::Context& ctx_;
  api::AuthGate& auth_;
  Traffic& traffic_;
  Activity& activity_;
  UiSources sources_;
  SessionStore sessions_;
  std::string process_csrf_;  // the CSRF token with auth off
  std::vector<std::string> names_;  // repo_names()' copy
  std::chrono::steady_clock::time_point names_read_{};
  bool names_stale_ = true;
  uint64_t names_writes_ = 0;  // writes observed; a read started before one is stale when it lands
  std::unordered_map<std::string, std::vector<uint32_t>> matches_;  // user \0 q \0 kind → positions
  std::vector<uint32_t> uncached_;                                  // matches() for token callers
};

}  // namespace wharf::ui
