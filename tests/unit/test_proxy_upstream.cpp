// Upstream and HttpClient against real local servers on the same event loop: a fake registry with a
// token realm on 127.0.0.1 and a fake CDN on 127.0.0.2 that refuses requests carrying credentials.
#include <doctest/doctest.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "proxy/blob_fetch.hpp"
#include "proxy/http_client.hpp"
#include "proxy/http_text.hpp"
#include "proxy/token_cache.hpp"
#include "proxy/upstream.hpp"
#include "src/http/server.hpp"
#include "tests/unit/scratch_store.hpp"

using namespace wharf;
using namespace wharf::proxy;
using namespace std::chrono_literals;

namespace {

std::string b64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Writes a self-signed certificate for IP 127.0.0.1 and its key as PEM files.
void make_certificate(const std::string& cert_path, const std::string& key_path) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  REQUIRE(key != nullptr);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("wharf test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"}, std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    REQUIRE(ext != nullptr);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  REQUIRE(X509_sign(x, key, EVP_sha256()) > 0);
  FILE* f = fopen(cert_path.c_str(), "w");
  REQUIRE(f != nullptr);
  PEM_write_X509(f, x);
  fclose(f);
  f = fopen(key_path.c_str(), "w");
  REQUIRE(f != nullptr);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

http::ServerOptions listen_on(std::string addr) {
  http::ServerOptions o;
  o.addr = std::move(addr);
  return o;
}

config::Upstream upstream_config(std::string name, std::string url) {
  config::Upstream u;
  u.name = std::move(name);
  u.url = std::move(url);
  return u;
}

// An event_base and a bounded way to run it.
struct Loop {
  event_base* base = event_base_new();
  ~Loop() { event_base_free(base); }
  // Runs the loop until `done()` holds or `limit` passed; returns done().
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    bool expired = false;
    event* guard = evtimer_new(base, [](evutil_socket_t, short, void* arg) { *static_cast<bool*>(arg) = true; }, &expired);
    const timeval tv{static_cast<time_t>(limit.count() / 1000), static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
    evtimer_add(guard, &tv);
    while (!done() && !expired) event_base_loop(base, EVLOOP_ONCE);
    event_free(guard);
    return done();
  }
  // Runs the loop for `d` (lets stray callbacks show up).
  void run_for(std::chrono::milliseconds d) {
    run_until([] { return false; }, d);
  }
};

// What a fetch reported.
struct Outcome {
  int heads = 0;
  UpstreamResponse head;
  std::string body;
  int dones = 0;
  bool ok = false;
  std::string error;
  bool finished() const { return dones > 0; }
  FetchCallbacks callbacks() {
    FetchCallbacks cb;
    cb.on_head = [this](const UpstreamResponse& r) {
      ++heads;
      head = r;
    };
    cb.on_data = [this](const char* d, size_t n) {
      body.append(d, n);
      return true;
    };
    cb.on_done = [this](bool o, const std::string& e) {
      ++dones;
      ok = o;
      error = e;
    };
    return cb;
  }
  // The same for a bare HttpClient transfer (body and end only).
  HttpCallbacks http_callbacks() {
    auto fetch = callbacks();
    HttpCallbacks cb;
    cb.on_data = std::move(fetch.on_data);
    cb.on_done = std::move(fetch.on_done);
    return cb;
  }
};

constexpr const char* kUser = "alice";
constexpr const char* kPassword = "s3cret";

// The fake registry (with its token realm) and CDN.
struct Fake {
  Loop& loop;
  int token_hits = 0;
  int registry_hits = 0;
  int cdn_hits = 0;
  std::vector<std::string> registry_auth;  // Authorization of each registry request ("" if none)
  std::vector<std::string> token_queries;
  std::vector<std::string> token_auth;
  std::vector<std::string> cdn_auth;
  std::string issued_token = "tok-123";   // what the token realm hands out
  std::string accepted_token = "tok-123"; // what the registry accepts
  std::string issued_at = "2030-01-01T00:00:00Z";  // the harness's "now"
  bool realm_requires_basic = false;
  std::vector<http::ExchangePtr> held;  // requests never answered
  std::map<std::string, std::string> pub_blobs;  // digest → bytes served at /v2/pub/blobs/<digest>, no auth
  bool hold_pub = false;                         // park /v2/pub/ requests in pub_held instead
  std::vector<std::pair<std::string, http::ExchangePtr>> pub_held;
  std::unique_ptr<http::Server> registry;
  std::unique_ptr<http::Server> cdn;

  // Drops the requests still parked, before the servers that own their connections go away.
  ~Fake() {
    for (const auto& ex : held) ex->abort();
    for (const auto& [d, ex] : pub_held) ex->abort();
    held.clear();
    pub_held.clear();
  }

  void serve_pub(const std::string& digest, const http::ExchangePtr& ex) {
    const auto it = pub_blobs.find(digest);
    if (it == pub_blobs.end()) return reply(ex, 404, R"({"errors":[{"code":"BLOB_UNKNOWN"}]})");
    reply(ex, 200, it->second);
  }

