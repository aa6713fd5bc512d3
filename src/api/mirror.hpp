#pragma once
// The pull-through side of the API: upstreams, routing, shared downloads and cached-tag freshness.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/blob_fetch.hpp"
#include "proxy/routing.hpp"
#include "proxy/upstream.hpp"
#include "src/api/route.hpp"
#include "src/http/server.hpp"
#include "src/oci/manifest.hpp"

namespace wharf::proxy {
class HttpClient;
class TokenCache;
}  // namespace wharf::proxy

namespace wharf::api {

struct Context;

// Counters for logs and metrics.
struct MirrorStats {
  uint64_t hits = 0, misses = 0, stale = 0, revalidated = 0, upstream_errors = 0, prefetched = 0;
};

// The fleet's view from this front, for metrics (single flight of cold blobs across fronts).
struct FleetStats {
  uint64_t takeovers = 0;          // leases taken after waiting on another front's (its holder died)
  uint64_t remote_waits_now = 0;   // clients waiting now on another front's download
  uint64_t remote_waits = 0;       // ... in total
  uint64_t relayed_bytes = 0;      // in-flight bytes relayed from other fronts to clients
  uint64_t relays = 0;             // relays completed with verified bytes
  uint64_t relays_cut = 0;         // relays cut after their head (owner failed, or the bytes did not match)
  uint64_t poll_fallbacks = 0;     // waits that fell back to polling for the publication
  uint64_t served_published = 0;   // waiting clients served from the shared store after publication
};

// A manifest as fetched from an upstream (or the failure to get one).
struct FetchedManifest {
  int status = 0;            // upstream status, or 502/503/504 when unreachable
  bool reachable = true;     // false: network failure, timeout or back-off
  std::string body;          // manifest bytes, or the upstream's error body
  std::string content_type;
  std::string digest;        // set on success
  std::string refused;       // why wharf refused the upstream's answer (status 502), e.g. too large
};

class Mirror {
 public:
  Mirror(Context& ctx, proxy::HttpClient& client, proxy::TokenCache& tokens);
  ~Mirror();
  bool enabled() const { return !upstreams_.empty(); }
  // Routes a repository name (see proxy::route); `ns` is the containerd ?ns= parameter. Reads `index`
  // (whether the name exists locally): call it where the index may block (a worker, or run_index);
  // throws std::runtime_error when the index cannot answer.
  proxy::Decision decide(const cache::Index& index, const std::string& name, const std::string& ns) const;
  // GET/HEAD of a manifest through the mirror. Cached tags are served stale when the upstream fails; an
  // uncached one gets 404 MANIFEST_UNKNOWN (bare name) or 503 (explicit upstream) when it is unreachable,
  // and 502 when wharf refuses what it sent (too large, invalid, wrong digest, no valid media type).
  void get_manifest(const http::ExchangePtr& ex, const Route& r, const proxy::Decision& d);
  // GET/HEAD of a blob through the mirror. A bare name that the upstream cannot confirm (unreachable,
  // 401/403/404) gets 404 BLOB_UNKNOWN, so pushes to new names work offline; a digest whose upstream
  // bytes did not match gets 502 for FetchTable::kBadDigestMemory without asking again.
  void get_blob(const http::ExchangePtr& ex, const Route& r, const proxy::Decision& d);
  // Tags list: the upstream's when reachable, else the cached tags.
  void list_tags(const http::ExchangePtr& ex, const Route& r, const proxy::Decision& d);
  // Catalog for an upstream chosen by ?ns=: the upstream's when reachable, else the cached repositories,
  // listing only names N for which `may_pull` accepts N (a pull with ?ns=) or "ns/N" (the explicit name).
  // False if `ns` names no upstream (the caller serves the local catalog).
  bool catalog(const http::ExchangePtr& ex, const std::string& ns, std::function<bool(std::string_view)> may_pull);
  const MirrorStats& stats() const { return stats_; }
  // Counters of the fleet's single flight on this front.
  const FleetStats& fleet_stats() const { return *fleet_; }
  // Leases on cold blobs this front holds now.
  size_t fleet_leases() const { return fleet_held_.size(); }
  // Reports every upstream response (upstream name, status, seconds) to `observer`.
  void observe_upstreams(std::function<void(const std::string&, int, double)> observer);
  // The last ratelimit-remaining per upstream (-1 when none was seen).
  std::vector<std::pair<std::string, double>> rate_limits() const;
  proxy::FetchTable& fetches() { return *fetches_; }
  // One upstream as the web page shows it.
  struct UpstreamView {
    std::string name, url;
    bool backing_off = false;
    proxy::UpstreamHealth health;
    proxy::RateLimitInfo rate;
  };
  // Every upstream with its back-off, last success and failure, and rate-limit headers.
  std::vector<UpstreamView> upstream_views() const;
  // The upstream account a request forwards (proxy.forwardcredentials): its Basic credentials; empty when
  // the option is off or the request carries none (then the configured account is used).
  proxy::Credential credential_of(const http::Request& req) const;
  // Whether the caller of `req` may see what is stored under `repo` (a name in wharf's store): always,
  // unless proxy.forwardcredentials is on and `repo` is an upstream's cached repository the upstream has
  // not let the caller's account (or the configured one) pull.
  bool visible(const http::Request& req, const std::string& repo) const;
  // Whether what is cached under `repo` may be shown to everyone (the web page, which has no upstream
  // account): true unless proxy.forwardcredentials is on and only some client's own account was let pull it.
  bool shared(const std::string& repo) const { return granted(proxy::Credential{}, repo, GrantAge::Any); }

