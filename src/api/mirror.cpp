// Pull-through serving: manifests with a freshness window and stale-if-error, blobs streamed from one
// shared upstream download per digest, tags lists passed through.
#include "src/api/mirror.hpp"

#include <spdlog/spdlog.h>

#include <ctime>

#include <nlohmann/json.hpp>

#include "src/api/context.hpp"
#include "src/api/handlers.hpp"
#include "src/api/respond.hpp"
#include "src/oci/manifest.hpp"
#include "src/oci/names.hpp"
#include "src/oci/range.hpp"

namespace wharf::api {

namespace {

constexpr size_t kStreamChunk = 1 << 20;
constexpr uint64_t kMinPiece = 256 << 10;
const std::vector<std::string> kManifestAccept = {
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json"};

bool is_digest_ref(const std::string& ref) { return ref.find(':') != std::string::npos; }

// Fetches a small JSON document (tags list, catalog) from `up`; done(body) on a 200, done(nullopt) otherwise.
void fetch_listing(proxy::Upstream& up, std::string path, std::string scope_repo,
                   std::function<void(std::optional<std::string>)> done) {
  auto status = std::make_shared<int>(0);
  auto body = std::make_shared<std::string>();
  proxy::FetchCallbacks cb;
  cb.on_head = [status](const proxy::UpstreamResponse& res) { *status = res.status; };
  cb.on_data = [body](const char* p, size_t n) {
    if (body->size() + n > (8u << 20)) return false;
    body->append(p, n);
    return true;
  };
  cb.on_done = [status, body, done = std::move(done)](bool ok, const std::string&) {
    if (!ok || *status != 200) return done(std::nullopt);
    done(std::move(*body));
  };
  up.fetch("GET", std::move(path), std::move(scope_repo), {}, std::move(cb));
}

// The client's paging parameters (n, last) as a query string for the upstream ("" or "?n=..").
std::string paging_query(const http::Request& req) {
  std::string q;
  for (const char* k : {"n", "last"})
    if (auto v = req.query_param(k)) q += std::string(q.empty() ? "?" : "&") + k + "=" + http::percent_encode(*v);
  return q;
}

// A listing passed through from the upstream.
void respond_listing(const http::ExchangePtr& ex, std::string body) {
  auto res = json_response(200, std::move(body));
  res.cache_status = "MISS";
  ex->respond(std::move(res));
}

// One client waiting on a shared blob download: sends the bytes as they become available.
struct BlobWaiter : std::enable_shared_from_this<BlobWaiter> {
  http::ExchangePtr ex;
  std::shared_ptr<proxy::BlobFetch> fetch;
  uint64_t listener = 0;
  uint64_t pos = 0, end = 0;
  bool started = false;
  bool done = false;

  void detach() {
    if (done) return;
    done = true;
    fetch->remove_listener(listener);
    ex->on_drain(nullptr);
    ex->on_close(nullptr);
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
    if (ex->req().method == "HEAD") return detach();
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
    if (status >= 400 && status < 500 && !body.empty()) {
      http::Response res(status);
      res.body = body;
      res.header("Content-Type", type.empty() ? "application/json" : type);
      return ex->respond(std::move(res));
    }
    if (status >= 400 && status < 500) return fail_code(status);
    api::fail(ex, oci::ErrorCode::Unavailable, "the upstream transfer failed", {}, 502);
  }
  void fail_code(int status) {
    if (status == 404) return api::fail(ex, oci::ErrorCode::BlobUnknown, {}, R"({"digest":")" + fetch->digest().str() + "\"}");
    if (status == 429) return api::fail(ex, oci::ErrorCode::TooManyRequests);
    if (status == 401) return api::fail(ex, oci::ErrorCode::Unauthorized, "the upstream refused wharf's credentials", {}, 502);
    api::fail(ex, oci::ErrorCode::Unavailable, "upstream answered " + std::to_string(status), {}, 502);
  }
};

}  // namespace

Mirror::Mirror(Context& ctx, proxy::HttpClient& client, proxy::TokenCache& tokens) : ctx_(ctx) {
  for (const auto& u : ctx.cfg.upstreams) {
    if (upstreams_.count(u.name)) continue;
    upstreams_.emplace(u.name, std::make_unique<proxy::Upstream>(client, tokens, u));
    table_.upstreams.push_back(u.name);
  }
  table_.default_upstream = ctx.cfg.default_upstream;
  table_.local_namespaces = ctx.cfg.local_namespaces;
  auto* pool = &ctx.pool;
  auto* index = &ctx.index;
  auto* store = &ctx.store;
  fetches_ = std::make_unique<proxy::FetchTable>(
      ctx.store,
      [pool](std::function<void()> work, std::function<void()> done) { pool->submit(std::move(work), std::move(done)); },
      [index, store](const std::vector<proxy::VerifiedBlob>& blobs) {
        std::vector<cache::BlobStore::Publication> files;
        for (const auto& b : blobs) files.push_back({b.tmp_path, b.digest});
        auto errors = store->publish_all(files);
        std::vector<cache::Index::NewLink> links;
        for (size_t i = 0; i < blobs.size(); ++i)
          if (errors[i].empty()) links.push_back({blobs[i].cache_repo, blobs[i].digest.str(), blobs[i].size, cache::Origin::Proxied});
        if (auto r = index->link_blobs(links); !r)
          for (auto& e : errors)
            if (e.empty()) e = r.error();
        return errors;
      });
}

Mirror::~Mirror() = default;

proxy::Decision Mirror::decide(const std::string& name, const std::string& ns) const {
  bool local_exists = false;
  if (!upstreams_.empty()) {
    auto txn = ctx_.index.read();
    local_exists = ctx_.index.repo_exists(txn, name);
  }
  return proxy::route(table_, name, ns, local_exists);
}

void Mirror::observe_upstreams(std::function<void(const std::string&, int, double)> observer) {
  for (const auto& [name, up] : upstreams_)
    up->set_observer([observer, name = name](int status, double secs) { observer(name, status, secs); });
}

std::vector<std::pair<std::string, double>> Mirror::rate_limits() const {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& [name, up] : upstreams_) {
    std::string remaining = up->rate_limit().remaining;  // e.g. "97;w=21600"
    double v = -1;
    try {
      if (!remaining.empty()) v = std::stod(remaining.substr(0, remaining.find(';')));
    } catch (const std::exception&) {
    }
    out.emplace_back(name, v);
  }
  return out;
}