  explicit Fake(Loop& l) : loop(l) {
    auto r = http::Server::start(loop.base, listen_on("127.0.0.1:0"),
                                 [this](const http::ExchangePtr& ex) { on_registry(ex); }, nullptr);
    REQUIRE(r.has_value());
    registry = std::move(*r);
    auto c = http::Server::start(loop.base, listen_on("127.0.0.2:0"),
                                 [this](const http::ExchangePtr& ex) { on_cdn(ex); }, nullptr);
    REQUIRE(c.has_value());
    cdn = std::move(*c);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(registry->port()); }
  std::string cdn_url() const { return "http://127.0.0.2:" + std::to_string(cdn->port()); }

  static void reply(const http::ExchangePtr& ex, int status, std::string body = "",
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::Response r(status);
    r.headers = std::move(headers);
    r.body = std::move(body);
    ex->respond(std::move(r));
  }

  void on_token(const http::ExchangePtr& ex) {
    ++token_hits;
    const http::Request& req = ex->req();
    token_queries.push_back(req.query);
    token_auth.emplace_back(req.header("authorization"));
    if (realm_requires_basic && req.header("authorization") != "Basic " + b64(std::string(kUser) + ":" + kPassword))
      return reply(ex, 401, R"({"details":"incorrect username or password"})");
    reply(ex, 200, R"({"token":")" + issued_token + R"(","expires_in":300,"issued_at":")" + issued_at + R"("})",
          {{"Content-Type", "application/json"}, {"RateLimit-Limit", "999"}});
  }

  void on_registry(const http::ExchangePtr& ex) {
    const http::Request& req = ex->req();
    if (req.path == "/token") return on_token(ex);
    ++registry_hits;
    const std::string auth(req.header("authorization"));
    registry_auth.push_back(auth);
    const std::vector<std::pair<std::string, std::string>> limits = {
        {"RateLimit-Limit", "100;w=21600"}, {"RateLimit-Remaining", "97;w=21600"}, {"Docker-RateLimit-Source", "1.2.3.4"}};
    if (req.path == "/v2/limited") return reply(ex, 429, "slow down", {{"Retry-After", "120"}});
    if (req.path == "/v2/limited-default") return reply(ex, 429, "slow down");
    if (req.path == "/v2/limited-huge") return reply(ex, 429, "slow down", {{"Retry-After", "99999999999999999999"}});
    if (req.path == "/v2/limited-date") return reply(ex, 429, "slow down", {{"Retry-After", "Wed, 01 Jan 2031 00:00:00 GMT"}});
    if (req.path.starts_with("/v2/pub/blobs/")) {
      const std::string digest = req.path.substr(std::string_view("/v2/pub/blobs/").size());
      if (hold_pub) return void(pub_held.emplace_back(digest, ex));
      return serve_pub(digest, ex);
    }
    if (req.path == "/v2/slow") return held.push_back(ex);
    if (req.path == "/v2/loop") return reply(ex, 302, "", {{"Location", "/v2/loop"}});
    if (req.path == "/v2/cut") return cut(ex, true);
    if (req.path == "/v2/hang") return cut(ex, false);
    if (req.path == "/v2/plain") return reply(ex, 200, "plain body");
    if (req.path == "/v2/basic/x") {
      if (auth == "Basic " + b64(std::string(kUser) + ":" + kPassword)) return reply(ex, 200, "basic ok");
      return reply(ex, 401, "need basic", {{"WWW-Authenticate", R"(Basic realm="fake")"}});
    }
    if (req.path == "/v2/lib/img/manifests/final") return reply(ex, 200, "final manifest", {{"Docker-Content-Digest", "sha256:f"}});
    if (auth != "Bearer " + accepted_token) {
      auto headers = limits;
      // The catalog's challenge names no scope: the client must ask for registry:catalog:* itself.
      const std::string scope = req.path == "/v2/_catalog" ? "" : ",scope=\"repository:lib/img:pull\"";
      headers.emplace_back("WWW-Authenticate", "Bearer realm=\"" + url() + "/token\",service=\"fake registry\"" + scope);
      return reply(ex, 401, R"({"errors":[{"code":"UNAUTHORIZED"}]})", headers);
    }
    if (req.path == "/v2/lib/img/blobs/sha256:abc")
      return reply(ex, 307, "", {{"Location", cdn_url() + "/cdn/blob?sig=secret"}});
    if (req.path == "/v2/lib/img/manifests/rel") return reply(ex, 302, "", {{"Location", "final"}});
    if (req.path == "/v2/_catalog") return reply(ex, 200, R"({"repositories":["lib/img"]})");
    reply(ex, 404, R"({"errors":[{"code":"BLOB_UNKNOWN"}]})", {{"Content-Type", "application/json"}});
  }

  void on_cdn(const http::ExchangePtr& ex) {
    ++cdn_hits;
    cdn_auth.emplace_back(ex->req().header("authorization"));
    if (ex->req().has_header("authorization")) return reply(ex, 400, "no Authorization here");
    reply(ex, 200, "hello blob");
  }

