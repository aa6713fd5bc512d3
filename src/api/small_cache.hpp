#pragma once
// Bytes of small immutable content (manifests, image configs) kept in memory by digest, so the most
// frequent GETs cost no open/sendfile/close. Content-addressed, so an entry never goes stale; the
// caller checks visibility in the index before using it. Bounded; loop thread only.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace wharf::api {

class SmallCache {
 public:
  static constexpr uint64_t kMaxItem = 64 * 1024;
  static constexpr uint64_t kMaxTotal = 8 * 1024 * 1024;

  // Bounds the total bytes held (kMaxTotal unless set; 0 keeps nothing).
  void set_capacity(uint64_t bytes) {
    max_total_ = bytes;
    items_.clear();
    total_ = 0;
  }
  std::shared_ptr<const std::string> get(const std::string& digest) const {
    auto it = items_.find(digest);
    return it == items_.end() ? nullptr : it->second;
  }
  void put(const std::string& digest, std::string bytes) {
    if (bytes.size() > kMaxItem || bytes.size() > max_total_) return;
    if (total_ + bytes.size() > max_total_) {  // simple and bounded: start over when full
      items_.clear();
      total_ = 0;
    }
    total_ += bytes.size();
    items_[digest] = std::make_shared<const std::string>(std::move(bytes));
  }

 private:
  std::unordered_map<std::string, std::shared_ptr<const std::string>> items_;
  uint64_t total_ = 0;
  uint64_t max_total_ = kMaxTotal;
};

// Reads a whole small file; empty optional on any error.
std::optional<std::string> read_small_file(int fd, uint64_t size);

}  // namespace wharf::api
