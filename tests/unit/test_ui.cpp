// The web page's server side: sessions, CSRF comparison, cookies, rate-limit headers, repository
// search and paging, traffic rings and the activity ring.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>

#include "src/config/config.hpp"
#include "src/ui/activity.hpp"
#include "src/ui/cookie.hpp"
#include "src/ui/ratelimit.hpp"
#include "src/ui/repo_query.hpp"
#include "src/ui/sessions.hpp"
#include "src/ui/traffic.hpp"

using namespace wharf::ui;

TEST_CASE("SessionStore: create, find, idle expiry, removal and the count bound") {
  SessionStore store(3, 100);
  const std::string a = store.create("alice", 1000);
  REQUIRE(a.size() == 64);
  const Session* s = store.find(a, 1050);
  REQUIRE(s != nullptr);
  CHECK(s->user == "alice");
  CHECK(s->csrf.size() == 64);
  CHECK(s->csrf != a);
  SUBCASE("use keeps it alive, idleness ends it") {
    CHECK(store.find(a, 1149) != nullptr);  // last used at 1050, then 1149
    CHECK(store.find(a, 1248) != nullptr);
    CHECK(store.find(a, 1348) == nullptr);  // 100 s idle
    CHECK(store.find(a, 1349) == nullptr);
  }
  SUBCASE("unknown and removed ids") {
    CHECK(store.find("nope", 1050) == nullptr);
    CHECK(store.find(std::string(64, '0'), 1050) == nullptr);
    CHECK(store.remove(a));
    CHECK_FALSE(store.remove(a));
    CHECK(store.find(a, 1051) == nullptr);
  }
  SUBCASE("full: the least recently used goes") {
    const std::string b = store.create("bob", 1010);
    const std::string c = store.create("carol", 1020);
    CHECK(store.find(a, 1030) != nullptr);  // a used last now; b is the oldest
    const std::string d = store.create("dave", 1040);
    CHECK(store.size() == 3);
    CHECK(store.find(b, 1041) == nullptr);
    CHECK(store.find(a, 1041) != nullptr);
    CHECK(store.find(c, 1041) != nullptr);
    CHECK(store.find(d, 1041) != nullptr);
  }
  SUBCASE("ids are distinct") {
    CHECK(store.create("alice", 1000) != store.create("alice", 1000));
  }
}

TEST_CASE("tokens_equal: the CSRF comparison") {
  const std::string t = random_token();
  CHECK(tokens_equal(t, t));
  CHECK_FALSE(tokens_equal(t, t.substr(0, 63)));
  std::string other = t;
  other[63] = other[63] == 'a' ? 'b' : 'a';
  CHECK_FALSE(tokens_equal(t, other));
  CHECK_FALSE(tokens_equal("", ""));  // a missing header never matches
  CHECK_FALSE(tokens_equal(t, ""));
}

TEST_CASE("cookie_value") {
  CHECK(cookie_value("wharf_session=abc", "wharf_session") == "abc");
  CHECK(cookie_value("a=1; wharf_session=abc; b=2", "wharf_session") == "abc");
  CHECK(cookie_value("a=1;wharf_session=\"abc\"", "wharf_session") == "abc");
  CHECK(cookie_value("wharf_session=first; wharf_session=second", "wharf_session") == "first");
  CHECK_FALSE(cookie_value("xwharf_session=abc", "wharf_session"));
  CHECK_FALSE(cookie_value("a=1; b", "wharf_session"));
  CHECK_FALSE(cookie_value("", "wharf_session"));
  CHECK_FALSE(cookie_value("wharf_session=a\\b", "wharf_session"));
  CHECK_FALSE(cookie_value("wharf_session=a,b", "wharf_session"));
  CHECK(cookie_value("wharf_session=", "wharf_session") == "");
}

TEST_CASE("ratelimit_count: Docker Hub's ratelimit headers") {
  CHECK(ratelimit_count("100;w=21600") == 100u);
  CHECK(ratelimit_count("76") == 76u);
  CHECK(ratelimit_count(" 0 ;w=21600") == 0u);
  CHECK_FALSE(ratelimit_count(""));
  CHECK_FALSE(ratelimit_count(";w=21600"));
  CHECK_FALSE(ratelimit_count("-1;w=1"));
  CHECK_FALSE(ratelimit_count("abc"));
  CHECK_FALSE(ratelimit_count("99999999999999999999999"));
}