  // Promises 1000 bytes, sends 10, then drops the connection 200 ms later (or just waits).
  void cut(const http::ExchangePtr& ex, bool drop) {
    char path[] = "/tmp/wharf-cut-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    unlink(path);
    REQUIRE(write(fd, "0123456789", 10) == 10);
    http::Response head(200);
    head.content_length = 1000;
    ex->begin_stream(std::move(head));
    ex->stream_file(fd, 0, 10);
    close(fd);
    if (!drop) return held.push_back(ex);
    const timeval later{0, 200'000};
    event_base_once(
        loop.base, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* arg) {
          std::unique_ptr<http::ExchangePtr> held(static_cast<http::ExchangePtr*>(arg));
          (*held)->abort();
        },
        new http::ExchangePtr(ex), &later);
  }
};

// A client, token cache and upstream over a fake registry, with fake clocks.
struct Harness {
  Loop loop;
  Fake fake{loop};
  std::chrono::system_clock::time_point now = *parse_rfc3339("2030-01-01T00:00:00Z");
  std::unique_ptr<HttpClient> client;
  std::unique_ptr<TokenCache> tokens;
  std::unique_ptr<Upstream> upstream;

  explicit Harness(bool credentials = false, UpstreamTimeouts timeouts = {}) {
    auto c = HttpClient::create(loop.base);
    REQUIRE(c.has_value());
    client = std::move(*c);
    tokens = std::make_unique<TokenCache>([this] { return now; });
    config::Upstream cfg = upstream_config("fake.io", fake.url());
    if (credentials) {
      cfg.username = kUser;
      cfg.password = kPassword;
    }
    upstream = std::make_unique<Upstream>(*client, *tokens, cfg, timeouts, [this] { return now; });
  }
  ~Harness() {
    upstream.reset();
    client.reset();
    // Let the servers see the client's connections close, so they free them.
    loop.run_until([this] { return fake.registry->open_connections() + fake.cdn->open_connections() == 0; }, 2s);
  }

  Outcome fetch(std::string path, std::string repo = "lib/img", std::string method = "GET") {
    Outcome out;
    upstream->fetch(std::move(method), std::move(path), std::move(repo), {}, out.callbacks());
    REQUIRE(loop.run_until([&] { return out.finished(); }));
    return out;
  }
};

}  // namespace

TEST_CASE("Upstream: Bearer challenge, token, retry, then a redirect to the CDN without credentials") {
  Harness h;
  const Outcome out = h.fetch("/v2/lib/img/blobs/sha256:abc");
  CHECK(out.ok);
  CHECK(out.error.empty());
  CHECK(out.heads == 1);
  CHECK(out.head.status == 200);
  CHECK(out.head.url == h.fake.cdn_url() + "/cdn/blob?sig=secret");
  CHECK(out.body == "hello blob");
  CHECK(h.fake.token_hits == 1);
  REQUIRE(h.fake.token_queries.size() == 1);
  CHECK(h.fake.token_queries[0] == "service=fake%20registry&scope=repository%3Alib%2Fimg%3Apull");
  CHECK(h.fake.token_auth == std::vector<std::string>{""});  // no credentials configured
  CHECK(h.fake.registry_auth == std::vector<std::string>{"", "Bearer tok-123"});
  CHECK(h.fake.cdn_auth == std::vector<std::string>{""});
  // Rate-limit headers come from the registry's responses, not the token service's.
  CHECK(h.upstream->rate_limit().limit == "100;w=21600");
  CHECK(h.upstream->rate_limit().remaining == "97;w=21600");
  CHECK(h.upstream->rate_limit().source == "1.2.3.4");
  CHECK_FALSE(h.upstream->backing_off());
}

TEST_CASE("Upstream: a cached token is sent right away and reused until it expires") {
  Harness h;
  CHECK(h.fetch("/v2/lib/img/blobs/sha256:abc").head.status == 200);
  const Outcome second = h.fetch("/v2/lib/img/blobs/sha256:abc");
  CHECK(second.head.status == 200);
  CHECK(second.body == "hello blob");
  CHECK(h.fake.token_hits == 1);
  CHECK(h.fake.registry_auth == std::vector<std::string>{"", "Bearer tok-123", "Bearer tok-123"});

  SUBCASE("another repository needs its own token") {
    h.fetch("/v2/_catalog", "");
    CHECK(h.fake.token_hits == 2);
    CHECK(h.fake.token_queries.back() == "service=fake%20registry&scope=registry%3Acatalog%3A%2A");
    CHECK(h.fake.registry_auth.back() == "Bearer tok-123");
    h.fetch("/v2/_catalog", "");
    CHECK(h.fake.token_hits == 2);
  }
  SUBCASE("an expired token is fetched again") {
    h.now += 301s;
    CHECK(h.fetch("/v2/lib/img/blobs/sha256:abc").head.status == 200);
    CHECK(h.fake.token_hits == 2);
    CHECK(h.fake.registry_auth.size() == 5);
    CHECK(h.fake.registry_auth[3] == "");
  }
  SUBCASE("a cached token the registry rejects is replaced once") {
    h.fake.accepted_token = h.fake.issued_token = "tok-456";
    const Outcome out = h.fetch("/v2/lib/img/blobs/sha256:abc");
    CHECK(out.head.status == 200);
    CHECK(h.fake.token_hits == 2);
    CHECK(h.fake.registry_auth == std::vector<std::string>{"", "Bearer tok-123", "Bearer tok-123", "Bearer tok-123",
                                                           "Bearer tok-456"});
  }
}

