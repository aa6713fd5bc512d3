// The owner's side of in-flight streaming: another front reads a download running here, from its staged
// file, at the pace that front's socket takes it (nothing is buffered beyond one queued piece).
#include "src/api/inflight.hpp"

#include <unistd.h>

#include <ctime>
#include <memory>

#include "proxy/blob_fetch.hpp"
#include "src/api/fetch_follower.hpp"
#include "src/api/inflight_token.hpp"
#include "src/api/respond.hpp"
#include "src/util/number.hpp"

namespace wharf::api {

namespace {

constexpr size_t kPiece = 1 << 20;


// Streams one download to one reading front.
struct InflightSender : FetchFollower, std::enable_shared_from_this<InflightSender> {
  uint64_t pos = 0;
  bool started = false;

  void drained() { progress(); }
  void progress() {
    if (done) return;
    if (!ex->alive()) return detach();
    if (!started) {
      const auto st = fetch->state();
      if (st != proxy::FetchState::Streaming && st != proxy::FetchState::Verified) return;
      http::Response res(200);
      res.cache_status = "INFLIGHT";
      res.header("Content-Type", "application/octet-stream");
      res.header("Docker-Content-Digest", fetch->digest().str());
      res.content_length = fetch->total();
      started = true;
      ex->begin_stream(std::move(res));
    }
    // available() holds the last byte back until the digest is verified: the reader never gets a
    // complete body that is wrong.
    const uint64_t limit = std::min(fetch->available(), fetch->total());
    while (pos < limit && ex->stream_backlog() < kPiece) {
      const uint64_t n = std::min<uint64_t>(limit - pos, kPiece);
      ex->stream_file(fetch->fd(), pos, n);
      pos += n;
    }
    if (pos >= fetch->total() && fetch->state() == proxy::FetchState::Verified) {
      auto keep = shared_from_this();
      detach();
      ex->end_stream();
    }
  }
  void fail(int, const std::string&, const std::string&) {
    if (done) return;
    auto keep = shared_from_this();
    detach();
    if (started) return ex->abort();
    api::fail(ex, oci::ErrorCode::BlobUnknown, "the download of this blob failed here",
              oci::Detail{{"digest", fetch->digest().str()}}, 404);
  }
};

}  // namespace

std::string internal_address(const config::Config& cfg) {
  if (!cfg.http_internal_addr.empty()) return cfg.http_internal_addr;
  const std::string& a = cfg.http_addr;
  const size_t colon = a.rfind(':');
  if (colon == std::string::npos) return {};
  std::string host = a.substr(0, colon);
  const std::string port = a.substr(colon + 1);
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0 || !name[0]) return {};
    host = name;
  }
  std::string out = host + ":" + port;
  return owner_address("@" + out).empty() ? std::string() : out;
}

void serve_inflight(const config::Config& cfg, proxy::FetchTable* fetches, const http::ExchangePtr& ex) {
  ex->req().route = "inflight";
  if (cfg.http_secret.empty()) return fail(ex, oci::ErrorCode::Unsupported, "no such endpoint", {}, 404);
  if (ex->req().method != "GET")
    return fail(ex, oci::ErrorCode::Unsupported, "method " + ex->req().method + " is not allowed on this endpoint",
                {}, 405);
  const std::string_view raw = std::string_view(ex->req().path).substr(kInflightPath.size());
  const auto check = check_inflight_token(cfg.http_secret, raw, ex->req().header("x-wharf-inflight-token"),
                                          static_cast<int64_t>(std::time(nullptr)));
  if (check != InflightTokenCheck::Valid)
    return fail(ex, oci::ErrorCode::Unauthorized,
                check == InflightTokenCheck::Expired ? "the in-flight token has expired" : "invalid in-flight token",
                {}, 401);
  auto digest = oci::parse_digest(raw);
  if (!digest) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + std::string(raw) + "'");
  auto fetch = fetches ? fetches->find(*digest) : nullptr;
  if (!fetch || fetch->state() == proxy::FetchState::Failed)
    return fail(ex, oci::ErrorCode::BlobUnknown, "no download of this blob runs on this front",
                oci::Detail{{"digest", digest->str()}}, 404);
  auto s = std::make_shared<InflightSender>();
  s->ex = ex;
  s->fetch = fetch;
  follow_fetch(s);
}

}  // namespace wharf::api
