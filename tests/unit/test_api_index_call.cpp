// Index calls from the handlers with an index that blocks: never on the event loop thread.
#include <doctest/doctest.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "cache/publish.hpp"
#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"
#include "src/oci/digest.hpp"
#include "tests/unit/scratch_store.hpp"

using namespace wharf;

namespace {

// An Index that says it blocks, forwards to an LMDB index, and counts the calls made on `loop`'s
// thread (which must be none). With `broken` set, every read throws as a lost connection would.
class LoopGuardIndex final : public cache::Index {
 public:
  explicit LoopGuardIndex(cache::Index& inner) : in_(inner) {}
  std::thread::id loop;
  mutable std::atomic<int> on_loop{0}, calls{0};
  std::atomic<bool> broken{false};

  bool blocks() const override { return true; }
  std::string_view kind() const override { return "loop-guard"; }
  ReadTxn read() const override {
    note();
    if (broken) throw std::runtime_error("connection to the database lost");
    return in_.read();
  }
  bool repo_exists(const ReadTxn& t, std::string_view r) const override { return note(), in_.repo_exists(t, r); }
  std::optional<cache::BlobRecord> blob(const ReadTxn& t, std::string_view d) const override {
    return note(), in_.blob(t, d);
  }
  bool blob_linked(const ReadTxn& t, std::string_view r, std::string_view d) const override {
    return note(), in_.blob_linked(t, r, d);
  }
  std::optional<std::string> tag(const ReadTxn& t, std::string_view r, std::string_view g) const override {
    return note(), in_.tag(t, r, g);
  }
  std::optional<cache::ManifestRecord> manifest(const ReadTxn& t, std::string_view d) const override {
    return note(), in_.manifest(t, d);
  }
  bool manifest_in_repo(const ReadTxn& t, std::string_view r, std::string_view d) const override {
    return note(), in_.manifest_in_repo(t, r, d);
  }
  std::vector<std::string> tags(const ReadTxn& t, std::string_view r, std::string_view l, size_t n,
                                bool* more) const override {
    return note(), in_.tags(t, r, l, n, more);
  }
  std::vector<std::string> repos(const ReadTxn& t, std::string_view l, size_t n, bool* more) const override {
    return note(), in_.repos(t, l, n, more);
  }
  std::vector<cache::Referrer> referrers(const ReadTxn& t, std::string_view r, std::string_view s) const override {
    return note(), in_.referrers(t, r, s);
  }
  std::optional<cache::UploadRecord> upload(const ReadTxn& t, std::string_view u) const override {
    return note(), in_.upload(t, u);
  }
  std::optional<int64_t> last_access(const ReadTxn& t, std::string_view d) const override {
    return note(), in_.last_access(t, d);
  }
  std::expected<void, std::string> link_blobs(const std::vector<NewLink>& l) override { return note(), in_.link_blobs(l); }
  std::expected<bool, std::string> unlink_blob(std::string_view r, std::string_view d) override {
    return note(), in_.unlink_blob(r, d);
  }
  std::expected<void, std::string> put_manifest(std::string_view r, std::string_view d, const cache::ManifestRecord& m,
                                                std::optional<std::string_view> t) override {
    return note(), in_.put_manifest(r, d, m, t);
  }
  std::expected<std::optional<std::string>, std::string> put_manifest_checked(
      std::string_view r, std::string_view d, const cache::ManifestRecord& m, std::optional<std::string_view> t,
      const std::vector<std::string>& req) override {
    return note(), in_.put_manifest_checked(r, d, m, t, req);
  }
  std::expected<bool, std::string> delete_tag(std::string_view r, std::string_view t) override {
    return note(), in_.delete_tag(r, t);
  }
  std::expected<bool, std::string> delete_manifest(std::string_view r, std::string_view d) override {
    return note(), in_.delete_manifest(r, d);
  }
  std::expected<void, std::string> put_upload(std::string_view u, const cache::UploadRecord& rec) override {
    return note(), in_.put_upload(u, rec);
  }
  std::expected<void, std::string> delete_upload(std::string_view u) override { return note(), in_.delete_upload(u); }
  std::vector<std::pair<std::string, cache::UploadRecord>> uploads(const ReadTxn& t) const override {
    return note(), in_.uploads(t);
  }
  std::expected<void, std::string> touch(const std::vector<std::pair<std::string, int64_t>>& a) override {
    return note(), in_.touch(a);
  }
  std::vector<cache::TagEntry> all_tags(const ReadTxn& t) const override { return note(), in_.all_tags(t); }
  std::vector<cache::RepoManifest> all_repo_manifests(const ReadTxn& t) const override {
    return note(), in_.all_repo_manifests(t);
  }
  std::vector<std::pair<std::string, cache::ManifestRecord>> all_manifests(const ReadTxn& t) const override {
    return note(), in_.all_manifests(t);
  }
  std::vector<std::pair<std::string, cache::BlobRecord>> all_blobs(const ReadTxn& t) const override {
    return note(), in_.all_blobs(t);
  }
  std::vector<cache::BlobLink> all_links(const ReadTxn& t) const override { return note(), in_.all_links(t); }
  std::vector<std::pair<std::string, int64_t>> all_access(const ReadTxn& t) const override {
    return note(), in_.all_access(t);
  }
  std::expected<void, std::string> update(std::string_view op, const std::function<void(Update&)>& f) override {
    return note(), in_.update(op, f);
  }
  std::expected<void, std::string> copy_to(const std::filesystem::path& d) const override { return note(), in_.copy_to(d); }
  std::expected<void, std::string> put_tags(const std::vector<cache::TagEntry>& e) override { return note(), in_.put_tags(e); }
  std::expected<bool, std::string> drop_raw(std::string_view t, std::string_view k) override {
    return note(), in_.drop_raw(t, k);
  }
  std::vector<std::string> undecodable(std::string_view t) const override { return note(), in_.undecodable(t); }

