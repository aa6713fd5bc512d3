// /api/session, /api/login and /api/logout: the page's sign-in.
#include <ctime>

#include "src/ui/cookie.hpp"
#include "src/ui/reply.hpp"
#include "src/ui/ui.hpp"
#include "src/util/base64.hpp"

namespace wharf::ui {
namespace {

constexpr size_t kMaxLoginBody = 8 * 1024;

std::string session_cookie(const std::string& value, bool tls, bool clear) {
  std::string c = std::string("wharf_session=").append(value) + "; Path=/; HttpOnly; SameSite=Strict";
  if (clear) c += "; Max-Age=0";
  if (tls) c += "; Secure";
  return c;
}

nlohmann::json nullable(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); }

}  // namespace

void Ui::answer_session(const http::ExchangePtr& ex, const std::optional<api::Caller>& caller, const std::string& csrf) {
  const bool authenticated = !auth_.enabled() || (caller && caller->signed_in());
  const bool can_delete = ctx_.cfg.delete_enabled && authenticated && may_delete_somewhere(caller.value_or(api::Caller{}));
  send_json(ex, 200,
            nlohmann::json{{"auth_enabled", auth_.enabled()},
                           {"authenticated", authenticated},
                           {"user", caller && authenticated ? nullable(caller->user) : nlohmann::json(nullptr)},
                           {"csrf", authenticated ? nullable(csrf) : nlohmann::json(nullptr)},
                           {"can_delete", can_delete},
                           {"delete_enabled", ctx_.cfg.delete_enabled},
                           {"ui_path", ctx_.cfg.ui_path},
                           {"registry_host", registry_host(ex->req())}});
}

void Ui::session(const http::ExchangePtr& ex) {
  auto answer = [this, ex](const std::optional<api::Caller>& caller, const std::string& csrf) {
    const bool authenticated = !auth_.enabled() || (caller && caller->signed_in());
    if (ctx_.cfg.delete_enabled && authenticated)  // may_delete_somewhere reads the names
      return with_names(ex, [this, ex, caller, csrf] { answer_session(ex, caller, csrf); });
    answer_session(ex, caller, csrf);
  };
  if (const Session* s = cookie_session(ex->req())) return answer(api::Caller{s->user, nullptr}, s->csrf);
  if (!auth_.enabled()) return answer(api::Caller{}, process_csrf_);
  if (ex->req().header("authorization").empty()) return answer(std::nullopt, "");
  // A script with a header: no CSRF token needed (and none given).
  auth_.authenticate(
      ex, [answer](api::Caller c) { answer(c, ""); }, [answer](const api::Refusal&) { answer(std::nullopt, ""); });
}

void Ui::login(const http::ExchangePtr& ex) {
  read_json_body(ex, kMaxLoginBody, [this, ex](nlohmann::json body) {
    auto user = string_member(body, "username");
    auto password = string_member(body, "password");
    if (!user || !password) return send_error(ex, oci::ErrorCode::Unsupported, "username and password (strings) are required", 400);
    if (!auth_.enabled()) return send_json(ex, 200, nlohmann::json{{"user", nullptr}, {"csrf", process_csrf_}});
    if (user->empty() || user->find(':') != std::string::npos || user->find('\0') != std::string::npos)
      return send_error(ex, oci::ErrorCode::Unauthorized, "invalid username or password");
    // Checked exactly like a Basic header on /v2/ (htpasswd or robot account, throttled per address).
    auto& headers = ex->req().headers;
    std::erase_if(headers, [](const auto& h) { return http::iequals(h.first, "authorization"); });
    headers.emplace_back("Authorization", "Basic " + util::base64_encode(*user + ":" + *password));
    auth_.authenticate(
        ex,
        [this, ex](api::Caller caller) {
          ex->req().user = caller.user;
          if (!caller.signed_in()) return send_error(ex, oci::ErrorCode::Unauthorized, "invalid username or password");
          const std::string id = sessions_.create(caller.user, int64_t(std::time(nullptr)));
          const Session* s = sessions_.find(id, int64_t(std::time(nullptr)));
          http::Response r(200);
          r.body = nlohmann::json{{"user", caller.user}, {"csrf", s->csrf}}.dump(-1, ' ', false,
                                                                                nlohmann::json::error_handler_t::replace);
          r.header("Content-Type", "application/json; charset=utf-8");
          r.header("Cache-Control", "no-store");
          r.header("Set-Cookie", session_cookie(id, !ctx_.cfg.tls_certificate.empty(), false));
          ex->respond(std::move(r));
        },
        [ex](const api::Refusal& r) { refuse(ex, r); });
  });
}

void Ui::logout(const http::ExchangePtr& ex, const Who&) {
  const http::Request& req = ex->req();
  for (const auto& [name, value] : req.headers) {
    if (!http::iequals(name, "cookie")) continue;
    if (auto id = cookie_value(value, "wharf_session")) sessions_.remove(*id);
  }
  http::Response r(204);
  r.header("Set-Cookie", session_cookie("", !ctx_.cfg.tls_certificate.empty(), true));
  r.header("Cache-Control", "no-store");
  ex->respond(std::move(r));
}

}  // namespace wharf::ui