proxy::Upstream* Mirror::upstream(const std::string& name) const {
  auto it = upstreams_.find(name);
  return it == upstreams_.end() ? nullptr : it->second.get();
}

void Mirror::serve_cached(const http::ExchangePtr& ex, const proxy::Decision& d, const std::string& ref,
                          const char* status) {
  api::get_manifest(ctx_, ex, Route{RouteKind::Manifest, d.cache_repo, ref}, status);
}

void Mirror::serve_fetched(const http::ExchangePtr& ex, const FetchedManifest& m, const char* cache_status) {
  http::Response res(200);
  res.cache_status = cache_status;
  res.header("Content-Type", m.content_type);
  res.header("Docker-Content-Digest", m.digest);
  res.header("ETag", "\"" + m.digest + "\"");
  if (ex->req().method == "HEAD") res.content_length = m.body.size();
  else res.body = m.body;
  ex->respond(std::move(res));
}

void Mirror::pass_error(const http::ExchangePtr& ex, const FetchedManifest& m, const std::string& what) {
  ++stats_.upstream_errors;
  if (!m.reachable) return fail(ex, oci::ErrorCode::Unavailable, "upstream unreachable: " + m.body, {}, 503);
  if (m.status == 429) return fail(ex, oci::ErrorCode::TooManyRequests, "the upstream's rate limit was reached");
  if (m.status >= 400 && m.status < 500 && m.status != 401 && !m.body.empty() && m.body.front() == '{') {
    http::Response res(m.status);
    res.body = m.body;
    res.header("Content-Type", "application/json; charset=utf-8");
    return ex->respond(std::move(res));
  }
  if (m.status == 404) return fail(ex, oci::ErrorCode::ManifestUnknown, what + " not found upstream");
  if (m.status == 401 || m.status == 403) return fail(ex, oci::ErrorCode::Denied, "the upstream refused access to " + what);
  fail(ex, oci::ErrorCode::Unavailable, "upstream answered " + std::to_string(m.status) + " for " + what, {}, 502);
}