TEST_CASE("Upstream: a token's issued_at shortens its life in the cache") {
  Harness h;
  h.fake.issued_at = "2029-12-31T23:56:00Z";  // 240 s ago: 300 - 240 - 5 s margin = 55 s left
  CHECK(h.fetch("/v2/lib/img/blobs/sha256:abc").head.status == 200);
  h.now += 54s;
  CHECK(h.fetch("/v2/lib/img/blobs/sha256:abc").head.status == 200);
  CHECK(h.fake.token_hits == 1);
  h.now += 2s;
  CHECK(h.fetch("/v2/lib/img/blobs/sha256:abc").head.status == 200);
  CHECK(h.fake.token_hits == 2);
}

TEST_CASE("Upstream: configured credentials go to the token realm with account=, never elsewhere") {
  Harness h(true);
  h.fake.realm_requires_basic = true;
  const Outcome out = h.fetch("/v2/lib/img/blobs/sha256:abc");
  CHECK(out.ok);
  CHECK(out.head.status == 200);
  CHECK(out.body == "hello blob");
  REQUIRE(h.fake.token_queries.size() == 1);
  CHECK(h.fake.token_queries[0] == "service=fake%20registry&scope=repository%3Alib%2Fimg%3Apull&account=alice");
  CHECK(h.fake.token_auth == std::vector<std::string>{"Basic " + b64("alice:s3cret")});
  CHECK(h.fake.registry_auth == std::vector<std::string>{"", "Bearer tok-123"});
  CHECK(h.fake.cdn_auth == std::vector<std::string>{""});
}

TEST_CASE("Upstream: a 401 that remains after the retry is delivered with its body") {
  Harness h;
  h.fake.issued_token = "useless";
  const Outcome out = h.fetch("/v2/lib/img/blobs/sha256:abc");
  CHECK(out.ok);
  CHECK(out.heads == 1);
  CHECK(out.head.status == 401);
  CHECK(out.body == R"({"errors":[{"code":"UNAUTHORIZED"}]})");
  CHECK_FALSE(out.head.header("www-authenticate").empty());
  CHECK(h.fake.token_hits == 1);
  CHECK(h.fake.registry_auth == std::vector<std::string>{"", "Bearer useless"});
}

TEST_CASE("Upstream: token service refusing the credentials delivers the registry's 401") {
  Harness h;  // no credentials, but the realm wants them
  h.fake.realm_requires_basic = true;
  const Outcome out = h.fetch("/v2/lib/img/blobs/sha256:abc");
  CHECK(out.ok);
  CHECK(out.head.status == 401);
  CHECK(out.body == R"({"errors":[{"code":"UNAUTHORIZED"}]})");
  CHECK(h.fake.token_hits == 1);
  CHECK(h.fake.registry_auth.size() == 1);
}

TEST_CASE("Upstream: Basic challenge from the upstream itself") {
  SUBCASE("with credentials: one retry with Basic, then Basic right away") {
    Harness h(true);
    const Outcome out = h.fetch("/v2/basic/x");
    CHECK(out.head.status == 200);
    CHECK(out.body == "basic ok");
    const std::string basic = "Basic " + b64("alice:s3cret");
    CHECK(h.fake.registry_auth == std::vector<std::string>{"", basic});
    CHECK(h.fetch("/v2/basic/x").head.status == 200);
    CHECK(h.fake.registry_auth == std::vector<std::string>{"", basic, basic});
    CHECK(h.fake.token_hits == 0);
  }
  SUBCASE("without credentials: the 401 is the answer") {
    Harness h;
    const Outcome out = h.fetch("/v2/basic/x");
    CHECK(out.ok);
    CHECK(out.head.status == 401);
    CHECK(out.body == "need basic");
    CHECK(h.fake.registry_auth.size() == 1);
  }
}

TEST_CASE("Upstream: responses other than 2xx reach the caller with their body") {
  Harness h;
  const Outcome out = h.fetch("/v2/lib/img/blobs/sha256:missing");
  CHECK(out.ok);
  CHECK(out.head.status == 404);
  CHECK(out.head.header("content-type") == "application/json");
  CHECK(out.body == R"({"errors":[{"code":"BLOB_UNKNOWN"}]})");
}

TEST_CASE("Upstream: redirects") {
  Harness h;
  SUBCASE("a relative Location is resolved against the current URL") {
    const Outcome out = h.fetch("/v2/lib/img/manifests/rel");
    CHECK(out.head.status == 200);
    CHECK(out.head.url == h.fake.url() + "/v2/lib/img/manifests/final");
    CHECK(out.head.header("docker-content-digest") == "sha256:f");
    CHECK(out.body == "final manifest");
    // The hop after the redirect carries no Authorization, even on the same host.
    CHECK(h.fake.registry_auth == std::vector<std::string>{"", "Bearer tok-123", ""});
  }
  SUBCASE("after five hops the redirect itself is delivered") {
    const Outcome out = h.fetch("/v2/loop");
    CHECK(out.ok);
    CHECK(out.head.status == 302);
    CHECK(h.fake.registry_hits == 6);
  }
  SUBCASE("HEAD follows redirects and reads no body") {
    const Outcome out = h.fetch("/v2/lib/img/manifests/rel", "lib/img", "HEAD");
    CHECK(out.ok);
    CHECK(out.head.status == 200);
    CHECK(out.head.header("content-length") == "14");
    CHECK(out.body.empty());
  }
}

