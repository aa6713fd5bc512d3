// Access rules, robot accounts, scopes and token issuing: the decisions behind 401/403.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "src/api/route.hpp"
#include "src/auth/audit.hpp"
#include "src/auth/robots.hpp"
#include "src/auth/rules.hpp"
#include "src/auth/token_cache.hpp"
#include "src/auth/token_issuer.hpp"
#include "src/config/config.hpp"

using namespace wharf;
using namespace wharf::auth;

namespace {

config::Config load(const std::string& yaml) {
  std::vector<std::string> warnings;
  auto cfg = config::load_from_string(yaml, {}, warnings);
  REQUIRE_MESSAGE(cfg, (cfg ? "" : cfg.error().str()));
  return *cfg;
}

std::string config_error(const std::string& yaml) {
  std::vector<std::string> warnings;
  auto cfg = config::load_from_string(yaml, {}, warnings);
  return cfg ? std::string() : cfg.error().str();
}

constexpr const char* kTeams = R"(version: 0.1
auth:
  groups:
    team-a: [alice, bob]
  access:
    - {match: "team-a/*", groups: [team-a], actions: [pull, push]}
    - {match: "team-a/*", users: [alice], actions: [delete]}
    - {match: "public/*", users: ["*"], actions: [pull, push], anonymous: true}
    - {match: "library/*", anonymous: true, actions: [pull]}
)";

}  // namespace

TEST_CASE("glob_match") {
  CHECK(glob_match("team-a/*", "team-a/app"));
  CHECK(glob_match("team-a/*", "team-a/x/y"));
  CHECK(!glob_match("team-a/*", "team-ab/app"));
  CHECK(!glob_match("team-a/*", "team-a"));
  CHECK(glob_match("*", "anything/at/all"));
  CHECK(glob_match("a?c", "abc"));
  CHECK(!glob_match("a?c", "ac"));
  CHECK(glob_match("*/*-dev", "x/app-dev"));
  CHECK(!glob_match(std::string(40, '*') + "b", std::string(200, 'a')));  // no blow-up
}

TEST_CASE("Rules::allowed") {
  const auto cfg = load(kTeams);
  const Rules rules(cfg, Rules::Default::AuthenticatedOnly);
  SUBCASE("groups and users") {
    CHECK(rules.allowed("alice", "team-a/app") == (kPull | kPush | kDelete));
    CHECK(rules.allowed("bob", "team-a/app") == (kPull | kPush));
    CHECK(rules.allowed("carol", "team-a/app") == 0);
    CHECK(rules.allowed("bob", "team-b/app") == 0);
  }
  SUBCASE("anonymous rules give pull only; any user gets the rest") {
    CHECK(rules.allowed("", "library/alpine") == kPull);
    CHECK(rules.allowed("", "public/x") == kPull);
    CHECK(rules.allowed("carol", "public/x") == (kPull | kPush));
    CHECK(rules.allowed("carol", "library/alpine") == kPull);
    CHECK(rules.allowed("", "team-a/app") == 0);
    CHECK(rules.anonymous_can_pull_somewhere());
  }
  SUBCASE("no rules: everything for signed-in users; anonymous only without authentication") {
    const auto open = load("version: 0.1\n");
    CHECK(Rules(open, Rules::Default::AuthenticatedOnly).allowed("x", "a/b") == kAll);
    CHECK(Rules(open, Rules::Default::AuthenticatedOnly).allowed("", "a/b") == 0);
    CHECK(Rules(open, Rules::Default::AllowAll).allowed("", "a/b") == kAll);
  }
}

TEST_CASE("access configuration errors name the key") {
  CHECK(config_error("version: 0.1\nauth:\n  access:\n    - {match: x, actions: [pull]}\n").find("auth.access[0]") == 0);
  CHECK(config_error("version: 0.1\nauth:\n  access:\n    - {match: x, users: [a], actions: [fly]}\n").find("auth.access[0].actions") == 0);
  CHECK(config_error("version: 0.1\nauth:\n  access:\n    - {match: X/Y, users: [a], actions: [pull]}\n").find("auth.access[0].match") == 0);
  CHECK(config_error("version: 0.1\nauth:\n  access:\n    - {match: x, groups: [nope], actions: [pull]}\n").find("auth.access[0].groups") == 0);
  CHECK(config_error("version: 0.1\nauth:\n  token:\n    service: s\n    issuer: i\n").find("auth.token.signingkeys") == 0);
  CHECK(config_error("version: 0.1\nauth:\n  token:\n    realm: https://a/token\n    service: s\n    issuer: i\n").find("auth.token.rootcertbundle") == 0);
  CHECK(config_error("version: 0.1\nauth:\n  token:\n    realm: https://a/token\n    issuer: i\n    rootcertbundle: /x\n").find("auth.token.service") == 0);
  const auto cfg = load("version: 0.1\nauth:\n  token:\n    realm: https://a/token\n    service: s\n    issuer: i\n    rootcertbundle: /x\n");
  CHECK(cfg.token_enabled);
  CHECK(cfg.token_realm == "https://a/token");
}