void Mirror::prefetch(const proxy::Decision& d, const std::vector<std::string>& blobs) {
  auto* up = upstream(d.upstream);
  if (!up || up->backing_off() || blobs.empty()) return;
  std::vector<oci::Digest> wanted;
  {
    auto txn = ctx_.index.read();
    for (const auto& b : blobs) {
      auto digest = oci::parse_digest(b);
      if (!digest || fetches_->in_flight(*digest)) continue;
      if (ctx_.index.blob(txn, b) && ctx_.store.stat(*digest)) continue;  // stored (for this or another repo)
      wanted.push_back(*digest);
    }
  }
  for (const auto& digest : wanted) {
    ++stats_.prefetched;
    (void)fetches_->get_or_start(*up, d.remote_repo, d.cache_repo, digest);
  }
  if (!wanted.empty()) spdlog::debug("prefetching {} blob(s) of {}", wanted.size(), d.cache_repo);
}

void Mirror::fetch_manifest(const proxy::Decision& d, const std::string& ref, std::function<void(FetchedManifest)> done) {
  const std::string key = d.cache_repo + '\0' + ref;
  auto& waiters = manifest_waiters_[key];
  waiters.push_back(std::move(done));
  if (waiters.size() > 1) return;  // a fetch for the same manifest is already under way
  auto finish = [this, key](FetchedManifest m) {
    auto node = manifest_waiters_.extract(key);
    if (node.empty()) return;
    for (auto& cb : node.mapped()) cb(m);
  };
  auto* up = upstream(d.upstream);
  if (!up || up->backing_off()) {
    FetchedManifest m;
    m.reachable = up != nullptr;
    m.status = up ? 429 : 503;
    m.body = up ? "backing off after a 429" : "no such upstream";
    return finish(std::move(m));
  }
  auto m = std::make_shared<FetchedManifest>();
  proxy::FetchCallbacks cb;
  cb.on_head = [m](const proxy::UpstreamResponse& res) {
    m->status = res.status;
    m->content_type = std::string(res.header("content-type"));
  };
  cb.on_data = [m](const char* p, size_t n) {
    if (m->body.size() + n > oci::kMaxManifestBytes) return false;
    m->body.append(p, n);
    return true;
  };
  proxy::Decision dec = d;
  cb.on_done = [this, m, dec, ref, finish](bool ok, const std::string& error) {
    if (!ok) {
      m->reachable = false;
      m->status = 503;
      m->body = error;
      return finish(std::move(*m));
    }
    if (m->status != 200) return finish(std::move(*m));
    // Verify and record the manifest before anyone is told it exists.
    auto info = oci::parse_manifest(m->body, m->content_type);
    oci::Digest digest = oci::digest_of(m->body);
    if (is_digest_ref(ref)) {
      auto want = oci::parse_digest(ref);
      if (want && want->algo != digest.algo) digest = oci::digest_of(m->body, want->algo);
      if (!want || !(digest == *want)) {
        m->status = 502;
        m->body = "upstream manifest does not match digest " + ref;
        return finish(std::move(*m));
      }
    }
    if (!info) {
      m->status = 502;
      m->body = "upstream sent an invalid manifest: " + info.error().message;
      return finish(std::move(*m));
    }
    m->digest = digest.str();
    if (m->content_type.empty() || m->content_type == "application/json") m->content_type = info->media_type;
    cache::ManifestRecord rec;
    rec.media_type = m->content_type;
    rec.size = m->body.size();
    rec.origin = cache::Origin::Proxied;
    rec.created = time(nullptr);
    rec.artifact_type = info->artifact_type;
    rec.annotations_json = info->annotations_json;
    if (info->subject) rec.subject = info->subject->digest.str();
    if (info->config) rec.blobs.push_back(info->config->digest.str());
    for (const auto& l : info->layers) rec.blobs.push_back(l.digest.str());
    for (const auto& c : info->manifests) rec.children.push_back(c.digest.str());
    std::optional<std::string> tag;
    if (!is_digest_ref(ref)) tag = ref;
    // Serve at once; the manifest stays findable in memory until it is durable in the store.
    const std::string pkey = dec.cache_repo + '\0' + m->digest;
    pending_[pkey] = std::make_shared<const FetchedManifest>(*m);
    if (tag) pending_tags_[dec.cache_repo + '\0' + *tag] = m->digest;
    finish(*m);
    if (ctx_.cfg.prefetch_blobs) prefetch(dec, rec.blobs);
    auto err = std::make_shared<std::string>();
    ctx_.pool.submit(
        [this, m, digest, rec = std::move(rec), tag, dec, err] {
          auto w = ctx_.store.write(digest, m->body);
          if (!w) {
            *err = w.error();
            return;
          }
          auto p = ctx_.index.put_manifest(dec.cache_repo, digest.str(), rec,
                                           tag ? std::optional<std::string_view>(*tag) : std::nullopt);
          if (!p) *err = p.error();
        },
        [this, m, err, dec, tag, pkey] {
          if (!err->empty()) spdlog::error("caching manifest {} failed: {}", m->digest, *err);
          else if (tag) validated_[dec.cache_repo + '\0' + *tag] = std::chrono::steady_clock::now();
          pending_.erase(pkey);
          if (tag) {
            auto it = pending_tags_.find(dec.cache_repo + '\0' + *tag);
            if (it != pending_tags_.end() && it->second == m->digest) pending_tags_.erase(it);
          }
        });
  };
  up->fetch("GET", "/v2/" + d.remote_repo + "/manifests/" + ref, d.remote_repo, kManifestAccept, std::move(cb));
}