TEST_CASE("Upstream: 429 starts a back-off") {
  Harness h;
  SUBCASE("for Retry-After seconds") {
    const Outcome out = h.fetch("/v2/limited");
    CHECK(out.ok);
    CHECK(out.head.status == 429);
    CHECK(out.body == "slow down");
    CHECK(h.upstream->backing_off());
    h.now += 119s;
    CHECK(h.upstream->backing_off());
    h.now += 2s;
    CHECK_FALSE(h.upstream->backing_off());
  }
  SUBCASE("for 60 s without Retry-After") {
    CHECK(h.fetch("/v2/limited-default").head.status == 429);
    h.now += 59s;
    CHECK(h.upstream->backing_off());
    h.now += 2s;
    CHECK_FALSE(h.upstream->backing_off());
  }
  SUBCASE("a Retry-After too large for any integer is the longest back-off (a day), not a crash") {
    CHECK(h.fetch("/v2/limited-huge").head.status == 429);
    h.now += 23h;
    CHECK(h.upstream->backing_off());
    h.now += 2h;
    CHECK_FALSE(h.upstream->backing_off());
  }
  SUBCASE("a Retry-After date a year ahead is clamped to a day") {
    CHECK(h.fetch("/v2/limited-date").head.status == 429);
    h.now += 23h;
    CHECK(h.upstream->backing_off());
    h.now += 2h;
    CHECK_FALSE(h.upstream->backing_off());
  }
}

TEST_CASE("Upstream: transport failures end with ok=false") {
  SUBCASE("a body cut short") {
    Harness h;
    const Outcome out = h.fetch("/v2/cut");
    CHECK(out.heads == 1);
    CHECK(out.head.status == 200);
    CHECK(out.body == "0123456789");
    CHECK_FALSE(out.ok);
    CHECK_FALSE(out.error.empty());
  }
  SUBCASE("connection refused") {
    Loop loop;
    int port = 0;
    {
      auto s = http::Server::start(loop.base, listen_on("127.0.0.1:0"), [](const http::ExchangePtr&) {},
                                   nullptr);
      REQUIRE(s.has_value());
      port = (*s)->port();
    }
    auto client = HttpClient::create(loop.base);
    REQUIRE(client.has_value());
    TokenCache tokens;
    Upstream up(**client, tokens, upstream_config("gone", "http://127.0.0.1:" + std::to_string(port)));
    Outcome out;
    up.fetch("GET", "/v2/", "", {}, out.callbacks());
    REQUIRE(loop.run_until([&] { return out.finished(); }));
    CHECK_FALSE(out.ok);
    CHECK(out.heads == 0);
    CHECK(out.error.find("onnect") != std::string::npos);
  }
  SUBCASE("a trickle below the minimum rate") {
    Harness h(false, UpstreamTimeouts{.connect = 5s, .first_byte = 5s, .stall = 30s, .min_rate = 1000, .min_rate_period = 1s});
    const auto t0 = std::chrono::steady_clock::now();
    const Outcome out = h.fetch("/v2/hang");  // 10 of 1000 bytes, then nothing: the stall timer would wait 30 s
    CHECK_FALSE(out.ok);
    CHECK(out.body == "0123456789");
    CHECK(out.error.find("too slow") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < 20s);
  }
  SUBCASE("no response head within the first-byte timeout") {
    Harness h(false, UpstreamTimeouts{.connect = 5s, .first_byte = 1s, .stall = 5s});
    const auto t0 = std::chrono::steady_clock::now();
    const Outcome out = h.fetch("/v2/slow");
    CHECK_FALSE(out.ok);
    CHECK(out.heads == 0);
    CHECK(out.error.find("timeout: no response within 1 s") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < 4s);
  }
}

TEST_CASE("Upstream: cancel stops every callback") {
  Harness h;
  SUBCASE("from inside on_head") {
    Outcome out;
    FetchCallbacks cb = out.callbacks();
    uint64_t id = 0;
    cb.on_head = [&](const UpstreamResponse& r) {
      ++out.heads;
      out.head = r;
      h.upstream->cancel(id);
    };
    id = h.upstream->fetch("GET", "/v2/plain", "", {}, cb);
    REQUIRE(h.loop.run_until([&] { return out.heads == 1; }));
    const Outcome after = h.fetch("/v2/plain");  // keeps the loop busy for a full request
    CHECK(after.body == "plain body");
    h.loop.run_for(100ms);
    CHECK(out.body.empty());
    CHECK(out.dones == 0);
  }
  SUBCASE("while waiting for the response, and by destroying the upstream") {
    Outcome a, b;
    const uint64_t id = h.upstream->fetch("GET", "/v2/slow", "", {}, a.callbacks());
    h.upstream->fetch("GET", "/v2/slow", "", {}, b.callbacks());
    REQUIRE(h.loop.run_until([&] { return h.fake.held.size() == 2; }));
    h.upstream->cancel(id);
    h.upstream->cancel(id);  // twice is harmless
    h.upstream.reset();
    for (const auto& ex : h.fake.held) Fake::reply(ex, 200, "late");
    h.loop.run_for(200ms);
    CHECK(a.heads + a.dones + b.heads + b.dones == 0);
    CHECK(h.client->active() == 0);
  }
}

