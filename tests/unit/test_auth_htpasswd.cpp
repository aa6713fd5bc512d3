#include <crypt.h>
#include <doctest/doctest.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "src/auth/htpasswd.hpp"

using namespace wharf::auth;
using namespace std::chrono_literals;

namespace {

struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wharf-htpasswd-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// A bcrypt hash of `password` (cost 4 keeps the tests fast), with `prefix` "$2b$", "$2y$" or "$2a$".
std::string bcrypt(const std::string& password, const std::string& prefix = "$2b$") {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  REQUIRE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, setting, sizeof setting) != nullptr);
  crypt_data data{};
  const char* out = crypt_r(password.c_str(), setting, &data);
  REQUIRE(out != nullptr);
  std::string hash = out;
  REQUIRE(hash.size() == 60);
  return prefix + hash.substr(4);  // the three variants hash identically for ASCII passwords
}

// What Apache's tool writes: "user:$2y$...".
std::string htpasswd_line(const std::string& user, const std::string& password) {
  const std::string cmd = "htpasswd -nbB -C 4 " + user + " " + password + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[256] = {};
  const size_t n = fread(buf, 1, sizeof buf - 1, p);
  REQUIRE(pclose(p) == 0);
  std::string line(buf, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  return line;
}

std::string basic(const std::string& b64) { return "Basic " + b64; }

}  // namespace

TEST_CASE("Htpasswd::parse") {
  SUBCASE("bcrypt users, comments and blank lines") {
    const std::string text = "# admins\n\nalice:" + bcrypt("a") + "\r\nbob:" + bcrypt("b", "$2y$") + "\n  \ncarol:" +
                             bcrypt("c", "$2a$");
    auto db = Htpasswd::parse(text);
    REQUIRE(db);
    CHECK(db->size() == 3);
  }
  SUBCASE("non-bcrypt hashes are skipped with a warning") {
    std::vector<std::string> warnings;
    auto db = Htpasswd::parse("md5:$apr1$abc$def\nsha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nok:" + bcrypt("x"), warnings);
    REQUIRE(db);
    CHECK(db->size() == 1);
    REQUIRE(warnings.size() == 2);
    CHECK(warnings[0].find("line 1") != std::string::npos);
    CHECK(warnings[1].find("line 2") != std::string::npos);
    CHECK_FALSE(db->verify("md5", "anything"));
  }
  SUBCASE("malformed lines fail naming the line") {
    auto no_colon = Htpasswd::parse("alice:" + bcrypt("a") + "\njustaname\n");
    REQUIRE_FALSE(no_colon);
    CHECK(no_colon.error().find("line 2") != std::string::npos);
    auto no_user = Htpasswd::parse(std::string(":").append(bcrypt("a")));
    REQUIRE_FALSE(no_user);
    CHECK(no_user.error().find("line 1") != std::string::npos);
    auto truncated = Htpasswd::parse("alice:" + bcrypt("a").substr(0, 40));
    REQUIRE_FALSE(truncated);
    CHECK(truncated.error().find("line 1") != std::string::npos);
  }
  SUBCASE("empty file") {
    auto db = Htpasswd::parse("");
    REQUIRE(db);
    CHECK(db->size() == 0);
    CHECK_FALSE(db->verify("anyone", ""));
  }
}

TEST_CASE("Htpasswd::load") {
  ScratchDir dir;
  SUBCASE("a file written by htpasswd -B") {
    const auto path = dir.path / "htpasswd";
    std::ofstream(path) << htpasswd_line("alice", "s3cret") << "\n" << htpasswd_line("bob", "hunter2") << "\n";
    auto db = Htpasswd::load(path);
    REQUIRE(db);
    CHECK(db->size() == 2);
    CHECK(db->verify("alice", "s3cret"));
    CHECK(db->verify("bob", "hunter2"));
    CHECK_FALSE(db->verify("alice", "hunter2"));
  }
  SUBCASE("warnings name the file") {
    const auto path = dir.path / "mixed";
    std::ofstream(path) << "old:$apr1$x$y\n";
    std::vector<std::string> warnings;
    auto db = Htpasswd::load(path, warnings);
    REQUIRE(db);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find(path.string()) != std::string::npos);
  }
  SUBCASE("errors name the file") {
    auto missing = Htpasswd::load(dir.path / "absent");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().find("absent") != std::string::npos);
    const auto bad = dir.path / "bad";
    std::ofstream(bad) << "nocolon\n";
    auto malformed = Htpasswd::load(bad);
    REQUIRE_FALSE(malformed);
    CHECK(malformed.error().find(bad.string()) != std::string::npos);
    CHECK(malformed.error().find("line 1") != std::string::npos);
  }
}

