#pragma once
// Batches last-access times of served digests in memory; flushed to the index in one write
// transaction by a periodic job, so reads never need a write transaction.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wharf::api {

class AccessTracker {
 public:
  // Records an access to `digest` at unix time `now` (loop thread only).
  void touch(std::string_view digest, int64_t now) {
    if (pending_.size() >= kMaxPending) return;  // flushed soon; dropping an update only ages an entry
    pending_[std::string(digest)] = now;
  }
  // Takes the pending updates (loop thread only).
  std::vector<std::pair<std::string, int64_t>> take() {
    std::vector<std::pair<std::string, int64_t>> out(pending_.begin(), pending_.end());
    pending_.clear();
    return out;
  }

 private:
  static constexpr size_t kMaxPending = 100000;
  std::unordered_map<std::string, int64_t> pending_;
};

}  // namespace wharf::api