TEST_CASE("request_scope") {
  using api::RouteKind;
  auto scope = [](RouteKind k, const char* method) { return api::request_scope(api::Route{k, "a/b", "x"}, method, ""); };
  CHECK(scope(RouteKind::Manifest, "GET").actions == kPull);
  CHECK(scope(RouteKind::Manifest, "HEAD").actions == kPull);
  CHECK(scope(RouteKind::Manifest, "PUT").actions == kPush);
  CHECK(scope(RouteKind::Manifest, "DELETE").actions == kDelete);
  CHECK(scope(RouteKind::Blob, "DELETE").actions == kDelete);
  CHECK(scope(RouteKind::Upload, "GET").actions == kPush);
  CHECK(scope(RouteKind::Tags, "GET").actions == kPull);
  CHECK(scope(RouteKind::Base, "GET").actions == 0);
  CHECK(api::request_scope(api::Route{RouteKind::UploadStart, "a/b", ""}, "POST", "c/d").mount_from == "c/d");
}

TEST_CASE("robots") {
  SUBCASE("secrets are stored only as hashes") {
    const std::string secret = new_robot_secret();
    CHECK(secret.size() >= 40);
    CHECK(new_robot_secret() != secret);
    Robot r{"ci", hash_robot_secret(secret), {*parse_grant("team-a/*:pull,push")}, 1, 0};
    CHECK(r.secret_hash.starts_with("sha256:"));
    CHECK(r.secret_hash.find(secret) == std::string::npos);
    CHECK(serialize_robots({r}).find(secret) == std::string::npos);
    CHECK(robot_secret_matches(r, secret));
    CHECK(!robot_secret_matches(r, secret + "x"));
    CHECK(robot_allowed(r, "team-a/app", 100) == (kPull | kPush));
    CHECK(robot_allowed(r, "team-b/app", 100) == 0);
    r.expires = 50;
    CHECK(robot_allowed(r, "team-a/app", 100) == 0);
  }
  SUBCASE("grants") {
    CHECK(!parse_grant("team-a/*"));
    CHECK(!parse_grant("team-a/*:fly"));
    CHECK(!parse_grant("TEAM:pull"));
    CHECK(format_grant(*parse_grant("x/*:push,pull")) == "x/*:pull,push");
  }
  SUBCASE("file round trip, atomic rewrite, live view sees revocation") {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wharf-robots-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    const std::filesystem::path file = std::filesystem::path(tmpl) / "robots.json";
    RobotsFile live(file);
    CHECK(live.find("ci") == nullptr);  // no file: no robots, no problem
    CHECK(!live.problem());
    Robot r{"ci", hash_robot_secret("s"), {*parse_grant("a/*:pull")}, 1, 0};
    REQUIRE(write_robots(file, {r}));
    REQUIRE(live.find("ci") != nullptr);
    CHECK(read_robots(file)->size() == 1);
    REQUIRE(write_robots(file, {}));
    CHECK(live.find("ci") == nullptr);
    { std::ofstream(file) << "{broken"; }
    CHECK(live.find("ci") == nullptr);
    CHECK(live.problem());
    std::filesystem::remove_all(tmpl);
  }
}

TEST_CASE("parse_scopes") {
  auto s = parse_scopes("repository:team-a/app:pull,push registry:catalog:*");
  REQUIRE(s);
  REQUIRE(s->size() == 2);
  CHECK((*s)[0] == Access{"repository", "team-a/app", {"pull", "push"}});
  CHECK((*s)[1] == Access{"registry", "catalog", {"*"}});
  CHECK(!parse_scopes("repository:team-a/../x:pull"));
  CHECK(!parse_scopes("repository:pull"));
  CHECK(!parse_scopes("repository:UPPER:pull"));
}

TEST_CASE("TokenIssuer grants only what is allowed, and its tokens verify") {
  EVP_PKEY* k = EVP_EC_gen("P-256");
  REQUIRE(k != nullptr);
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  auto key = parse_private_key(std::string_view(data, size_t(n)));
  BIO_free(b);
  EVP_PKEY_free(k);
  REQUIRE(key);
  const TokenIssuer issuer({*key}, "wharf", "registry", std::chrono::seconds(300));
  const auto wanted = *parse_scopes("repository:team-a/app:pull,push,delete repository:team-b/app:pull,push");
  const int64_t now = 1'800'000'000;
  auto t = issuer.issue("bob", wanted, [](std::string_view repo) -> uint8_t {
    return repo.starts_with("team-a/") ? uint8_t(kPull | kPush) : uint8_t(0);
  }, now);
  REQUIRE(t);
  REQUIRE(t->granted.size() == 1);
  CHECK(t->granted[0] == Access{"repository", "team-a/app", {"pull", "push"}});
  auto claims = verify_jwt(t->token, issuer.keys(), VerifyOptions{"wharf", "registry", now + 10, 60});
  REQUIRE_MESSAGE(claims, claims.error());
  CHECK(claims->subject == "bob");
  CHECK(claims->expires == now + 300);
  CHECK(!verify_jwt(t->token, issuer.keys(), VerifyOptions{"wharf", "registry", now + 400, 60}));

  TokenCache cache;
  auto shared = std::make_shared<const Claims>(*claims);
  cache.remember(t->token, shared, claims->expires, now);
  CHECK(cache.lookup(t->token, now + 1) == shared);
  CHECK(cache.lookup(t->token, claims->expires) == nullptr);
  CHECK(cache.lookup("other", now) == nullptr);
}

