#include "src/api/inflight_relay.hpp"

#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include "proxy/http_client.hpp"
#include "src/api/inflight.hpp"
#include "src/util/number.hpp"

namespace wharf::api {

namespace {

constexpr size_t kHoldAbove = 1 << 20;  // the client's queued bytes above which reading pauses

struct Relay {
  proxy::HttpClient* client = nullptr;
  uint64_t id = 0;
  http::ExchangePtr ex;
  oci::Digest digest;
  std::optional<oci::Hasher> hasher;
  uint64_t* relayed = nullptr;
  std::function<void(RelayEnd)> done;
  uint64_t total = 0, got = 0;
  bool refused = false;  // the owner's answer was no stream of the blob
  int status = 0;         // the owner's status
  bool started = false;  // the client's head went out
  bool over = false;

  void detach() {
    over = true;
    ex->on_drain(nullptr);
    ex->on_close(nullptr);
  }
  void head(const proxy::HttpHead& h) {
    status = h.status;
    const auto length = util::parse_u64_trimmed(h.header("content-length"));
    if (h.status != 200 || !length || h.header("docker-content-digest") != digest.str()) {
      refused = true;
      return;
    }
    if (!ex->alive()) return;
    total = *length;
    hasher.emplace(digest.algo);
    http::Response res(200);
    res.cache_status = "MISS";
    res.header("Content-Type", "application/octet-stream");
    res.header("Docker-Content-Digest", digest.str());
    res.header("Accept-Ranges", "bytes");
    res.content_length = total;
    started = true;
    ex->begin_stream(std::move(res));
  }
  bool data(const char* p, size_t n) {
    if (refused) return true;  // the owner's small error body
    if (!started || !ex->alive() || got + n > total) return false;
    hasher->update(p, n);
    got += n;
    *relayed += n;
    ex->stream_data(std::string_view(p, n));
    return true;
  }
  void end(bool ok, const std::string& error) {
    if (over) return;
    detach();
    auto cb = std::move(done);
    if (!started) return cb(status == 401 ? RelayEnd::Unauthorized : RelayEnd::NotStarted);
    if (ok && got == total && hasher->finish() == digest) {
      ex->end_stream();
      return cb(RelayEnd::Completed);
    }
    spdlog::warn("relaying {} from another front failed after {} of {} bytes ({}); the client's connection is cut",
                 digest.str(), got, total, ok ? std::string("the bytes do not match the digest") : error);
    ex->abort();
    cb(RelayEnd::Cut);
  }
};

}  // namespace

void relay_inflight(proxy::HttpClient& client, const RelaySource& src, const http::ExchangePtr& ex,
                    const oci::Digest& digest, uint64_t* relayed, std::function<void(RelayEnd)> done) {
  auto r = std::make_shared<Relay>();
  r->client = &client;
  r->ex = ex;
  r->digest = digest;
  r->relayed = relayed;
  r->done = std::move(done);
  proxy::HttpRequest req;
  req.url = std::string(src.tls ? "https://" : "http://").append(src.address).append(kInflightPath).append(digest.str());
  req.headers.push_back(std::string(kInflightTokenHeader).append(": ").append(src.token));
  // The token authenticates the request and the digest check the bytes; the owner's certificate need
  // not name its internal address.
  req.verify_tls = false;
  req.connect_timeout = std::chrono::milliseconds(3000);
  req.first_byte_timeout = std::chrono::milliseconds(10'000);
  // The owner waits on its upstream at most this long between pieces too.
  req.stall_timeout = std::chrono::milliseconds(60'000);
  proxy::HttpCallbacks cb;
  cb.on_head = [r](const proxy::HttpHead& h) { r->head(h); };
  cb.on_data = [r](const char* p, size_t n) { return r->data(p, n); };
  cb.hold = [r] { return r->started && r->ex->alive() && r->ex->stream_backlog() >= kHoldAbove; };
  cb.on_done = [r](bool ok, const std::string& error) { r->end(ok, error); };
  r->id = client.start(std::move(req), std::move(cb));
  std::weak_ptr<Relay> weak = r;
  ex->on_drain([weak] {
    if (auto p = weak.lock()) p->client->resume(p->id);
  });
  ex->on_close([weak] {
    auto p = weak.lock();
    if (!p || p->over) return;
    p->detach();
    p->client->cancel(p->id);  // the client hung up: nobody to tell
  });
}

}  // namespace wharf::api