 private:
  // How recent a grant must be: Fresh (within proxy.tagfreshness) to skip asking the upstream, Any (since
  // the start) to serve from the cache when the upstream cannot answer.
  enum class GrantAge { Fresh, Any };
  // With proxy.forwardcredentials, whether `cred` may see what is cached for `cache_repo`: the upstream
  // confirmed that `cred`, or the configured account (anonymous callers), may pull it. Always true when
  // the option is off.
  bool granted(const proxy::Credential& cred, const std::string& cache_repo, GrantAge age) const;
  // Records that the upstream let `cred` pull `cache_repo` just now.
  void grant(const proxy::Credential& cred, const std::string& cache_repo);
  proxy::Upstream* upstream(const std::string& name) const;
  // Whether this front already holds the fleet's claim to revalidate a tag (Index::claim).
  enum class Claim { Ask, Held };
  // get_manifest once the index said which digest is cached for `ref` (nullopt: none): serves it, revalidates
  // it with the upstream (with a shared index, only the front that claims the tag for the freshness window
  // does; the others serve the cached copy), or fetches.
  void get_manifest_cached(const http::ExchangePtr& ex, const std::string& ref, const proxy::Decision& d,
                           const proxy::Credential& cred, bool trusted, const std::optional<std::string>& cached_digest,
                           Claim claim = Claim::Ask);
  void fetch_manifest(const proxy::Decision& d, const std::string& ref, const proxy::Credential& cred,
                      std::function<void(FetchedManifest)> done);
  // The part of get_blob for a blob not linked to the repository: from the store, a shared download or
  // the upstream.
  void get_unlinked_blob(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& digest,
                         const proxy::Credential& cred);
  // get_blob once the index said the blob is not linked to the repository (forward credentials checked).
  void get_blob_unlinked_here(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& digest,
                              const proxy::Credential& cred);
  // get_unlinked_blob once the index said the blob is stored nowhere usable: a shared download or the upstream.
  void fetch_unlinked_blob(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& digest,
                           const proxy::Credential& cred);
  void serve_fetched(const http::ExchangePtr& ex, const FetchedManifest& m, const char* cache_status);
  void serve_cached(const http::ExchangePtr& ex, const proxy::Decision& d, const std::string& ref, const char* status);
  void pass_error(const http::ExchangePtr& ex, const FetchedManifest& m, const proxy::Decision& d,
                  const std::string& what);
  // Starts the downloads of a freshly fetched image manifest's config and layers that are neither
  // stored nor in flight, so they are under way before the client asks for them (proxy.prefetch).
  void prefetch(const proxy::Decision& d, const std::vector<oci::Descriptor>& blobs, const proxy::Credential& cred);
  // The answer when the upstream could not be reached for `what`. A name routed to the default upstream
  // (which may be a local name not pushed yet) gets 404 MANIFEST_UNKNOWN, a name that explicitly names
  // an upstream 503 UNAVAILABLE; the detail names the upstream and the reason either way.
  void unreachable(const http::ExchangePtr& ex, const FetchedManifest& m, const proxy::Decision& d,
                   const std::string& what);