 protected:
  void end_read(void*) const noexcept override {}  // snapshots are the inner index's, released by it

 private:
  void note() const {
    ++calls;
    if (std::this_thread::get_id() == loop) ++on_loop;
  }
  cache::Index& in_;
};

// Sends `request` to 127.0.0.1:port and reads the whole answer (the server closes after it).
std::string exchange(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::write(fd, request.data(), request.size()) == ssize_t(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
    }
  }
  ::close(fd);
  return out;
}

// A server on a free loopback port whose handler routes /v2 requests to the API handlers over `ctx`.
struct Harness {
  event_base* base;
  std::unique_ptr<http::Server> server;
  Harness(api::Context& ctx, event_base* b) : base(b) {
    http::ServerOptions opts;
    opts.addr = "127.0.0.1:0";
    auto srv = http::Server::start(
        base, opts,
        [&ctx](const http::ExchangePtr& ex) {
          auto r = api::parse_route(ex->req().path);
          if (!r) return api::fail(ex, r.error().code, r.error().message, {}, r.error().status);
          if (r->kind == api::RouteKind::Manifest) return api::get_manifest(ctx, ex, *r);
          if (r->kind == api::RouteKind::Blob) return api::get_blob(ctx, ex, *r);
          if (r->kind == api::RouteKind::Tags) return api::list_tags(ctx, ex, *r);
          if (r->kind == api::RouteKind::Catalog) return api::catalog(ctx, ex, *r, [](std::string_view) { return true; });
          api::fail(ex, oci::ErrorCode::Unsupported, "not in this test", {}, 404);
        },
        nullptr);
    REQUIRE(srv);
    server = std::move(*srv);
  }
  // Runs the loop until a client thread got the answer to `request` (at most ~10 s).
  std::string ask(const std::string& method, const std::string& path) {
    std::atomic<bool> done{false};
    std::string answer;
    std::thread client([&] {
      answer = exchange(server->port(), method + " " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      done = true;
    });
    for (int i = 0; i < 1000 && !done; ++i) {
      event_base_loop(base, EVLOOP_NONBLOCK);
      if (!done) usleep(10000);
    }
    client.join();
    return answer;
  }
};

}  // namespace

