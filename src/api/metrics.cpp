#include "src/api/metrics.hpp"

#include "src/api/mirror.hpp"

#include <cstdio>

namespace wharf::api {

namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  ++counts_[i];
  sum_ += seconds;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + num(kBounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(count_) + "\n";
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + num(sum_) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

void Metrics::request(const std::string& method, const std::string& route, int status, double seconds, uint64_t bytes,
                      const std::string& cache_status) {
  ++requests_[{method, route, status}];
  durations_[route].observe(seconds);
  if (!cache_status.empty()) {
    ++cache_results_[cache_status];
    if (cache_status == "HIT" || cache_status == "LOCAL" || cache_status == "STALE" || cache_status == "REVALIDATED")
      bytes_from_cache_ += bytes;
  }
}

void Metrics::upstream(const std::string& name, int status, double seconds) {
  ++upstream_requests_[{name, status}];
  upstream_durations_[name].observe(seconds);
}

std::string Metrics::render() const {
  std::string out;
  out.reserve(8192);
  header(out, "wharf_http_requests_total", "counter", "HTTP requests by method, route and status.");
  for (const auto& [k, v] : requests_)
    out += "wharf_http_requests_total{method=\"" + escape(std::get<0>(k)) + "\",route=\"" + std::get<1>(k) +
           "\",status=\"" + std::to_string(std::get<2>(k)) + "\"} " + std::to_string(v) + "\n";
  header(out, "wharf_http_request_duration_seconds", "histogram", "HTTP request duration by route.");
  for (const auto& [route, h] : durations_) h.render(out, "wharf_http_request_duration_seconds", "route=\"" + route + "\"");

  header(out, "wharf_cache_requests_total", "counter",
         "Registry reads by cache status (LOCAL pushed content, HIT, MISS, REVALIDATED, STALE).");
  for (const char* s : {"LOCAL", "HIT", "MISS", "REVALIDATED", "STALE"}) {
    auto it = cache_results_.find(s);
    out += std::string("wharf_cache_requests_total{status=\"") + s + "\"} " +
           std::to_string(it == cache_results_.end() ? 0 : it->second) + "\n";
  }
  auto count_of = [&](const char* s) {
    auto it = cache_results_.find(s);
    return it == cache_results_.end() ? uint64_t(0) : it->second;
  };
  header(out, "wharf_cache_hits_total", "counter", "Proxied reads served from the cache.");
  out += "wharf_cache_hits_total " + std::to_string(count_of("HIT") + count_of("REVALIDATED")) + "\n";
  header(out, "wharf_cache_misses_total", "counter", "Proxied reads fetched from an upstream.");
  out += "wharf_cache_misses_total " + std::to_string(count_of("MISS")) + "\n";
  header(out, "wharf_cache_stale_total", "counter", "Cached content served because the upstream failed.");
  out += "wharf_cache_stale_total " + std::to_string(count_of("STALE")) + "\n";
  header(out, "wharf_cache_served_bytes_total", "counter", "Response body bytes served from the store.");
  out += "wharf_cache_served_bytes_total " + std::to_string(bytes_from_cache_) + "\n";

  header(out, "wharf_upstream_requests_total", "counter", "Upstream requests by upstream and status.");
  for (const auto& [k, v] : upstream_requests_)
    out += "wharf_upstream_requests_total{upstream=\"" + escape(k.first) + "\",status=\"" + std::to_string(k.second) +
           "\"} " + std::to_string(v) + "\n";
  header(out, "wharf_upstream_request_duration_seconds", "histogram", "Upstream request latency to the response head.");
  for (const auto& [name, h] : upstream_durations_)
    h.render(out, "wharf_upstream_request_duration_seconds", "upstream=\"" + escape(name) + "\"");

  header(out, "wharf_gc_runs_total", "counter", "Garbage collection runs.");
  out += "wharf_gc_runs_total " + std::to_string(gc_runs_) + "\n";
  header(out, "wharf_gc_freed_bytes_total", "counter", "Bytes freed by garbage collection.");
  out += "wharf_gc_freed_bytes_total " + std::to_string(gc_freed_) + "\n";
  header(out, "wharf_gc_skipped_total", "counter",
         "Garbage collection runs skipped: another front sharing the database held the maintenance lock.");
  out += "wharf_gc_skipped_total " + std::to_string(gc_skipped_) + "\n";
  header(out, "wharf_eviction_runs_skipped_total", "counter",
         "Eviction runs skipped: another front sharing the database held the maintenance lock.");
  out += "wharf_eviction_runs_skipped_total " + std::to_string(evict_skipped_) + "\n";
  header(out, "wharf_evictions_total", "counter", "Cached items evicted to stay under storage.cache.maxsize.");
  out += "wharf_evictions_total " + std::to_string(evictions_) + "\n";
  header(out, "wharf_evicted_bytes_total", "counter", "Bytes evicted to stay under storage.cache.maxsize.");
  out += "wharf_evicted_bytes_total " + std::to_string(evicted_bytes_) + "\n";

  if (gauges_) {
    std::string last_base;
    for (const auto& [name, hv] : gauges_()) {
      // Names may carry labels: "wharf_upstream_ratelimit_remaining{upstream=\"docker.io\"}".
      std::string base = name.substr(0, name.find('{'));
      if (base != last_base) {  // one HELP/TYPE per metric family (the map keeps a family together)
        out += "# HELP " + base + " " + hv.help + "\n# TYPE " + base + " " + hv.type + "\n";
        last_base = base;
      }
      out += name + " " + num(hv.value) + "\n";
    }
  }
  return out;
}

void add_fleet_samples(std::map<std::string, Metrics::Sample>& g, const FleetStats& s, size_t leases) {
  const auto d = [](uint64_t v) { return static_cast<double>(v); };
  g["wharf_fleet_leases_held"] = {"Fleet leases on cold blobs this front holds (it downloads them for the fleet).",
                                  "gauge", d(leases)};
  g["wharf_fleet_lease_takeovers_total"] = {"Leases taken over after the holding front's lapsed.", "counter",
                                            d(s.takeovers)};
  g["wharf_fleet_remote_waits"] = {"Clients waiting now on another front's download.", "gauge", d(s.remote_waits_now)};
  g["wharf_fleet_remote_waits_total"] = {"Clients that waited on another front's download.", "counter",
                                         d(s.remote_waits)};
  g["wharf_fleet_relayed_bytes_total"] = {"In-flight blob bytes relayed to clients from other fronts.", "counter",
                                          d(s.relayed_bytes)};
  g["wharf_fleet_relays_total{result=\"completed\"}"] = {
      "Relays of another front's download, by how they ended.", "counter", d(s.relays)};
  g["wharf_fleet_relays_total{result=\"cut\"}"] = {"Relays of another front's download, by how they ended.",
                                                    "counter", d(s.relays_cut)};
  g["wharf_fleet_poll_fallbacks_total"] = {
      "Waits that fell back to polling for the publication (holder unknown, refused or unreachable).", "counter",
      d(s.poll_fallbacks)};
  g["wharf_fleet_served_after_publication_total"] = {
      "Waiting clients served from the shared store once another front published the blob.", "counter",
      d(s.served_published)};
}

}  // namespace wharf::api