  // ---- single flight across fronts sharing a blocking index (mirror_fleet.cpp) ----
  // Takes the fleet's lease on a cold blob (Index::claim) before fetching it: the holder fetches (and
  // renews the lease while the download runs); the others wait for the blob to be published, and take
  // over when the lease expires (its holder died). 503 UNAVAILABLE once `deadline` passes.
  // A client's wait for another front's download: its deadline, how many more relays it may try, and
  // its place in FleetStats::remote_waits_now (released when the last copy of the wait goes).
  struct FleetWait {
    std::chrono::steady_clock::time_point deadline;
    int relays_left = 0;
    std::shared_ptr<void> mark;
  };
  void fleet_fetch_blob(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& dig,
                        const proxy::Credential& cred, FleetWait wait);
  // After a short pause: serves the blob if another front published it, else asks for the lease again.
  void fleet_recheck(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& dig,
                     const proxy::Credential& cred, FleetWait wait);
  // Streams the blob to the client from the lease holder's in-flight download (inflight_relay.hpp);
  // polls (fleet_recheck) when the holder names no address, refuses, or cannot be reached.
  void fleet_relay(const http::ExchangePtr& ex, const proxy::Decision& d, const oci::Digest& dig,
                   const proxy::Credential& cred, FleetWait wait);
  // Whether a waiting client's GET may be relayed (http.secret set, no Range); logs once why not.
  bool relay_possible(const http::ExchangePtr& ex);
  // On a worker, with a shared index: claims the fleet's lease on each blob of `list` not marked in `skip`
  // (recorded), and marks those whose lease another front holds (or that the index could not claim).
  static void fleet_prefetch_claims(cache::Index& index, const std::string& owner,
                                    const std::vector<oci::Descriptor>& list, std::vector<bool>& skip);
  // How often a held lease is renewed while its download runs.
  static constexpr std::chrono::milliseconds kFleetRenewEvery{5000};
  // Renews the lease on `dig` every few seconds while its download runs here.
  void fleet_renew(const oci::Digest& dig);
  // Runs `f` on the loop after `delay` (never, if this Mirror is destroyed first).
  void after(std::chrono::milliseconds delay, std::function<void()> f);
  // A pending after(): its timer and job, owned here so nothing is left behind at shutdown.
  struct Timer;
  struct TimerFree {
    void operator()(Timer* t) const noexcept;
  };
  std::unordered_map<Timer*, std::unique_ptr<Timer, TimerFree>> timers_;
  // A random id naming this process in the claims table.
  static std::string fleet_owner_id();

  Context& ctx_;
  proxy::HttpClient& client_;
  std::string owner_;                          // this front in the fleet's claims: "<id>@<internal host:port>"
  std::string self_addr_;                      // the internal address in owner_ (may be empty)
  std::shared_ptr<FleetStats> fleet_ = std::make_shared<FleetStats>();
  bool told_no_relay_ = false;                 // the reason relays are off was logged
  bool told_bad_secret_ = false;               // a front refusing our in-flight token was logged
  std::unordered_map<std::string, bool> fleet_held_;  // digests whose lease this front holds
  proxy::RoutingTable table_;
  std::map<std::string, std::unique_ptr<proxy::Upstream>> upstreams_;
  std::unique_ptr<proxy::FetchTable> fetches_;
  // cache_repo + '\0' + tag → when the cached tag was last confirmed with the upstream.
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> validated_;
  // cache_repo + '\0' + ref → callbacks waiting for the same manifest fetch.
  std::unordered_map<std::string, std::vector<std::function<void(FetchedManifest)>>> manifest_waiters_;
  // Manifests verified and served but not yet durable in the store: cache_repo + '\0' + digest →
  // manifest, and cache_repo + '\0' + tag → digest. Requests find them here until the worker is done.
  std::unordered_map<std::string, std::shared_ptr<const FetchedManifest>> pending_;
  std::unordered_map<std::string, std::string> pending_tags_;
  // Run once no manifest is pending any more (answers from the store that must see them).
  std::vector<std::function<void()>> after_pending_;
  // proxy.forwardcredentials: credential id + '\0' + cache_repo → when the upstream last let it pull.
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> grants_;
  MirrorStats stats_;
};

}  // namespace wharf::api