TEST_CASE("HttpClient: streaming, cancellation from callbacks, parallel transfers") {
  Loop loop;
  Fake fake(loop);
  auto created = HttpClient::create(loop.base);
  REQUIRE(created.has_value());
  HttpClient& client = **created;

  SUBCASE("on_data returning false aborts") {
    bool done = false, ok = true;
    std::string error;
    HttpCallbacks cb;
    cb.on_data = [](const char*, size_t) { return false; };
    cb.on_done = [&](bool o, const std::string& e) {
      done = true;
      ok = o;
      error = e;
    };
    HttpRequest r;
    r.url = fake.url() + "/v2/plain";
    client.start(r, cb);
    REQUIRE(loop.run_until([&] { return done; }));
    CHECK_FALSE(ok);
    CHECK(error == "aborted");
  }
  SUBCASE("a transfer started from on_done, and several at once") {
    int finished = 0;
    std::vector<int> statuses;
    HttpRequest r;
    r.url = fake.url() + "/v2/plain";
    r.headers = {"X-Test: 1"};
    HttpCallbacks cb;
    cb.on_head = [&](const HttpHead& head) { statuses.push_back(head.status); };
    cb.on_done = [&](bool ok, const std::string&) {
      CHECK(ok);
      if (++finished == 1) client.start(r, cb);
    };
    for (int i = 0; i < 3; ++i) client.start(r, cb);
    REQUIRE(loop.run_until([&] { return finished == 4; }));
    CHECK(statuses == std::vector<int>{200, 200, 200, 200});
    CHECK(client.active() == 0);
  }
  SUBCASE("cancel of one transfer from another's on_head") {
    uint64_t other = 0;
    int other_calls = 0;
    bool done = false;
    HttpRequest slow;
    slow.url = fake.url() + "/v2/slow";
    HttpCallbacks other_cb;
    other_cb.on_head = [&](const HttpHead&) { ++other_calls; };
    other_cb.on_done = [&](bool, const std::string&) { ++other_calls; };
    other = client.start(slow, other_cb);
    REQUIRE(loop.run_until([&] { return fake.held.size() == 1; }));
    HttpRequest r;
    r.url = fake.url() + "/v2/plain";
    HttpCallbacks cb;
    cb.on_head = [&](const HttpHead&) {
      client.cancel(other);
      Fake::reply(fake.held[0], 200, "late");
    };
    cb.on_done = [&](bool, const std::string&) { done = true; };
    client.start(r, cb);
    REQUIRE(loop.run_until([&] { return done; }));
    loop.run_for(100ms);
    CHECK(other_calls == 0);
  }
  SUBCASE("first-byte and stall timeouts") {
    Outcome out;
    HttpCallbacks cb = out.http_callbacks();
    HttpRequest r;
    r.first_byte_timeout = 300ms;
    r.stall_timeout = 400ms;
    SUBCASE("no head") { r.url = fake.url() + "/v2/slow"; }
    SUBCASE("head and 10 bytes, then nothing") { r.url = fake.url() + "/v2/hang"; }
    const auto t0 = std::chrono::steady_clock::now();
    client.start(r, cb);
    REQUIRE(loop.run_until([&] { return out.finished(); }));
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK_FALSE(out.ok);
    if (r.url.ends_with("slow")) {
      CHECK(out.error == "timeout: no response within 0.3 s");
      CHECK(took >= 250ms);  // libevent times from its cached clock
      CHECK(took < 390ms + 200ms);
    } else {
      CHECK(out.error == "timeout: no data for 0.4 s");
      CHECK(out.body == "0123456789");
      CHECK(took >= 350ms);
      CHECK(took < 1000ms);
    }
  }
  SUBCASE("an unsupported scheme fails later, not inside start()") {
    bool done = false, ok = true;
    HttpRequest r;
    r.url = "ftp://127.0.0.1/x";
    HttpCallbacks cb;
    cb.on_done = [&](bool o, const std::string&) {
      done = true;
      ok = o;
    };
    client.start(r, cb);
    CHECK_FALSE(done);
    REQUIRE(loop.run_until([&] { return done; }));
    CHECK_FALSE(ok);
  }
  SUBCASE("User-Agent") { CHECK(default_user_agent().starts_with("wharf/")); }
  created->reset();
  loop.run_until([&] { return fake.registry->open_connections() == 0; }, 2s);
}

TEST_CASE("URL helpers") {
  SUBCASE("resolve_url") {
    CHECK(resolve_url("https://r.io/v2/a/blobs/x", "https://cdn.io/b?sig=1") == "https://cdn.io/b?sig=1");
    CHECK(resolve_url("https://r.io/v2/a/blobs/x", "/other") == "https://r.io/other");
    CHECK(resolve_url("https://r.io/v2/a/blobs/x", "y?q=1") == "https://r.io/v2/a/blobs/y?q=1");
    CHECK(resolve_url("https://r.io/v2/a/blobs/x", "../m") == "https://r.io/v2/a/m");
    CHECK_FALSE(resolve_url("https://r.io/", "ftp://x/y").has_value());
    CHECK_FALSE(resolve_url("not a url", "/x").has_value());
  }
  SUBCASE("url_origin") {
    CHECK(url_origin("https://Registry-1.Docker.io/v2/") == "https://registry-1.docker.io");
    CHECK(url_origin("https://r.io:443/x") == "https://r.io");
    CHECK(url_origin("http://127.0.0.1:5000/v2/") == "http://127.0.0.1:5000");
    CHECK(url_origin("http://r.io@evil.io/v2/") == "http://evil.io");
    CHECK_FALSE(url_origin("file:///etc/passwd").has_value());
  }
  SUBCASE("redact_url") {
    CHECK(redact_url("https://cdn.io/blob?sig=secret&x=1") == "https://cdn.io/blob?<redacted>");
    CHECK(redact_url("https://user:pw@r.io/v2/#frag") == "https://r.io/v2/");
    CHECK(redact_url("https://r.io/v2/") == "https://r.io/v2/");
  }
}