TEST_CASE("parse_repo_query") {
  auto q = parse_repo_query(std::nullopt, std::nullopt, std::nullopt, std::nullopt);
  REQUIRE(q);
  CHECK(q->page == 1);
  CHECK(q->per_page == 50);
  CHECK(q->kind == RepoKind::All);
  q = parse_repo_query("Alp", "mirror", "3", "200");
  REQUIRE(q);
  CHECK(q->q == "Alp");
  CHECK(q->kind == RepoKind::Mirror);
  CHECK(q->page == 3);
  CHECK(q->per_page == 200);
  CHECK(parse_repo_query(std::nullopt, "other", std::nullopt, std::nullopt).error().starts_with("kind"));
  CHECK(parse_repo_query(std::nullopt, std::nullopt, "0", std::nullopt).error().starts_with("page"));
  CHECK(parse_repo_query(std::nullopt, std::nullopt, "x", std::nullopt).error().starts_with("page"));
  CHECK(parse_repo_query(std::nullopt, std::nullopt, std::nullopt, "201").error().starts_with("per_page"));
  CHECK(parse_repo_query(std::nullopt, std::nullopt, std::nullopt, "0").error().starts_with("per_page"));
  CHECK(parse_repo_query(std::nullopt, std::nullopt, std::nullopt, "-5").error().starts_with("per_page"));
  CHECK_FALSE(parse_repo_query(std::string(257, 'a'), std::nullopt, std::nullopt, std::nullopt));
}

TEST_CASE("select_repos: search, kind, visibility and pages") {
  std::vector<std::string> names;
  for (int i = 0; i < 250; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "team/app%03d", i);
    names.emplace_back(buf);
  }
  names.emplace_back("docker.io/library/alpine");
  names.emplace_back("docker.io/library/Alpine-extra");
  names.emplace_back("secret/alpine");
  std::sort(names.begin(), names.end());
  auto mirror = [](std::string_view n) { return n.starts_with("docker.io/"); };
  auto visible = [](std::string_view n) { return !n.starts_with("secret/"); };
  SUBCASE("paging over everything visible") {
    RepoQuery q;
    q.per_page = 100;
    RepoPage p = select_repos(names, q, mirror, visible);
    CHECK(p.total == 252);
    REQUIRE(p.names.size() == 100);
    CHECK(p.names.front() == "docker.io/library/Alpine-extra");
    q.page = 3;
    p = select_repos(names, q, mirror, visible);
    CHECK(p.total == 252);
    REQUIRE(p.names.size() == 52);
    CHECK(p.names.back() == "team/app249");
    q.page = 4;
    p = select_repos(names, q, mirror, visible);
    CHECK(p.total == 252);
    CHECK(p.names.empty());
  }
  SUBCASE("search is a case-insensitive substring, and hidden names stay hidden") {
    RepoQuery q;
    q.q = "ALPINE";
    RepoPage p = select_repos(names, q, mirror, visible);
    CHECK(p.total == 2);
    CHECK(p.names == std::vector<std::string>{"docker.io/library/Alpine-extra", "docker.io/library/alpine"});
  }
  SUBCASE("kind") {
    RepoQuery q;
    q.kind = RepoKind::Mirror;
    CHECK(select_repos(names, q, mirror, visible).total == 2);
    q.kind = RepoKind::Local;
    q.q = "app12";
    RepoPage p = select_repos(names, q, mirror, visible);
    CHECK(p.total == 10);  // app120..app129
  }
}

TEST_CASE("Traffic: hits and misses land in minute and quarter-hour buckets") {
  Traffic t;
  const int64_t now = 1'700'000'000 - 1'700'000'000 % 900 + 30;  // 30 s into a quarter hour
  t.record(now - 120, "blob", "GET", 200, "MISS", 1000);
  t.record(now - 60, "blob", "GET", 200, "HIT", 500);
  t.record(now, "manifest", "HEAD", 200, "HIT", 0);
  t.record(now, "blob", "GET", 200, "LOCAL", 77);     // a pushed repository: not mirror traffic
  t.record(now, "catalog", "GET", 200, "HIT", 77);    // not a blob or manifest
  t.record(now, "blob", "GET", 404, "MISS", 77);      // an error
  t.record(now, "blob", "PUT", 201, "", 77);
  auto hour = t.hour.series(now);
  REQUIRE(hour.size() == 60);
  CHECK(hour.back().t == now - now % 60);
  CHECK(hour.back().hits == 1);
  CHECK(hour[57].misses == 1);
  CHECK(hour[57].bytes_upstream == 1000);
  CHECK(hour[58].hits == 1);
  CHECK(hour[58].bytes_cache == 500);
  CHECK(t.hour.hit_ratio(now) == doctest::Approx(2.0 / 3.0));
  auto day = t.day.series(now);
  REQUIRE(day.size() == 96);
  CHECK(day.back().hits + day[94].hits == 2);
  CHECK(day.back().misses + day[94].misses == 1);
  // An hour later the minute ring has forgotten it all; the day ring has not.
  CHECK_FALSE(t.hour.hit_ratio(now + 3600));
  CHECK(t.day.hit_ratio(now + 3600) == doctest::Approx(2.0 / 3.0));
  CHECK_FALSE(Traffic{}.day.hit_ratio(now));
}