TEST_CASE("Rules::may_fetch") {
  const auto cfg = load(R"(version: 0.1
proxy:
  remoteurl: https://registry-1.docker.io
  upstreams: [{name: ghcr.io, url: "https://ghcr.io"}]
auth:
  groups: {ci: [robot$build]}
  fetch:
    - {upstream: docker.io, users: [alice], groups: [ci]}
)");
  const Rules rules(cfg, Rules::Default::AuthenticatedOnly);
  CHECK(rules.may_fetch("alice", "docker.io"));
  CHECK(rules.may_fetch("robot$build", "docker.io"));
  CHECK(!rules.may_fetch("bob", "docker.io"));
  CHECK(!rules.may_fetch("", "docker.io"));
  CHECK(rules.may_fetch("bob", "ghcr.io"));  // not listed: unrestricted
  CHECK(config_error("version: 0.1\nauth:\n  fetch:\n    - {upstream: nowhere.io, users: [a]}\n").find("auth.fetch[0].upstream") == 0);
}

TEST_CASE("AuditLog") {
  std::string tmpl = (std::filesystem::temp_directory_path() / "wharf-audit-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  const std::string path = tmpl + "/audit.log";
  std::string error;
  {
    auto log = AuditLog::open(true, path, error);
    REQUIRE(log);
    log->record(AuditEvent{"denied", "bob", "10.0.0.1", "team-b/app", "POST /v2/team-b/app/blobs/uploads/", "push"});
    log->record(AuditEvent{"login", "", "10.0.0.2", "", "", "failed\"quote"});
  }
  std::ifstream in(path);
  std::string first, second;
  std::getline(in, first);
  std::getline(in, second);
  CHECK(first.find(R"("audit":"denied")") != std::string::npos);
  CHECK(first.find(R"("user":"bob")") != std::string::npos);
  CHECK(first.find(R"("client":"10.0.0.1")") != std::string::npos);
  CHECK(second.find(R"("user":"-")") != std::string::npos);
  CHECK(second.find(R"(failed\"quote)") != std::string::npos);  // escaped: one line of JSON
  CHECK(AuditLog::open(false, "", error) != nullptr);
  { std::ofstream(tmpl + "/plain") << "x"; }  // a file where a directory would have to be
  CHECK(AuditLog::open(true, tmpl + "/plain/audit.log", error) == nullptr);
  CHECK(error.find("auth.audit.path") == 0);
  std::filesystem::remove_all(tmpl);
}

TEST_CASE("Rules::tag_immutable") {
  const auto cfg = load("version: 0.1\nauth:\n  immutabletags: [\"team-a/*:v*\", \"*:release-?\"]\n");
  const Rules rules(cfg, Rules::Default::AuthenticatedOnly);
  CHECK(rules.has_immutable_tags());
  CHECK(rules.tag_immutable("team-a/app", "v1.2"));
  CHECK(!rules.tag_immutable("team-a/app", "latest"));
  CHECK(!rules.tag_immutable("team-b/app", "v1"));
  CHECK(rules.tag_immutable("team-b/app", "release-1"));
  CHECK(config_error("version: 0.1\nauth:\n  immutabletags: [\"v*\"]\n").find("auth.immutabletags[0]") == 0);
}

TEST_CASE("storage.retention config") {
  const auto cfg = load(R"(version: 0.1
storage:
  retention:
    - {match: "team-a/*", tags: "pr-*", keep: 5}
    - {match: "ci/*", keep: 0}
)");
  REQUIRE(cfg.retention.size() == 2);
  CHECK(cfg.retention[0].match == "team-a/*");
  CHECK(cfg.retention[0].tags == "pr-*");
  CHECK(cfg.retention[0].keep == 5);
  CHECK(cfg.retention[1].tags == "*");
  CHECK(cfg.retention[1].keep == 0);
  auto err = [](const std::string& rule) {
    return config_error("version: 0.1\nstorage:\n  retention:\n    - " + rule + "\n");
  };
  CHECK(err("{match: \"a/*\", tags: \"pr-*\"}").find("storage.retention[0].keep: missing") == 0);
  CHECK(err("{match: \"a/*\", keep: -1}").find("storage.retention[0].keep") == 0);
  CHECK(err("{match: \"a/*\", keep: lots}").find("storage.retention[0].keep") == 0);
  CHECK(err("{tags: \"x\", keep: 1}").find("storage.retention[0].match") == 0);
  CHECK(err("{match: \"A/B\", keep: 1}").find("storage.retention[0].match") == 0);
  CHECK(err("{match: \"a\", tags: \"v:1\", keep: 1}").find("storage.retention[0].tags") == 0);
  CHECK(config_error("version: 0.1\nstorage:\n  retention: 5\n").find("storage.retention") == 0);
}
