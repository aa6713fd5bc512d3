#pragma once
// Prometheus metrics of a running wharf, kept on the loop thread and rendered as text exposition
// format (version 0.0.4) for the debug listener.
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>

namespace wharf::api {

struct FleetStats;

// A fixed-bucket histogram of seconds.
class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
  void observe(double seconds);
  // Appends name_bucket/_sum/_count lines with `labels` (e.g. `route="blob"`, may be empty).
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::array<uint64_t, kBounds.size() + 1> counts_{};
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  // One finished request: its method, route kind ("manifest", "blob", ...), status and duration.
  void request(const std::string& method, const std::string& route, int status, double seconds, uint64_t bytes,
               const std::string& cache_status);
  // One finished upstream request.
  void upstream(const std::string& name, int status, double seconds);
  void gc_run(uint64_t bytes_freed) {
    ++gc_runs_;
    gc_freed_ += bytes_freed;
  }
  // A garbage collection run this front skipped: another front held the fleet's maintenance lock.
  void gc_skipped() { ++gc_skipped_; }
  // An eviction run this front skipped, for the same reason.
  void evict_skipped() { ++evict_skipped_; }
  void evicted(uint64_t items, uint64_t bytes) {
    evictions_ += items;
    evicted_bytes_ += bytes;
  }
  // Values read at render time (owned elsewhere): name (with labels) → {help, type, value}.
  struct Sample {
    std::string help;
    std::string type;  // "gauge" or "counter"
    double value = 0;
  };
  using GaugeSource = std::function<std::map<std::string, Sample>()>;
  void set_gauges(GaugeSource g) { gauges_ = std::move(g); }
  // The whole exposition text.
  std::string render() const;

 private:
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;  // (method, route, status)
  std::map<std::string, Histogram> durations_;                             // route
  std::map<std::string, uint64_t> cache_results_;                          // HIT/MISS/STALE/REVALIDATED/LOCAL
  uint64_t bytes_from_cache_ = 0;
  std::map<std::pair<std::string, int>, uint64_t> upstream_requests_;  // (upstream, status)
  std::map<std::string, Histogram> upstream_durations_;
  uint64_t gc_runs_ = 0, gc_freed_ = 0, evictions_ = 0, evicted_bytes_ = 0;
  uint64_t gc_skipped_ = 0, evict_skipped_ = 0;
  GaugeSource gauges_;
};

// Adds the fleet's single-flight samples of one front (wharf_fleet_*) to `g`: `s` and the leases held now.
void add_fleet_samples(std::map<std::string, Metrics::Sample>& g, const FleetStats& s, size_t leases);

}  // namespace wharf::api
