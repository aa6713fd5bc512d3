#pragma once
// Counters of S3 calls by operation and status, with their summed latency (the /metrics S3 series).
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace wharf::cache {

class S3Stats {
 public:
  struct Entry {
    uint64_t count = 0;
    double seconds = 0;
  };
  // Records one finished call (any thread).
  void record(const std::string& op, int status, double seconds) {
    std::lock_guard lock(mu_);
    auto& e = by_op_status_[{op, status}];
    ++e.count;
    e.seconds += seconds;
  }
  // A copy of the counters, keyed by (operation, status; 0 = no answer).
  std::map<std::pair<std::string, int>, Entry> snapshot() const {
    std::lock_guard lock(mu_);
    return by_op_status_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, Entry> by_op_status_;
};

}  // namespace wharf::cache