TEST_CASE("index_call: a blocking index is never called on the loop thread") {
  testing::ScratchStore store("wharf-index-call");
  evthread_use_pthreads();
  event_base* base = event_base_new();
  REQUIRE(base);
  {
    LoopGuardIndex index(*store.index);
    index.loop = std::this_thread::get_id();
    const std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                             R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" +
                             std::string(64, 'c') + R"(","size":2},"layers":[]})";
    const oci::Digest mdigest = oci::digest_of(body);
    const std::string blob = "sha256:" + std::string(64, 'b');
    REQUIRE(testing::add_blob(*store.index, "team/app", blob, 1234, cache::Origin::Pushed));
    cache::ManifestRecord rec;
    rec.media_type = "application/vnd.oci.image.manifest.v1+json";
    rec.size = body.size();
    auto pub = cache::publish_manifest_bytes(*store.index, *store.blobs, body,
                                             {{}, mdigest, "team/app", rec, std::string("v1"), {}});
    REQUIRE(pub);
    REQUIRE_FALSE(*pub);

    config::Config cfg;
    util::WorkPool pool(base, 2);
    api::AccessTracker access;
    api::UploadTable uploads;
    api::Context ctx{cfg, index, *store.blobs, pool, base, access, uploads, nullptr, {}};
    Harness h(ctx, base);

    SUBCASE("the answers are the ones the index gives") {
      auto manifest = h.ask("GET", "/v2/team/app/manifests/v1");
      CHECK(manifest.starts_with("HTTP/1.1 200"));
      CHECK(manifest.find("Docker-Content-Digest: " + mdigest.str()) != std::string::npos);
      CHECK(manifest.ends_with(body));
      auto missing = h.ask("GET", "/v2/team/app/manifests/v2");
      CHECK(missing.starts_with("HTTP/1.1 404"));
      CHECK(missing.find("MANIFEST_UNKNOWN") != std::string::npos);
      auto head = h.ask("HEAD", "/v2/team/app/blobs/" + blob);
      CHECK(head.starts_with("HTTP/1.1 200"));
      CHECK(head.find("Content-Length: 1234") != std::string::npos);
      auto tags = h.ask("GET", "/v2/team/app/tags/list");
      CHECK(tags.starts_with("HTTP/1.1 200"));
      CHECK(tags.find(R"({"name":"team/app","tags":["v1"]})") != std::string::npos);
      auto catalog = h.ask("GET", "/v2/_catalog");
      CHECK(catalog.starts_with("HTTP/1.1 200"));
      CHECK(catalog.find(R"({"repositories":["team/app"]})") != std::string::npos);
      auto unknown = h.ask("GET", "/v2/other/tags/list");
      CHECK(unknown.find("NAME_UNKNOWN") != std::string::npos);
      CHECK(index.calls > 0);
      CHECK(index.on_loop == 0);
    }
    SUBCASE("an index that fails answers 503 UNAVAILABLE, off the loop too") {
      index.broken = true;
      for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
               {"GET", "/v2/team/app/manifests/v1"},
               {"HEAD", "/v2/team/app/blobs/" + blob},
               {"GET", "/v2/team/app/tags/list"},
               {"GET", "/v2/_catalog"}}) {
        CAPTURE(path);
        auto answer = h.ask(method, path);
        CHECK(answer.starts_with("HTTP/1.1 503"));
        if (method == "GET") CHECK(answer.find("connection to the database lost") != std::string::npos);
      }
      CHECK(index.on_loop == 0);
    }
    h.server.reset();
    pool.shutdown();
  }
  event_base_free(base);
}

TEST_CASE("run_index: inline for an index that does not block, the error for one that throws") {
  testing::ScratchStore store("wharf-index-call");
  evthread_use_pthreads();
  event_base* base = event_base_new();
  REQUIRE(base);
  {
    util::WorkPool pool(base, 1);
    std::optional<std::expected<bool, std::string>> got;
    api::run_index(
        *store.index, pool, [](const cache::Index& i) { return i.repo_exists(i.read(), "none"); },
        [&](std::expected<bool, std::string> r) { got = r; });
    REQUIRE(got);  // answered before run_index returned: no hop
    CHECK(*got == false);
    got.reset();
    api::run_index(
        *store.index, pool, [](const cache::Index&) -> bool { throw std::runtime_error("gone"); },
        [&](std::expected<bool, std::string> r) { got = r; });
    REQUIRE(got);
    REQUIRE_FALSE(got->has_value());
    CHECK(got->error().find("gone") != std::string::npos);
    pool.shutdown();
  }
  event_base_free(base);
}