void Mirror::get_manifest(const http::ExchangePtr& ex, const Route& r, const proxy::Decision& d) {
  if (!pending_.empty()) {  // fetched moments ago, still being written
    std::string digest = r.ref;
    if (!is_digest_ref(r.ref)) {
      auto t = pending_tags_.find(d.cache_repo + '\0' + r.ref);
      if (t != pending_tags_.end()) digest = t->second;
    }
    auto p = pending_.find(d.cache_repo + '\0' + digest);
    if (p != pending_.end()) {
      ++stats_.hits;
      return serve_fetched(ex, *p->second, "HIT");
    }
  }
  std::optional<std::string> cached_digest;
  {
    auto txn = ctx_.index.read();
    if (is_digest_ref(r.ref)) {
      auto want = oci::parse_digest(r.ref);
      if (!want) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
      if (ctx_.index.manifest_in_repo(txn, d.cache_repo, want->str())) cached_digest = want->str();
    } else {
      if (!oci::valid_tag(r.ref)) return fail(ex, oci::ErrorCode::ManifestUnknown, "invalid tag '" + r.ref + "'", {}, 404);
      cached_digest = ctx_.index.tag(txn, d.cache_repo, r.ref);
    }
  }
  const std::string ref = r.ref;
  if (cached_digest && is_digest_ref(ref)) {  // immutable: never asks the upstream again
    ++stats_.hits;
    return serve_cached(ex, d, ref, "HIT");
  }
  if (cached_digest) {
    const std::string key = d.cache_repo + '\0' + ref;
    auto it = validated_.find(key);
    if (it != validated_.end() && std::chrono::steady_clock::now() - it->second < ctx_.cfg.tag_freshness) {
      ++stats_.hits;
      return serve_cached(ex, d, ref, "HIT");
    }
    auto* up = upstream(d.upstream);
    if (!up || up->backing_off()) {
      ++stats_.stale;
      spdlog::warn("serving stale {}:{} (upstream {} backing off)", d.cache_repo, ref, d.upstream);
      return serve_cached(ex, d, ref, "STALE");
    }
    // Revalidate with a HEAD (free against Docker Hub's pull limit); GET only if the digest changed.
    auto status = std::make_shared<int>(0);
    auto remote_digest = std::make_shared<std::string>();
    proxy::FetchCallbacks cb;
    cb.on_head = [status, remote_digest](const proxy::UpstreamResponse& res) {
      *status = res.status;
      *remote_digest = std::string(res.header("docker-content-digest"));
    };
    cb.on_data = [](const char*, size_t) { return true; };
    proxy::Decision dec = d;
    std::string cached = *cached_digest;
    cb.on_done = [this, ex, dec, ref, key, cached, status, remote_digest](bool ok, const std::string& error) {
      if (!ok || *status >= 500 || *status == 429) {
        ++stats_.stale;
        spdlog::warn("serving stale {}:{}: upstream {}", dec.cache_repo, ref, ok ? std::to_string(*status) : error);
        return serve_cached(ex, dec, ref, "STALE");
      }
      if (*status == 200 && *remote_digest == cached) {
        validated_[key] = std::chrono::steady_clock::now();
        ++stats_.revalidated;
        return serve_cached(ex, dec, ref, "REVALIDATED");
      }
      // Changed (or no digest header): fetch the new manifest.
      fetch_manifest(dec, ref, [this, ex, dec, ref](FetchedManifest m) {
        if (m.status == 200) {
          ++stats_.misses;
          return serve_fetched(ex, m, "MISS");
        }
        if (!m.reachable || m.status >= 500 || m.status == 429) {
          ++stats_.stale;
          return serve_cached(ex, dec, ref, "STALE");
        }
        pass_error(ex, m, dec.remote_repo + ":" + ref);
      });
    };
    up->fetch("HEAD", "/v2/" + d.remote_repo + "/manifests/" + ref, d.remote_repo, kManifestAccept, std::move(cb));
    return;
  }
  proxy::Decision dec = d;
  fetch_manifest(d, ref, [this, ex, dec, ref](FetchedManifest m) {
    if (m.status != 200) return pass_error(ex, m, dec.remote_repo + ":" + ref);
    ++stats_.misses;
    serve_fetched(ex, m, "MISS");
  });
}