TEST_CASE("Activity: newest first, bounded, refs taken from the action") {
  Activity a(3);
  a.add(wharf::auth::AuditEvent{"push", "alice", "10.0.0.1", "team/app", "PUT /v2/team/app/manifests/<script>", "authorized"}, 1);
  a.add(wharf::auth::AuditEvent{"login", "bob", "10.0.0.2", "", "", "failed"}, 2);
  a.add(wharf::auth::AuditEvent{"denied", "", "10.0.0.3", "x", "GET /v2/x/blobs/sha256:ab", "pull"}, 3);
  auto items = a.recent(10);
  REQUIRE(items.size() == 3);
  CHECK(items[0].event == "denied");
  CHECK(items[0].ref == "sha256:ab");
  CHECK(items[2].ref == "<script>");
  CHECK(items[2].detail == "PUT /v2/team/app/manifests/<script>: authorized");
  CHECK(items[1].detail == "failed");
  a.add(wharf::auth::AuditEvent{"token", "carol", "10.0.0.4", "", "", "granted nothing"}, 4);
  items = a.recent(2);
  REQUIRE(items.size() == 2);
  CHECK(items[0].event == "token");
  CHECK(a.recent(10).size() == 3);
  CHECK(a.recent(10).back().event == "login");
}

TEST_CASE("config: http.ui.enabled and http.ui.path, in YAML and REGISTRY_* variables") {
  using wharf::config::load_from_string;
  std::vector<std::string> warnings;
  const std::string base = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /tmp/x\n";
  auto c = load_from_string(base, {}, warnings);
  REQUIRE(c);
  CHECK(c->ui_enabled);
  CHECK(c->ui_path == "/");
  c = load_from_string(base + "http:\n  ui:\n    enabled: false\n    path: /console/\n", {}, warnings);
  REQUIRE(c);
  CHECK_FALSE(c->ui_enabled);
  CHECK(c->ui_path == "/console/");
  c = load_from_string(base, {{"REGISTRY_HTTP_UI_ENABLED", "false"}, {"REGISTRY_HTTP_UI_PATH", "/ui/"}}, warnings);
  REQUIRE(c);
  CHECK_FALSE(c->ui_enabled);
  CHECK(c->ui_path == "/ui/");
  for (const char* bad : {"ui", "/ui", "ui/", "/v2/", "/api/", "/auth/x/", "/a//b/", "/a/../", "/a b/", "/%2e/"}) {
    CAPTURE(bad);
    auto e = load_from_string(base + "http:\n  ui:\n    path: \"" + bad + "\"\n", {}, warnings);
    REQUIRE_FALSE(e);
    CHECK(e.error().key == "http.ui.path");
  }
  auto e = load_from_string(base + "http:\n  ui:\n    enabled: maybe\n", {}, warnings);
  REQUIRE_FALSE(e);
  CHECK(e.error().key == "http.ui.enabled");
}

TEST_CASE("filter_repos and page_of: positions, then pages out of them") {
  const std::vector<std::string> names = {"a/one", "a/two", "b/one", "docker.io/x/one"};
  auto mirror = [](std::string_view n) { return n.starts_with("docker.io/"); };
  auto all = [](std::string_view) { return true; };
  RepoQuery q;
  q.q = "one";
  const auto m = filter_repos(names, q, mirror, all);
  CHECK(m == std::vector<uint32_t>{0, 2, 3});
  q.per_page = 2;
  q.page = 2;
  RepoPage p = page_of(names, m, q);
  CHECK(p.total == 3);
  CHECK(p.names == std::vector<std::string>{"docker.io/x/one"});
  q.page = 1;
  CHECK(page_of(names, m, q).names == std::vector<std::string>{"a/one", "b/one"});
  CHECK(page_of(names, {}, q).total == 0);
}
