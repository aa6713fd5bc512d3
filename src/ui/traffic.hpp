#pragma once
// Mirror traffic over time for the page: hits (served from the store) and misses (fetched upstream)
// with their bytes, in two rings of fixed buckets: 60 one-minute and 96 fifteen-minute ones. Counted in
// memory since start. Loop thread only.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace wharf::ui {

// One bucket: the requests and bytes of [t, t + width).
struct TrafficBucket {
  int64_t t = 0;  // unix seconds at the start of the bucket
  uint64_t hits = 0, misses = 0, bytes_cache = 0, bytes_upstream = 0;
};

// A ring of `count` buckets of `width` seconds.
class TrafficRing {
 public:
  TrafficRing(int64_t width, size_t count) : width_(width), buckets_(count) {}
  // Adds one request at `now`.
  void add(int64_t now, bool hit, uint64_t bytes);
  // The `count` buckets ending with the one holding `now`, oldest first (empty ones for quiet times).
  std::vector<TrafficBucket> series(int64_t now) const;
  // hits / (hits + misses) over the ring at `now`; nullopt when there were none.
  std::optional<double> hit_ratio(int64_t now) const;

 private:
  int64_t width_;
  std::vector<TrafficBucket> buckets_;
};

// The hour and day rings together.
struct Traffic {
  TrafficRing hour{60, 60};
  TrafficRing day{900, 96};
  // Records one finished request; only HIT/STALE/REVALIDATED (hits) and MISS (misses) of blob and
  // manifest GETs count, everything else is ignored.
  void record(int64_t now, const char* route, const std::string& method, int status, const std::string& cache_status,
              uint64_t bytes);
};

}  // namespace wharf::ui
