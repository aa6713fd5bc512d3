// Pull-through blobs: each client streamed from the one shared upstream download of its digest.
//
// A name routed to the default upstream (not named explicitly) may be a local repository that is being
// pushed for the first time: clients HEAD each blob there before uploading it. For such names anything
// but the upstream's 200 (a 401/403/404, or no answer at all) is 404 BLOB_UNKNOWN, so pushes work whether
// or not the upstream can be reached. A name that explicitly names an upstream gets 503 when it cannot be
// reached.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "src/api/context.hpp"
#include "src/api/fetch_follower.hpp"
#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"
#include "src/api/mirror.hpp"
#include "src/api/respond.hpp"
#include "src/oci/media_type.hpp"
#include "src/oci/range.hpp"
#include "src/util/number.hpp"

namespace wharf::api {

namespace {

constexpr size_t kStreamChunk = 1 << 20;
constexpr uint64_t kMinPiece = 256 << 10;
// The response head waits until this much of the blob is in (or it is verified), so a blob up to this
// size that turns out corrupt or cut short gets a clean 502 instead of a connection closed mid-body.
constexpr uint64_t kHeadHold = 1 << 20;

oci::Detail digest_detail(const std::string& digest) { return oci::Detail{{"digest", digest}}; }

oci::Detail unreachable_detail(const std::string& digest, const std::string& upstream, const std::string& why) {
  return oci::Detail{{"digest", digest}, {"upstream", upstream}, {"reason", "unreachable: " + why}};
}

// One client waiting on a shared blob download: sends the bytes as they become available.
struct BlobWaiter : FetchFollower, std::enable_shared_from_this<BlobWaiter> {
  proxy::Decision decision;
  uint64_t pos = 0, end = 0;
  bool started = false;