void Mirror::get_blob(const http::ExchangePtr& ex, const Route& r, const proxy::Decision& d) {
  auto digest = oci::parse_digest(r.ref);
  if (!digest) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
  const std::string dstr = digest->str();
  std::optional<cache::BlobRecord> rec;
  bool linked = false;
  {
    auto txn = ctx_.index.read();
    linked = ctx_.index.blob_linked(txn, d.cache_repo, dstr) || ctx_.index.manifest_in_repo(txn, d.cache_repo, dstr);
    if (!linked) rec = ctx_.index.blob(txn, dstr);
  }
  if (linked) {
    ++stats_.hits;
    return api::get_blob(ctx_, ex, Route{RouteKind::Blob, d.cache_repo, dstr}, "HIT");
  }
  if (rec && ctx_.store.stat(*digest)) {
    // Already stored for another repository: link it here too and serve it.
    std::string repo = d.cache_repo;
    uint64_t size = rec->size;
    auto* index = &ctx_.index;
    ctx_.pool.submit([index, repo, dstr, size] { (void)index->link_blob(repo, dstr, size, cache::Origin::Proxied); },
                     [this, ex, repo, dstr] {
                       ++stats_.hits;
                       api::get_blob(ctx_, ex, Route{RouteKind::Blob, repo, dstr}, "HIT");
                     });
    return;
  }
  auto* up = upstream(d.upstream);
  if (!up) return fail(ex, oci::ErrorCode::Unavailable, "no upstream named " + d.upstream, {}, 503);
  if (ex->req().method == "HEAD") {
    // Answer from the upstream's HEAD; do not download the blob for a HEAD.
    auto res = std::make_shared<http::Response>(404);
    proxy::FetchCallbacks cb;
    cb.on_head = [res](const proxy::UpstreamResponse& u) {
      res->status = u.status;
      if (u.status == 200) {
        res->header("Content-Type", "application/octet-stream");
        res->header("Accept-Ranges", "bytes");
        auto cl = u.header("content-length");
        res->content_length = cl.empty() ? 0 : std::stoull(std::string(cl));
      }
    };
    cb.on_data = [](const char*, size_t) { return true; };
    cb.on_done = [ex, res, dstr](bool ok, const std::string&) {
      if (!ok) return fail(ex, oci::ErrorCode::Unavailable, "upstream unreachable", {}, 503);
      if (res->status != 200) return fail(ex, oci::ErrorCode::BlobUnknown, {}, R"({"digest":")" + dstr + "\"}", res->status == 404 ? 0 : 502);
      res->header("Docker-Content-Digest", dstr);
      res->cache_status = "MISS";
      ex->respond(std::move(*res));
    };
    up->fetch("HEAD", "/v2/" + d.remote_repo + "/blobs/" + dstr, d.remote_repo, {}, std::move(cb));
    return;
  }
  ++stats_.misses;
  auto fetch = fetches_->get_or_start(*up, d.remote_repo, d.cache_repo, *digest);
  auto w = std::make_shared<BlobWaiter>();
  w->ex = ex;
  w->fetch = fetch;
  if (fetch->state() == proxy::FetchState::Failed) {
    w->done = true;
    return fail(ex, oci::ErrorCode::Unavailable, "cannot start the upstream download", {}, 503);
  }
  proxy::FetchListener l;
  std::weak_ptr<BlobWaiter> weak = w;
  l.on_head = [w] { w->head(); };
  l.on_progress = [weak] {
    if (auto s = weak.lock()) s->pump();
  };
  l.on_fail = [weak](int status, const std::string& body, const std::string& type) {
    if (auto s = weak.lock()) s->fail(status, body, type);
  };
  w->listener = fetch->add_listener(std::move(l));
  ex->on_drain([weak] {
    if (auto s = weak.lock()) s->pump();
  });
  ex->on_close([w] { w->detach(); });
  if (fetch->state() == proxy::FetchState::Streaming || fetch->state() == proxy::FetchState::Verified) w->head();
}