TEST_CASE("Htpasswd::verify") {
  auto db = Htpasswd::parse("alice:" + bcrypt("correct horse") + "\nbob:" + bcrypt("pw", "$2y$") + "\n");
  REQUIRE(db);
  SUBCASE("right password") {
    CHECK(db->verify("alice", "correct horse"));
    CHECK(db->verify("bob", "pw"));
  }
  SUBCASE("wrong password") {
    CHECK_FALSE(db->verify("alice", "correct horse "));
    CHECK_FALSE(db->verify("alice", ""));
    CHECK_FALSE(db->verify("bob", "correct horse"));
  }
  SUBCASE("unknown user") {
    CHECK_FALSE(db->verify("mallory", "correct horse"));
    CHECK_FALSE(db->verify("", ""));
    CHECK_FALSE(db->verify("Alice", "correct horse"));
  }
  SUBCASE("a NUL byte does not cut the password short") {
    CHECK_FALSE(db->verify("bob", std::string("pw\0extra", 8)));
  }
}

TEST_CASE("parse_basic") {
  SUBCASE("user and password") {
    const auto p = parse_basic(basic("YWxpY2U6czNjcmV0"));  // alice:s3cret
    REQUIRE(p);
    CHECK(p->first == "alice");
    CHECK(p->second == "s3cret");
  }
  SUBCASE("padding is not part of the password") {
    const auto one = parse_basic(basic("YTpiYw=="));  // a:bc
    REQUIRE(one);
    CHECK(one->second == "bc");
    const auto two = parse_basic(basic("YTpiY2Q="));  // a:bcd
    REQUIRE(two);
    CHECK(two->second == "bcd");
    CHECK(two->second.size() == 3);
  }
  SUBCASE("the first colon splits; the password may contain colons") {
    const auto p = parse_basic(basic("dTpwOmE6c3M="));  // u:p:a:ss
    REQUIRE(p);
    CHECK(p->first == "u");
    CHECK(p->second == "p:a:ss");
  }
  SUBCASE("the scheme is case-insensitive") {
    CHECK(parse_basic("basic YWxpY2U6czNjcmV0"));
    CHECK(parse_basic("BASIC YWxpY2U6czNjcmV0"));
  }
  SUBCASE("malformed") {
    CHECK_FALSE(parse_basic(""));
    CHECK_FALSE(parse_basic("Basic"));
    CHECK_FALSE(parse_basic("Basic "));
    CHECK_FALSE(parse_basic("Bearer YWxpY2U6czNjcmV0"));
    CHECK_FALSE(parse_basic("BasicYWxpY2U6czNjcmV0"));
    CHECK_FALSE(parse_basic(basic("YWxpY2U")));        // length not a multiple of 4
    CHECK_FALSE(parse_basic(basic("YW*pY2U6czNj")));   // not base64
    CHECK_FALSE(parse_basic(basic("YW=pY2U6czNj")));   // '=' inside
    CHECK_FALSE(parse_basic(basic("YWxpY2U=")));       // "alice": no colon
  }
}

TEST_CASE("CredentialCache::lookup") {
  CredentialCache cache(60s);
  const auto t0 = CredentialCache::Clock::time_point{} + 1000h;
  cache.remember("Basic abc", "alice", t0);
  SUBCASE("within ttl") { CHECK(cache.lookup("Basic abc", t0 + 59s) == "alice"); }
  SUBCASE("expired entries miss and are dropped") {
    CHECK_FALSE(cache.lookup("Basic abc", t0 + 60s));
    CHECK_FALSE(cache.lookup("Basic abc", t0));  // erased, not only hidden
  }
  SUBCASE("another header misses") {
    CHECK_FALSE(cache.lookup("Basic abd", t0));
    CHECK_FALSE(cache.lookup("basic abc", t0));
  }
}

TEST_CASE("CredentialCache::remember") {
  CredentialCache cache(60s);
  const auto t0 = CredentialCache::Clock::time_point{} + 1000h;
  SUBCASE("remembering again extends the expiry") {
    cache.remember("h", "alice", t0);
    cache.remember("h", "alice", t0 + 50s);
    CHECK(cache.lookup("h", t0 + 100s) == "alice");
  }
  SUBCASE("a full cache drops expired entries first") {
    for (size_t i = 0; i + 1 < CredentialCache::kMaxEntries; ++i) cache.remember("old" + std::to_string(i), "u", t0);
    cache.remember("fresh", "bob", t0 + 30s);
    cache.remember("new", "carol", t0 + 61s);  // full: the "old" entries have expired by now
    CHECK(cache.lookup("fresh", t0 + 61s) == "bob");
    CHECK(cache.lookup("new", t0 + 61s) == "carol");
  }
  SUBCASE("a full cache of live entries starts over") {
    for (size_t i = 0; i < CredentialCache::kMaxEntries; ++i) cache.remember(std::string("k").append(std::to_string(i)), "u", t0);
    cache.remember("last", "dave", t0 + 1s);
    CHECK(cache.lookup("last", t0 + 1s) == "dave");
    CHECK_FALSE(cache.lookup("k0", t0 + 1s));
  }
}

TEST_CASE("CredentialCache::clear") {
  CredentialCache cache(60s);
  const auto now = CredentialCache::Clock::now();
  cache.remember("h", "alice", now);
  cache.clear();
  CHECK_FALSE(cache.lookup("h", now));
}