TEST_CASE("HttpClient: TLS is verified, against an extra CA file when given") {
  char dir[] = "/tmp/wharf-tls-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string cert = std::string(dir) + "/cert.pem", key = std::string(dir) + "/key.pem";
  make_certificate(cert, key);
  Loop loop;
  http::ServerOptions opts = listen_on("127.0.0.1:0");
  opts.tls_certificate = cert;
  opts.tls_key = key;
  auto server = http::Server::start(
      loop.base, opts, [](const http::ExchangePtr& ex) { Fake::reply(ex, 200, "over tls"); }, nullptr);
  REQUIRE(server.has_value());
  auto created = HttpClient::create(loop.base);
  REQUIRE(created.has_value());

  Outcome out;
  HttpCallbacks cb = out.http_callbacks();
  HttpRequest r;
  r.url = "https://127.0.0.1:" + std::to_string((*server)->port()) + "/v2/";
  SUBCASE("trusted through ca_file") {
    r.ca_file = cert;
    (*created)->start(r, cb);
    REQUIRE(loop.run_until([&] { return out.finished(); }));
    CHECK(out.ok);
    CHECK(out.body == "over tls");
  }
  SUBCASE("refused without it") {
    (*created)->start(r, cb);
    REQUIRE(loop.run_until([&] { return out.finished(); }));
    CHECK_FALSE(out.ok);
    CHECK(out.body.empty());
    CHECK(out.error.find("certificate") != std::string::npos);
  }
  created->reset();
  loop.run_until([&] { return (*server)->open_connections() == 0; }, 2s);
  std::remove(cert.c_str());
  std::remove(key.c_str());
  rmdir(dir);
}

// --- FetchTable: shared blob downloads against the fake registry's /v2/pub/blobs/<digest> ---

namespace {

// A FetchTable over a scratch store whose "workers" run inline and whose publishing keeps nothing.
struct FetchHarness {
  Harness h;
  testing::ScratchStore store{"wharf-fetch"};
  proxy::FetchTable table;

  explicit FetchHarness(FetchLimits limits)
      : table(*store.blobs, [](std::function<void()> work, std::function<void()> done) { work(), done(); },
              [](const std::vector<VerifiedBlob>& blobs) { return std::vector<std::string>(blobs.size()); }, limits) {}

  // Serves `body` as a blob; returns its digest.
  oci::Digest add(const std::string& body, std::string digest_of_body = "") {
    const oci::Digest d = oci::digest_of(digest_of_body.empty() ? body : digest_of_body);
    h.fake.pub_blobs[d.str()] = body;
    return d;
  }
  std::shared_ptr<BlobFetch> get(const oci::Digest& d, FetchPriority p, std::optional<uint64_t> size = std::nullopt) {
    return table.get_or_start(*h.upstream, "pub", "fake.io/pub", d, p, size);
  }
  bool settled(const std::vector<std::shared_ptr<BlobFetch>>& fs) {
    return std::all_of(fs.begin(), fs.end(), [](const auto& f) {
      return f->state() == FetchState::Verified || f->state() == FetchState::Failed;
    });
  }
};

}  // namespace

TEST_CASE("FetchTable: downloads are bounded per upstream and in total, clients go first") {
  FetchHarness fh(FetchLimits{.total = 3, .per_upstream = 2});
  fh.h.fake.hold_pub = true;
  std::vector<oci::Digest> ds;
  std::vector<std::shared_ptr<BlobFetch>> fs;
  for (int i = 0; i < 6; ++i) ds.push_back(fh.add("blob number " + std::to_string(i)));
  for (int i = 0; i < 5; ++i) fs.push_back(fh.get(ds[i], FetchPriority::Prefetch));
  REQUIRE(fh.h.loop.run_until([&] { return fh.h.fake.pub_held.size() == 2; }));
  fh.h.loop.run_for(100ms);
  CHECK(fh.h.fake.pub_held.size() == 2);  // the per-upstream limit, not more
  CHECK(fh.table.running() == 2);
  CHECK(fh.table.queued() == 3);
  CHECK(fs[4]->state() == FetchState::Queued);
  CHECK(fs[4]->fd() < 0);  // no temp file while queued

  // A client asks for the last prefetch and for a new blob: both jump the prefetch queue, in order.
  CHECK(fh.get(ds[4], FetchPriority::Client) == fs[4]);
  fs.push_back(fh.get(ds[5], FetchPriority::Client));
  CHECK(fs[5]->state() == FetchState::Queued);
  std::vector<std::string> order;
  while (!fh.settled(fs)) {
    REQUIRE(fh.h.loop.run_until([&] { return !fh.h.fake.pub_held.empty() || fh.settled(fs); }));
    if (fh.h.fake.pub_held.empty()) break;
    CHECK(fh.h.fake.pub_held.size() <= 2);
    auto [digest, ex] = fh.h.fake.pub_held.front();
    fh.h.fake.pub_held.erase(fh.h.fake.pub_held.begin());
    order.push_back(digest);
    fh.h.fake.serve_pub(digest, ex);
    const auto served = std::find_if(fs.begin(), fs.end(), [&](const auto& f) { return f->digest().str() == digest; });
    REQUIRE(served != fs.end());
    REQUIRE(fh.h.loop.run_until([&] { return fh.settled({*served}); }));
    fh.h.loop.run_for(20ms);
  }
  REQUIRE(fh.h.loop.run_until([&] { return fh.settled(fs); }));
  for (const auto& f : fs) CHECK(f->state() == FetchState::Verified);
  REQUIRE(order.size() == 6);
  CHECK(order[0] == ds[0].str());
  CHECK(order[1] == ds[1].str());
  CHECK(order[2] == ds[4].str());  // the client requests, oldest first
  CHECK(order[3] == ds[5].str());
  CHECK(order[4] == ds[2].str());
  CHECK(order[5] == ds[3].str());
}

