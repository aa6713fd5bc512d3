#include "src/ui/traffic.hpp"

#include <string_view>

namespace wharf::ui {

void TrafficRing::add(int64_t now, bool hit, uint64_t bytes) {
  const int64_t start = now - now % width_;
  TrafficBucket& b = buckets_[size_t(start / width_) % buckets_.size()];
  if (b.t != start) b = TrafficBucket{start, 0, 0, 0, 0};
  if (hit) {
    ++b.hits;
    b.bytes_cache += bytes;
  } else {
    ++b.misses;
    b.bytes_upstream += bytes;
  }
}

std::vector<TrafficBucket> TrafficRing::series(int64_t now) const {
  const int64_t last = now - now % width_;
  std::vector<TrafficBucket> out;
  out.reserve(buckets_.size());
  for (size_t i = buckets_.size(); i-- > 0;) {
    const int64_t start = last - int64_t(i) * width_;
    const TrafficBucket& b = buckets_[size_t(start / width_) % buckets_.size()];
    out.push_back(b.t == start ? b : TrafficBucket{start, 0, 0, 0, 0});
  }
  return out;
}

std::optional<double> TrafficRing::hit_ratio(int64_t now) const {
  uint64_t hits = 0, all = 0;
  for (const TrafficBucket& b : series(now)) {
    hits += b.hits;
    all += b.hits + b.misses;
  }
  if (all == 0) return std::nullopt;
  return double(hits) / double(all);
}

void Traffic::record(int64_t now, const char* route, const std::string& method, int status,
                     const std::string& cache_status, uint64_t bytes) {
  const std::string_view r(route ? route : "");
  if ((r != "blob" && r != "manifest") || (method != "GET" && method != "HEAD") || status >= 400) return;
  bool hit;
  if (cache_status == "HIT" || cache_status == "STALE" || cache_status == "REVALIDATED") hit = true;
  else if (cache_status == "MISS") hit = false;
  else return;
  hour.add(now, hit, bytes);
  day.add(now, hit, bytes);
}

}  // namespace wharf::ui
