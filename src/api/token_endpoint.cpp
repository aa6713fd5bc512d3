// GET /auth/token: wharf as its own Docker token server. Checks Basic credentials (htpasswd users and
// robot accounts; none for an anonymous token), grants per requested scope only what the caller may
// do, and answers {"token", "access_token", "expires_in", "issued_at"}.
#include <ctime>

#include <nlohmann/json.hpp>

#include "src/api/auth_gate.hpp"
#include "src/api/respond.hpp"
#include "src/util/rfc3339.hpp"

namespace wharf::api {
namespace {

// Every value of query parameter `key`, form-decoded ('+' is a space); nullopt on a malformed escape.
std::optional<std::vector<std::string>> all_params(std::string_view query, std::string_view key) {
  std::vector<std::string> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = part.find('=');
    if (part.substr(0, eq) != key) continue;
    std::string raw(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
    for (char& c : raw)
      if (c == '+') c = ' ';
    auto value = http::percent_decode(raw);
    if (!value) return std::nullopt;
    out.push_back(std::move(*value));
  }
  return out;
}

}  // namespace

void AuthGate::token_endpoint(const http::ExchangePtr& ex) {
  const auto& req = ex->req();
  if (!issuer_) return fail(ex, oci::ErrorCode::Unsupported, "this registry does not issue tokens", {}, 404);
  // OAuth2 POST is not offered: 404 makes clients (containerd, docker) fall back to GET.
  if (req.method != "GET" && req.method != "HEAD")
    return fail(ex, oci::ErrorCode::Unsupported, "use GET for tokens; OAuth2 POST is not supported", {}, 404);
  if (auto service = req.query_param("service"); service && *service != cfg_.token_service) {
    return fail(ex, oci::ErrorCode::Unauthorized,
                std::string("token requested for service \"") + service->substr(0, 128) + "\"; this registry is \"" +
                    cfg_.token_service + "\"");
  }
  auto scope_texts = all_params(req.query, "scope");
  if (!scope_texts) return fail(ex, oci::ErrorCode::Unauthorized, "invalid scope: malformed percent-encoding");
  std::vector<auth::Access> wanted;
  for (const std::string& text : *scope_texts) {
    auto parsed = auth::parse_scopes(text);
    if (!parsed) return fail(ex, oci::ErrorCode::Unauthorized, parsed.error());
    wanted.insert(wanted.end(), parsed->begin(), parsed->end());
  }
  const std::string_view authz = req.header("authorization");
  if (!authz.empty() && !http::iequals(authz.substr(0, 6), "basic ")) {
    auto res = error_response(oci::ErrorCode::Unauthorized, "the token endpoint takes Basic credentials");
    res.header("WWW-Authenticate", "Basic realm=\"" + cfg_.token_service + "\"");
    return ex->respond(std::move(res));
  }
  identify(ex, "", [this, ex, wanted = std::move(wanted)](Caller caller) {
    auto account = ex->req().query_param("account");
    if (account && !account->empty() && caller.signed_in() && *account != caller.user) {
      return fail(ex, oci::ErrorCode::Unauthorized, "account does not match the credentials");
    }
    ex->req().user = caller.user;  // for the access log
    const int64_t now = int64_t(std::time(nullptr));
    auto issued = issuer_->issue(caller.user, wanted, [&](std::string_view repo) { return allowed(caller, repo); }, now);
    if (!issued) return fail(ex, oci::ErrorCode::Unavailable, "cannot issue a token: " + issued.error());
    std::string granted;
    for (const auto& a : issued->granted) {
      granted += (granted.empty() ? "" : " ") + a.type + ":" + a.name + ":";
      for (size_t i = 0; i < a.actions.size(); ++i) granted += (i ? "," : "") + a.actions[i];
    }
    audit(ex, "token", caller.user, "", "", granted.empty() ? std::string("granted nothing") : "granted " + granted);
    nlohmann::json body{{"token", issued->token},
                        {"access_token", issued->token},
                        {"expires_in", issued->expires_in},
                        {"issued_at", util::rfc3339_utc(issued->issued_at)}};
    auto res = json_response(200, body.dump());
    res.header("Cache-Control", "no-store");
    ex->respond(std::move(res));
  }, [this, ex](const Refusal& r) { answer_refusal(ex, Scope{}, r); });
}

}  // namespace wharf::api