  void drained() { pump(); }
  // Sends the head once enough is in (see kHeadHold), then the bytes.
  void progress() {
    if (done) return;
    if (!started) {
      const bool verified = fetch->state() == proxy::FetchState::Verified;
      const bool streaming = fetch->state() == proxy::FetchState::Streaming;
      if (!verified && !(streaming && fetch->total() > kHeadHold && fetch->available() >= kHeadHold)) return;
      return head();
    }
    pump();
  }
  void head() {
    if (started || done) return;
    const uint64_t total = fetch->total();
    auto range = oci::parse_range(ex->req().header("range"), total);
    if (range.kind == oci::RangeKind::Unsatisfiable) {
      auto err = error_response(oci::ErrorCode::RangeInvalid, {}, {}, 416);
      err.header("Content-Range", "bytes */" + std::to_string(total));
      ex->respond(std::move(err));
      return detach();
    }
    http::Response res(200);
    res.cache_status = "MISS";
    res.header("Content-Type", "application/octet-stream");
    res.header("Docker-Content-Digest", fetch->digest().str());
    res.header("Accept-Ranges", "bytes");
    pos = 0;
    end = total;
    if (range.kind == oci::RangeKind::Satisfiable) {
      res.status = 206;
      pos = range.range.first;
      end = range.range.last + 1;
      res.header("Content-Range", "bytes " + std::to_string(range.range.first) + "-" +
                                      std::to_string(range.range.last) + "/" + std::to_string(total));
    }
    res.content_length = end - pos;
    started = true;
    ex->begin_stream(std::move(res));
    pump();
  }
  void pump() {
    if (!started || done) return;
    if (!ex->alive()) return detach();
    const uint64_t limit = std::min(fetch->available(), end);
    const bool complete = fetch->state() == proxy::FetchState::Verified;
    while (pos < limit && ex->stream_backlog() < kStreamChunk) {
      // Coalesce: while the client still has bytes queued, wait until a sizeable piece is ready
      // (each piece costs a dup, a sendfile and a close).
      if (!complete && limit - pos < kMinPiece && ex->stream_backlog() > 0) break;
      uint64_t n = std::min<uint64_t>(limit - pos, kStreamChunk);
      ex->stream_file(fetch->fd(), pos, n);
      pos += n;
    }
    if (pos >= end && fetch->state() == proxy::FetchState::Verified) {
      auto keep = shared_from_this();
      detach();
      ex->end_stream();
    }
  }
  void fail(int status, const std::string& body, const std::string& type) {
    if (done) return;
    auto keep = shared_from_this();
    detach();
    if (started) return ex->abort();  // mid-body: the client sees a cut connection and retries
    const std::string dstr = fetch->digest().str();
    if (!decision.explicit_upstream) {
      if (!fetch->upstream_answered())
        return api::fail(ex, oci::ErrorCode::BlobUnknown, {}, unreachable_detail(dstr, decision.upstream, fetch->failure()));
      if (status == 401 || status == 403 || status == 404) return api::fail(ex, oci::ErrorCode::BlobUnknown, {}, digest_detail(dstr));
    }
    if (status >= 400 && status < 500 && !body.empty()) {
      http::Response res(status);
      res.body = body;
      res.header("Content-Type", oci::media_type_of(type).value_or("application/json"));
      return ex->respond(std::move(res));
    }
    if (status >= 400 && status < 500) return fail_code(status);
    if (!fetch->upstream_answered())
      return api::fail(ex, oci::ErrorCode::Unavailable, "upstream " + decision.upstream + " unreachable: " + fetch->failure(),
                       unreachable_detail(dstr, decision.upstream, fetch->failure()), 503);
    api::fail(ex, oci::ErrorCode::Unavailable,
              "the upstream transfer failed" + (fetch->failure().empty() ? std::string() : ": " + fetch->failure()),
              digest_detail(dstr), 502);
  }
  void fail_code(int status) {
    if (status == 404) return api::fail(ex, oci::ErrorCode::BlobUnknown, {}, digest_detail(fetch->digest().str()));
    if (status == 429) return api::fail(ex, oci::ErrorCode::TooManyRequests);
    if (status == 401) return api::fail(ex, oci::ErrorCode::Unauthorized, "the upstream refused wharf's credentials", {}, 502);
    api::fail(ex, oci::ErrorCode::Unavailable, "upstream answered " + std::to_string(status), {}, 502);
  }
};

}  // namespace

void Mirror::get_blob(const http::ExchangePtr& ex, const Route& r, const proxy::Decision& d) {
  auto digest = oci::parse_digest(r.ref);
  if (!digest) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
  const std::string dstr = digest->str();
  const proxy::Credential cred = credential_of(ex->req());
  // proxy.forwardcredentials: nothing of a repository for a caller the upstream has not let pull it
  // (a manifest of it fetched or confirmed with the caller's account, or with the configured one).
  if (!granted(cred, d.cache_repo, GrantAge::Any)) return fail(ex, oci::ErrorCode::BlobUnknown, {}, digest_detail(dstr));
  auto lookup = [](const cache::Index& index, const proxy::Decision& dec, const oci::Digest&, const std::string& ds,
                   const proxy::Credential&) {
    auto txn = index.read();
    return index.blob_linked(txn, dec.cache_repo, ds) || index.manifest_in_repo(txn, dec.cache_repo, ds);
  };
  index_call(
      ctx_.index, ctx_.pool, ex, lookup,
      [this, ex](bool linked, const proxy::Decision& dec, const oci::Digest& dig, const std::string& ds,
                 const proxy::Credential& who) {
        if (linked) {
          ++stats_.hits;
          return api::get_blob(ctx_, ex, Route{RouteKind::Blob, dec.cache_repo, ds}, "HIT");
        }
        get_blob_unlinked_here(ex, dec, dig, who);
      },
      d, *digest, dstr, cred);
}

void Mirror::get_blob_unlinked_here(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& dig,
                                    const proxy::Credential& cred) {
  const oci::Digest* digest = &dig;
  const std::string dstr = digest->str();
  if (!ctx_.cfg.forward_credentials) return get_unlinked_blob(ex, d, *digest, cred);
  // A blob stored or in flight for another repository (perhaps another account's private one) is shared
  // only once the upstream confirms, under the caller's account, that this repository has it.
  auto* up = upstream(d.upstream);
  if (!up) return fail(ex, oci::ErrorCode::Unavailable, "no upstream named " + d.upstream, {}, 503);
  auto status = std::make_shared<int>(0);
  proxy::FetchCallbacks cb;
  cb.on_head = [status](const proxy::UpstreamResponse& u) { *status = u.status; };
  cb.on_data = [](const char*, size_t) { return true; };
  cb.on_done = [this, ex, d, dig = *digest, cred, status](bool ok, const std::string& error) {
    const std::string ds = dig.str();
    if (ok && *status == 200) return get_unlinked_blob(ex, d, dig, cred);
    if (!ok && d.explicit_upstream)
      return fail(ex, oci::ErrorCode::Unavailable, "upstream " + d.upstream + " unreachable: " + error,
                  unreachable_detail(ds, d.upstream, error), 503);
    if (!ok) return fail(ex, oci::ErrorCode::BlobUnknown, {}, unreachable_detail(ds, d.upstream, error));
    if (*status == 429) return fail(ex, oci::ErrorCode::TooManyRequests);
    fail(ex, oci::ErrorCode::BlobUnknown, {}, digest_detail(ds));
  };
  up->fetch("HEAD", "/v2/" + d.remote_repo + "/blobs/" + dstr, d.remote_repo, {}, std::move(cb), cred);
}

void Mirror::get_unlinked_blob(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& dig,
                               const proxy::Credential& cred) {
  const oci::Digest* digest = &dig;
  const std::string dstr = digest->str();
  const bool head = ex->req().method == "HEAD";
  (void)digest;
  auto lookup = [](const cache::Index& index, const proxy::Decision&, const oci::Digest&, const std::string& ds,
                   const proxy::Credential&) {
    auto txn = index.read();
    return index.blob(txn, ds);
  };
  index_call(
      ctx_.index, ctx_.pool, ex, lookup,
      [this, ex, head](std::optional<cache::BlobRecord> rec, const proxy::Decision& dec, const oci::Digest& dg,
                       const std::string& ds, const proxy::Credential& who) {
        // Stored for another repository: link it here too and serve it. Not for a HEAD on a name that may
        // be a push target (see above): linking would make the name an upstream's and refuse the push.
        if (rec && (!head || dec.explicit_upstream) && ctx_.store.stat_recorded(dg, cache::Recorded::of(*rec))) {
          std::string repo = dec.cache_repo;
          uint64_t size = rec->size;
          auto* index = &ctx_.index;
          ctx_.pool.submit([index, repo, ds, size] { (void)index->link_blob(repo, ds, size, cache::Origin::Proxied); },
                           [this, ex, repo, ds] {
                             ++stats_.hits;
                             api::get_blob(ctx_, ex, Route{RouteKind::Blob, repo, ds}, "HIT");
                           });
          return;
        }
        fetch_unlinked_blob(ex, dec, dg, who);
      },
      d, dig, dstr, cred);
}

void Mirror::fetch_unlinked_blob(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& dig,
                                 const proxy::Credential& cred) {
  const oci::Digest* digest = &dig;
  const std::string dstr = digest->str();
  const bool head = ex->req().method == "HEAD";
  if (auto left = fetches_->known_bad(*digest))
    return fail(ex, oci::ErrorCode::Unavailable,
                "the upstream recently served bytes that do not match " + dstr + "; not asking again for " +
                    std::to_string(left->count()) + " s",
                digest_detail(dstr), 502);
  auto* up = upstream(d.upstream);
  if (!up) return fail(ex, oci::ErrorCode::Unavailable, "no upstream named " + d.upstream, {}, 503);
  if (head) {
    // Answer from the upstream's HEAD; do not download the blob for a HEAD.
    auto res = std::make_shared<http::Response>(404);
    auto bad_length = std::make_shared<bool>(false);
    proxy::FetchCallbacks cb;
    cb.on_head = [res, bad_length](const proxy::UpstreamResponse& u) {
      res->status = u.status;
      if (u.status == 200) {
        res->header("Content-Type", "application/octet-stream");
        res->header("Accept-Ranges", "bytes");
        const auto length = util::parse_u64_trimmed(u.header("content-length"));
        if (length) res->content_length = *length;
        else *bad_length = true;
      }
    };
    cb.on_data = [](const char*, size_t) { return true; };
    proxy::Decision dec = d;
    cb.on_done = [ex, res, dstr, dec, bad_length](bool ok, const std::string& error) {
      if (!ok && !dec.explicit_upstream)
        return fail(ex, oci::ErrorCode::BlobUnknown, {}, unreachable_detail(dstr, dec.upstream, error));
      if (!ok)
        return fail(ex, oci::ErrorCode::Unavailable, "upstream " + dec.upstream + " unreachable: " + error,
                    unreachable_detail(dstr, dec.upstream, error), 503);
      if (res->status == 200 && *bad_length)
        return fail(ex, oci::ErrorCode::Unavailable, "the upstream sent no valid Content-Length for " + dstr,
                    digest_detail(dstr), 502);
      if (res->status != 200) {
        const bool unknown = res->status == 404 || (!dec.explicit_upstream && (res->status == 401 || res->status == 403));
        return fail(ex, oci::ErrorCode::BlobUnknown, {}, digest_detail(dstr), unknown ? 0 : 502);
      }
      res->header("Docker-Content-Digest", dstr);
      res->cache_status = "MISS";
      ex->respond(std::move(*res));
    };
    up->fetch("HEAD", "/v2/" + d.remote_repo + "/blobs/" + dstr, d.remote_repo, {}, std::move(cb), cred);
    return;
  }
  // Fronts sharing a database: one of them fetches a cold blob for the fleet.
  if (ctx_.index.blocks() && !fetches_->in_flight(*digest) && !fleet_held_.count(dstr))
    return fleet_fetch_blob(ex, d, *digest, cred, FleetWait{std::chrono::steady_clock::now() + std::chrono::minutes(10), 0, nullptr});
  ++stats_.misses;
  auto fetch = fetches_->get_or_start(*up, d.remote_repo, d.cache_repo, *digest, proxy::FetchPriority::Client,
                                      std::nullopt, cred);
  auto w = std::make_shared<BlobWaiter>();
  w->ex = ex;
  w->fetch = fetch;
  w->decision = d;
  if (fetch->state() == proxy::FetchState::Failed) {
    w->done = true;
    return fail(ex, oci::ErrorCode::Unavailable, "cannot start the upstream download: " + fetch->failure(), {}, 503);
  }
  follow_fetch(w);
}

void Mirror::prefetch(const proxy::Decision& d, const std::vector<oci::Descriptor>& blobs, const proxy::Credential& cred) {
  auto* up = upstream(d.upstream);
  if (!up || up->backing_off() || blobs.empty()) return;
  // Which blobs are stored (recorded for some repository, and in the store): read where the index may
  // block. With a shared index, a blob without one is prefetched only by the front that takes the fleet's
  // lease on it (fleet_prefetch_claims); the others' clients wait on that front's download.
  auto recorded = [owner = owner_, store = &ctx_.store](cache::Index& index, const std::vector<oci::Descriptor>& list,
                                                       const proxy::Decision&, const proxy::Credential&) {
    std::vector<bool> out;
    {
      auto txn = index.read();
      for (const auto& b : list) {
        auto rec = index.blob(txn, b.digest.str());
        out.push_back(rec && store->stat_recorded(b.digest, cache::Recorded::of(*rec)));
      }
    }
    if (index.blocks()) fleet_prefetch_claims(index, owner, list, out);
    return out;
  };
  run_index(
      ctx_.index, ctx_.pool, recorded,
      [this](std::expected<std::vector<bool>, std::string> known, const std::vector<oci::Descriptor>& list,
             const proxy::Decision& dec, const proxy::Credential& who) {
        if (!known) return spdlog::warn("prefetch for {} skipped: {}", dec.cache_repo, known.error());
        auto* up = upstream(dec.upstream);
        if (!up) return;
        size_t started = 0;
        const bool fleet = ctx_.index.blocks();
        for (size_t i = 0; i < list.size(); ++i) {
          const auto& b = list[i];
          if (fetches_->in_flight(b.digest) || fetches_->known_bad(b.digest)) continue;
          if ((*known)[i]) continue;  // stored, or another front's lease
          // Held here: downloaded by this front just now (published after the record was read), or failing.
          if (fleet && fleet_held_.count(b.digest.str())) continue;
          ++stats_.prefetched;
          ++started;
          (void)fetches_->get_or_start(*up, dec.remote_repo, dec.cache_repo, b.digest, proxy::FetchPriority::Prefetch,
                                       static_cast<uint64_t>(b.size), who);
          if (fleet) {
            fleet_held_[b.digest.str()] = true;
            after(kFleetRenewEvery, [this, dig = b.digest] { fleet_renew(dig); });
          }
        }
        if (started) spdlog::debug("prefetching {} blob(s) of {}", started, dec.cache_repo);
      },
      blobs, d, cred);
}

}  // namespace wharf::api