TEST_CASE("FetchTable: hostile upstream bytes") {
  FetchHarness fh(FetchLimits{});
  SUBCASE("bytes that do not match the digest fail, and the digest is remembered as bad") {
    const oci::Digest d = fh.add("evil bytes", "the real blob");
    CHECK_FALSE(fh.table.known_bad(d));
    auto f = fh.get(d, FetchPriority::Client);
    int failed_with = 0;
    FetchListener l;
    l.on_fail = [&](int status, const std::string&, const std::string&) { failed_with = status; };
    f->add_listener(std::move(l));
    REQUIRE(fh.h.loop.run_until([&] { return fh.settled({f}); }));
    CHECK(f->state() == FetchState::Failed);
    CHECK(failed_with == 502);
    CHECK(f->failure().find("digest mismatch") != std::string::npos);
    REQUIRE(fh.table.known_bad(d));
    CHECK(*fh.table.known_bad(d) <= FetchTable::kBadDigestMemory);
    CHECK_FALSE(fh.table.in_flight(d));
  }
  SUBCASE("a Content-Length other than the descriptor's size is refused before any byte is kept") {
    const oci::Digest d = fh.add("twelve bytes");
    auto f = fh.get(d, FetchPriority::Prefetch, 5);
    REQUIRE(fh.h.loop.run_until([&] { return fh.settled({f}); }));
    CHECK(f->state() == FetchState::Failed);
    CHECK(f->failure().find("announced 12 bytes for a blob of 5 bytes") != std::string::npos);
    CHECK_FALSE(fh.table.known_bad(d));
  }
  SUBCASE("a size noted from a manifest holds a later download to it") {
    const oci::Digest d = fh.add("twelve bytes");
    fh.table.note_size(d, 13);
    auto f = fh.get(d, FetchPriority::Client);
    REQUIRE(fh.h.loop.run_until([&] { return fh.settled({f}); }));
    CHECK(f->state() == FetchState::Failed);
    fh.table.note_size(d, 12);
    auto g = fh.get(d, FetchPriority::Client);
    REQUIRE(fh.h.loop.run_until([&] { return fh.settled({g}); }));
    CHECK(g->state() == FetchState::Verified);
    CHECK(g->total() == 12);
  }
}

TEST_CASE("FetchTable: prefetches wait while too many verified blobs wait to be published") {
  Harness h;
  testing::ScratchStore store{"wharf-fetch"};
  std::vector<std::pair<std::function<void()>, std::function<void()>>> jobs;  // the "workers", run by hand
  FetchTable table(
      *store.blobs, [&](std::function<void()> work, std::function<void()> done) { jobs.emplace_back(work, done); },
      [](const std::vector<VerifiedBlob>& blobs) { return std::vector<std::string>(blobs.size()); },
      FetchLimits{.total = 16, .per_upstream = 16});
  const size_t n = FetchTable::kMaxUnpublished + 40;
  std::vector<std::shared_ptr<BlobFetch>> fs;
  for (size_t i = 0; i < n; ++i) {
    const std::string body = "prefetched blob " + std::to_string(i);
    const oci::Digest d = oci::digest_of(body);
    h.fake.pub_blobs[d.str()] = body;
    fs.push_back(table.get_or_start(*h.upstream, "pub", "fake.io/pub", d, FetchPriority::Prefetch));
  }
  auto verified = [&] {
    return static_cast<size_t>(std::count_if(fs.begin(), fs.end(), [](const auto& f) { return f->state() == FetchState::Verified; }));
  };
  REQUIRE(h.loop.run_until([&] { return table.running() == 0; }, 30s));
  h.loop.run_for(50ms);
  CHECK(table.running() == 0);
  CHECK(verified() >= FetchTable::kMaxUnpublished);
  CHECK(verified() <= FetchTable::kMaxUnpublished + 16);
  CHECK(table.queued() == n - verified());
  // Publishing catches up: the rest start.
  for (int round = 0; round < 100 && verified() < n; ++round) {
    for (auto& [work, done] : std::exchange(jobs, {})) work(), done();
    h.loop.run_until([&] { return table.running() == 0 && !jobs.empty(); }, 5s);
  }
  CHECK(verified() == n);
  for (auto& [work, done] : std::exchange(jobs, {})) work(), done();
}
