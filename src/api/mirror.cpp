// Pull-through manifests: routing, upstreams, a freshness window for tags and stale-if-error.
#include "src/api/mirror.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>

#include "cache/publish.hpp"
#include "src/api/context.hpp"
#include "src/util/json.hpp"
#include "src/api/handlers.hpp"
#include "src/api/inflight.hpp"
#include "src/api/index_call.hpp"
#include "src/api/respond.hpp"
#include "src/auth/htpasswd.hpp"
#include "src/oci/manifest.hpp"
#include "src/oci/media_type.hpp"
#include "src/oci/names.hpp"
#include "src/util/number.hpp"

namespace wharf::api {

namespace {

const std::vector<std::string> kManifestAccept = {
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json"};

bool is_digest_ref(const std::string& ref) { return ref.find(':') != std::string::npos; }

constexpr size_t kMaxErrorBody = 64 * 1024;
constexpr size_t kMaxGrants = 100'000;  // proxy.forwardcredentials: (account, repository) pairs remembered

// True if a manifest (already validated by parse_manifest, so nesting is bounded) has a mediaType field.
bool declares_media_type(const std::string& body) {
  util::JsonLimits limits;
  limits.max_bytes = std::max(limits.max_bytes, body.size());
  const auto j = util::parse_json(body, limits);
  return j && j->is_object() && j->contains("mediaType");
}

}  // namespace

Mirror::Mirror(Context& ctx, proxy::HttpClient& client, proxy::TokenCache& tokens) : ctx_(ctx), client_(client) {
  for (const auto& u : ctx.cfg.upstreams) {
    if (upstreams_.count(u.name)) continue;
    proxy::UpstreamTimeouts timeouts;
    timeouts.min_rate = ctx.cfg.upstream_min_rate;
    timeouts.min_rate_period = ctx.cfg.upstream_stall_time;
    if (ctx.cfg.upstream_stall_time.count() > 0) timeouts.stall = std::max(timeouts.stall, ctx.cfg.upstream_stall_time);
    upstreams_.emplace(u.name, std::make_unique<proxy::Upstream>(client, tokens, u, timeouts));
    table_.upstreams.push_back(u.name);
  }
  self_addr_ = internal_address(ctx.cfg);
  owner_ = fleet_owner_id() + "@" + self_addr_;
  table_.default_upstream = ctx.cfg.default_upstream;
  table_.local_namespaces = ctx.cfg.local_namespaces;
  auto* pool = &ctx.pool;
  auto* index = &ctx.index;
  auto* store = &ctx.store;
  fetches_ = std::make_unique<proxy::FetchTable>(
      ctx.store,
      [pool](std::function<void()> work, std::function<void()> done) { pool->submit(std::move(work), std::move(done)); },
      [index, store](const std::vector<proxy::VerifiedBlob>& blobs) {
        std::vector<cache::BlobPublication> items;
        for (const auto& b : blobs) items.push_back({b.tmp_path, b.digest, b.cache_repo, b.size, cache::Origin::Proxied});
        return cache::publish_blobs(*index, *store, items);
      },
      proxy::FetchLimits{static_cast<size_t>(std::max(1, ctx.cfg.upstream_downloads)),
                         static_cast<size_t>(std::max(1, ctx.cfg.upstream_downloads_per_upstream))});
}

Mirror::~Mirror() = default;

proxy::Decision Mirror::decide(const cache::Index& index, const std::string& name, const std::string& ns) const {
  bool local_exists = false;
  if (!upstreams_.empty()) {
    auto txn = index.read();
    local_exists = index.repo_exists(txn, name);
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
    const std::string remaining = up->rate_limit().remaining;  // e.g. "97;w=21600"
    const auto v = util::parse_u64_trimmed(std::string_view(remaining).substr(0, remaining.find(';')), 1ULL << 53);
    out.emplace_back(name, v ? static_cast<double>(*v) : -1.0);
  }
  return out;
}

std::vector<Mirror::UpstreamView> Mirror::upstream_views() const {
  std::vector<UpstreamView> out;
  for (const auto& [name, up] : upstreams_)
    out.push_back(UpstreamView{name, up->config().url, up->backing_off(), up->health(), up->rate_limit()});
  return out;
}

proxy::Credential Mirror::credential_of(const http::Request& req) const {
  if (!ctx_.cfg.forward_credentials) return {};
  auto basic = auth::parse_basic(req.header("authorization"));
  if (!basic || basic->first.empty()) return {};  // skopeo answers a Basic challenge with ":" when it has none
  proxy::Credential c;
  c.id = oci::digest_of(std::string("wharf upstream credential\n").append(basic->first).append(":").append(basic->second)).hex;
  c.username = std::move(basic->first);
  c.password = std::move(basic->second);
  return c;
}

bool Mirror::visible(const http::Request& req, const std::string& repo) const {
  if (!ctx_.cfg.forward_credentials) return true;
  bool cached = false;
  for (const auto& [name, up] : upstreams_) cached = cached || (repo.size() > name.size() && repo.starts_with(name) && repo[name.size()] == '/');
  return !cached || granted(credential_of(req), repo, GrantAge::Any);
}

bool Mirror::granted(const proxy::Credential& cred, const std::string& cache_repo, GrantAge age) const {
  if (!ctx_.cfg.forward_credentials) return true;
  const auto now = std::chrono::steady_clock::now();
  auto ok = [&](const std::string& id) {
    auto it = grants_.find(std::string(id).append(1, '\0').append(cache_repo));
    return it != grants_.end() && (age == GrantAge::Any || now - it->second < ctx_.cfg.tag_freshness);
  };
  return ok("") || (!cred.empty() && ok(cred.id));  // what the configured account may pull is shared
}

void Mirror::grant(const proxy::Credential& cred, const std::string& cache_repo) {
  if (!ctx_.cfg.forward_credentials) return;
  const auto now = std::chrono::steady_clock::now();
  if (grants_.size() >= kMaxGrants) {  // bounded: a forgotten grant only means asking the upstream again
    std::erase_if(grants_, [&](const auto& g) { return now - g.second >= ctx_.cfg.tag_freshness; });
    if (grants_.size() >= kMaxGrants) grants_.clear();
  }
  grants_[std::string(cred.id).append(1, '\0').append(cache_repo)] = now;
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

void Mirror::unreachable(const http::ExchangePtr& ex, const FetchedManifest& m, const proxy::Decision& d,
                         const std::string& what) {
  const oci::Detail detail{{"upstream", d.upstream}, {"reason", "unreachable: " + m.body}};
  if (!d.explicit_upstream)
    return fail(ex, oci::ErrorCode::ManifestUnknown,
                what + " is not stored here and the upstream " + d.upstream + " could not be reached", detail);
  fail(ex, oci::ErrorCode::Unavailable, "upstream " + d.upstream + " unreachable: " + m.body, detail, 503);
}

void Mirror::pass_error(const http::ExchangePtr& ex, const FetchedManifest& m, const proxy::Decision& d,
                        const std::string& what) {
  ++stats_.upstream_errors;
  if (!m.reachable) return unreachable(ex, m, d, what);
  if (!m.refused.empty()) return fail(ex, oci::ErrorCode::Unavailable, m.refused, {}, 502);
  if (m.status == 429) return fail(ex, oci::ErrorCode::TooManyRequests, "the upstream's rate limit was reached");
  if (!d.explicit_upstream && (m.status == 401 || m.status == 403 || m.status == 404))  // maybe a local name
    return fail(ex, oci::ErrorCode::ManifestUnknown,
                what + " is not stored here, and upstream " + d.upstream + " answered " + std::to_string(m.status));
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

void Mirror::fetch_manifest(const proxy::Decision& d, const std::string& ref, const proxy::Credential& cred,
                            std::function<void(FetchedManifest)> done) {
  // Callers with different upstream accounts never share a fetch: the upstream may answer them differently.
  const std::string key = cred.id + '\0' + d.cache_repo + '\0' + ref;
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
  auto too_large = std::make_shared<bool>(false);
  const uint64_t max = ctx_.cfg.upstream_manifest_max;
  proxy::FetchCallbacks cb;
  cb.on_head = [m, too_large, max](const proxy::UpstreamResponse& res) {
    m->status = res.status;
    m->content_type = std::string(res.header("content-type"));
    const std::string_view cl = res.header("content-length");
    if (res.status == 200 && !cl.empty() && !util::parse_u64_trimmed(cl, max)) *too_large = true;  // or garbage
  };
  cb.on_data = [m, too_large, max](const char* p, size_t n) {
    if (m->status != 200) {  // an error body: kept for the client, within reason
      if (n > kMaxErrorBody - std::min(kMaxErrorBody, m->body.size())) {
        m->refused = "the upstream's error response (status " + std::to_string(m->status) + ") exceeds " +
                     std::to_string(kMaxErrorBody) + " bytes";
        return false;
      }
      m->body.append(p, n);
      return true;
    }
    if (*too_large || n > max - std::min<uint64_t>(max, m->body.size())) {
      *too_large = true;
      return false;
    }
    m->body.append(p, n);
    return true;
  };
  proxy::Decision dec = d;
  cb.on_done = [this, m, dec, ref, finish, too_large, max, up, cred](bool ok, const std::string& error) {
    if (*too_large)
      m->refused = "the upstream manifest exceeds the limit of " + std::to_string(max) + " bytes (proxy.limits.manifestsize)";
    if (!m->refused.empty()) {
      m->status = 502;
      m->body = m->refused;
      spdlog::warn("upstream {}: manifest {}:{} refused: {}", up->name(), dec.remote_repo, ref, m->refused);
      return finish(std::move(*m));
    }
    if (!ok) {
      m->reachable = false;
      m->status = 503;
      m->body = error;
      return finish(std::move(*m));
    }
    if (m->status != 200) return finish(std::move(*m));
    // Verify and record the manifest before anyone is told it exists. The upstream's Content-Type counts
    // only if it is a valid media type; otherwise the manifest's own mediaType decides.
    const std::optional<std::string> sent_type = oci::media_type_of(m->content_type);
    const bool invalid_type = !sent_type && !m->content_type.empty();
    if (invalid_type)
      spdlog::warn("upstream {}: manifest {}:{} came with an invalid Content-Type; using its mediaType", up->name(),
                   dec.remote_repo, ref);
    m->content_type = sent_type.value_or("");
    auto info = oci::parse_manifest(m->body, m->content_type);
    if (info && invalid_type && !declares_media_type(m->body)) {
      m->status = 502;
      m->body = "the upstream sent neither a valid Content-Type nor a mediaType for " + dec.remote_repo + ":" + ref;
      m->refused = m->body;
      return finish(std::move(*m));
    }
    oci::Digest digest = oci::digest_of(m->body);
    if (is_digest_ref(ref)) {
      auto want = oci::parse_digest(ref);
      if (want && want->algo != digest.algo) digest = oci::digest_of(m->body, want->algo);
      if (!want || !(digest == *want)) {
        m->status = 502;
        m->body = "upstream manifest does not match digest " + ref;
        m->refused = m->body;
        return finish(std::move(*m));
      }
    }
    if (!info) {
      m->status = 502;
      m->body = "upstream sent an invalid manifest: " + info.error().message;
      m->refused = m->body;
      return finish(std::move(*m));
    }
    m->digest = digest.str();
    grant(cred, dec.cache_repo);
    if (m->content_type.empty() || m->content_type == "application/json") m->content_type = info->media_type;
    if (!oci::valid_media_type(m->content_type)) {
      m->status = 502;
      m->body = "the upstream manifest has no valid media type";
      m->refused = m->body;
      return finish(std::move(*m));
    }
    if (info->config) fetches_->note_size(info->config->digest, static_cast<uint64_t>(info->config->size));
    for (const auto& l : info->layers) fetches_->note_size(l.digest, static_cast<uint64_t>(l.size));
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
    if (ctx_.cfg.prefetch_blobs) {
      std::vector<oci::Descriptor> blobs = info->layers;
      if (info->config) blobs.insert(blobs.begin(), *info->config);
      prefetch(dec, blobs, cred);
    }
    auto err = std::make_shared<std::string>();
    ctx_.pool.submit(
        [this, m, digest, rec = std::move(rec), tag, dec, err] {
          auto p = cache::publish_manifest_bytes(ctx_.index, ctx_.store, m->body, {{}, digest, dec.cache_repo, rec, tag, {}});
          if (!p) *err = p.error();
        },
        [this, m, err, dec, tag, pkey] {
          if (!err->empty()) spdlog::error("caching manifest {} failed: {}", m->digest, *err);
          else if (tag) validated_[dec.cache_repo + '\0' + *tag] = std::chrono::steady_clock::now();
          pending_.erase(pkey);
          if (pending_.empty())
            for (auto& cb : std::exchange(after_pending_, {})) cb();
          if (tag) {
            auto it = pending_tags_.find(dec.cache_repo + '\0' + *tag);
            if (it != pending_tags_.end() && it->second == m->digest) pending_tags_.erase(it);
          }
        });
  };
  up->fetch("GET", "/v2/" + d.remote_repo + "/manifests/" + ref, d.remote_repo, kManifestAccept, std::move(cb), cred);
}

void Mirror::get_manifest(const http::ExchangePtr& ex, const Route& r, const proxy::Decision& d) {
  const proxy::Credential cred = credential_of(ex->req());
  // With proxy.forwardcredentials, the cache answers without asking the upstream only for callers it
  // recently let pull this repository; anyone else is checked with the upstream under their own account.
  const bool trusted = granted(cred, d.cache_repo, GrantAge::Fresh);
  if (trusted && !pending_.empty()) {  // fetched moments ago, still being written
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
  std::string want;  // the digest asked for, or empty for a tag
  if (is_digest_ref(r.ref)) {
    auto d = oci::parse_digest(r.ref);
    if (!d) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
    want = d->str();
  } else if (!oci::valid_tag(r.ref)) {
    return fail(ex, oci::ErrorCode::ManifestUnknown, "invalid tag '" + r.ref + "'", {}, 404);
  }
  // With a blocking index, the notifications keep a front-local answer fresh: no database call.
  if (const auto* hit = ctx_.tags.get(d.cache_repo, want.empty() ? r.ref : want))
    return get_manifest_cached(ex, r.ref, d, cred, trusted, hit->digest);
  auto lookup = [](const cache::Index& index, const std::string& repo, const std::string& ref, const std::string& digest,
                   const proxy::Decision&, const proxy::Credential&) -> std::optional<std::string> {
    auto txn = index.read();
    if (!digest.empty()) return index.manifest_in_repo(txn, repo, digest) ? std::optional(digest) : std::nullopt;
    return index.tag(txn, repo, ref);
  };
  index_call(
      ctx_.index, ctx_.pool, ex, lookup,
      [this, ex, trusted](std::optional<std::string> cached_digest, const std::string&, const std::string& ref,
                          const std::string&, const proxy::Decision& dec, const proxy::Credential& who) {
        get_manifest_cached(ex, ref, dec, who, trusted, cached_digest);
      },
      d.cache_repo, r.ref, want, d, cred);
}

void Mirror::get_manifest_cached(const http::ExchangePtr& ex, const std::string& ref, const proxy::Decision& d,
                                 const proxy::Credential& cred, bool trusted,
                                 const std::optional<std::string>& cached_digest, Claim claim) {
  if (cached_digest && is_digest_ref(ref) && trusted) {  // immutable: never asks the upstream again
    ++stats_.hits;
    return serve_cached(ex, d, ref, "HIT");
  }
  if (cached_digest) {
    const std::string key = d.cache_repo + '\0' + ref;
    auto it = validated_.find(key);
    if (trusted && it != validated_.end() && std::chrono::steady_clock::now() - it->second < ctx_.cfg.tag_freshness) {
      ++stats_.hits;
      return serve_cached(ex, d, ref, "HIT");
    }
    auto* up = upstream(d.upstream);
    if ((!up || up->backing_off()) && granted(cred, d.cache_repo, GrantAge::Any)) {
      ++stats_.stale;
      spdlog::warn("serving stale {}:{} (upstream {} backing off)", d.cache_repo, ref, d.upstream);
      return serve_cached(ex, d, ref, "STALE");
    }
    // Fronts sharing a database revalidate a tag once per freshness window for the whole fleet: the one
    // that claims it asks the upstream, the others serve their cached copy (trusted callers only:
    // forwarded credentials are always checked with the upstream).
    if (trusted && up && claim == Claim::Ask && ctx_.index.blocks()) {
      const auto window = std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.cfg.tag_freshness);
      auto take = [owner = owner_](cache::Index& index, const std::string& k, const std::chrono::milliseconds& w) {
        return index.claim(k, owner, w);
      };
      run_index(
          ctx_.index, ctx_.pool, take,
          [this, ex, d, ref, cred, cached_digest, key](std::expected<bool, std::string> mine, const std::string&,
                                                       const std::chrono::milliseconds&) {
            if (!ex->alive() || ex->responded()) return;
            if (mine && !*mine) {  // another front revalidated it within the window
              validated_[key] = std::chrono::steady_clock::now();
              ++stats_.hits;
              return serve_cached(ex, d, ref, "HIT");
            }
            if (!mine) spdlog::warn("revalidating {}:{} without the fleet claim: {}", d.cache_repo, ref, mine.error());
            get_manifest_cached(ex, ref, d, cred, true, cached_digest, Claim::Held);
          },
          std::string("tag\t").append(d.cache_repo).append("\t").append(ref), window);
      return;
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
    cb.on_done = [this, ex, dec, ref, key, cached, status, remote_digest, cred](bool ok, const std::string& error) {
      const bool may_serve_stale = granted(cred, dec.cache_repo, GrantAge::Any);
      if ((!ok || *status >= 500 || *status == 429) && may_serve_stale) {
        ++stats_.stale;
        spdlog::warn("serving stale {}:{}: upstream {}", dec.cache_repo, ref, ok ? std::to_string(*status) : error);
        return serve_cached(ex, dec, ref, "STALE");
      }
      if (*status == 200 && *remote_digest == cached) {
        validated_[key] = std::chrono::steady_clock::now();
        grant(cred, dec.cache_repo);
        ++stats_.revalidated;
        return serve_cached(ex, dec, ref, "REVALIDATED");
      }
      // Changed (or no digest header): fetch the new manifest.
      fetch_manifest(dec, ref, cred, [this, ex, dec, ref, cred](FetchedManifest m) {
        if (m.status == 200) {
          ++stats_.misses;
          return serve_fetched(ex, m, "MISS");
        }
        if ((!m.reachable || m.status >= 500 || m.status == 429) && granted(cred, dec.cache_repo, GrantAge::Any)) {
          ++stats_.stale;
          return serve_cached(ex, dec, ref, "STALE");
        }
        pass_error(ex, m, dec, dec.remote_repo + ":" + ref);
      });
    };
    if (!up || up->backing_off()) {  // and no grant to serve the cached copy on (proxy.forwardcredentials)
      FetchedManifest m;
      m.reachable = up != nullptr;
      m.status = up ? 429 : 503;
      m.body = up ? "backing off after a 429" : "no such upstream";
      return pass_error(ex, m, d, d.remote_repo + ":" + ref);
    }
    up->fetch("HEAD", "/v2/" + d.remote_repo + "/manifests/" + ref, d.remote_repo, kManifestAccept, std::move(cb), cred);
    return;
  }
  proxy::Decision dec = d;
  fetch_manifest(d, ref, cred, [this, ex, dec, ref](FetchedManifest m) {
    if (m.status != 200) return pass_error(ex, m, dec, dec.remote_repo + ":" + ref);
    ++stats_.misses;
    serve_fetched(ex, m, "MISS");
  });
}

}  // namespace wharf::api