void Mirror::list_tags(const http::ExchangePtr& ex, const Route&, const proxy::Decision& d) {
  auto* up = upstream(d.upstream);
  Route cached{RouteKind::Tags, d.cache_repo, {}};
  if (!up || up->backing_off()) return api::list_tags(ctx_, ex, cached);
  fetch_listing(*up, "/v2/" + d.remote_repo + "/tags/list" + paging_query(ex->req()), d.remote_repo,
                [this, ex, cached](std::optional<std::string> body) {
                  if (!body) return api::list_tags(ctx_, ex, cached);
                  respond_listing(ex, std::move(*body));
                });
}

}  // namespace wharf::api

namespace wharf::api {

namespace {

// The cached repositories of one upstream ("<ns>/..." in the store), with the prefix removed.
void cached_catalog(Context& ctx, const http::ExchangePtr& ex, const std::string& ns) {
  const std::string prefix = ns + "/";
  std::vector<std::string> names;
  {
    auto txn = ctx.index.read();
    std::string last = prefix;
    for (int page = 0; page < 100; ++page) {
      bool more = false;
      auto repos = ctx.index.repos(txn, last, 1000, &more);
      bool past = false;
      for (auto& r : repos) {
        if (!r.starts_with(prefix)) {
          past = true;
          break;
        }
        names.push_back(r.substr(prefix.size()));
      }
      if (past || !more || repos.empty()) break;
      last = repos.back();
    }
  }
  auto res = json_response(200, nlohmann::json{{"repositories", names}}.dump());
  res.cache_status = "STALE";
  ex->respond(std::move(res));
}

}  // namespace

bool Mirror::catalog(const http::ExchangePtr& ex, const std::string& ns) {
  auto* up = upstream(ns);
  if (!up) return false;
  if (up->backing_off()) {
    cached_catalog(ctx_, ex, ns);
    return true;
  }
  fetch_listing(*up, "/v2/_catalog" + paging_query(ex->req()), "", [this, ex, ns](std::optional<std::string> body) {
    if (!body) return cached_catalog(ctx_, ex, ns);
    respond_listing(ex, std::move(*body));
  });
  return true;
}

}  // namespace wharf::api
