#pragma once
// What a manifest GET learns from a blocking index (PostgreSQL), kept in memory per front: repository +
// reference (tag or digest) → the manifest's digest and record. Only positive answers are kept. It is
// trusted only while `enabled` (the index's LISTEN connection is up): every change to the index sends
// a notification naming what changed (cache/pg/pg_schema.cpp, version 2) and `apply` drops it. A
// lookup that started before a notification never fills the cache (generation check), so an answer
// read from an older snapshot cannot outlive the change. Bounded; loop thread only.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cache/index.hpp"

namespace wharf::api {

class TagCache {
 public:
  static constexpr size_t kMaxEntries = 20000;

  // A cached answer: the manifest's digest and record.
  struct Entry {
    std::string digest;
    cache::ManifestRecord rec;
  };

  // True while the cache may be used (the notifications are flowing).
  bool enabled() const { return enabled_; }
  // Turns the cache on (the LISTEN is in place) or off (the connection is lost); either way it starts empty.
  void set_enabled(bool on);
  // Bumped by every notification and state change; a lookup passes the value it saw to put().
  uint64_t generation() const { return generation_; }
  // The cached answer for `repo` + `ref`, or null (also when disabled); counts hits and misses.
  const Entry* get(const std::string& repo, const std::string& ref);
  // Keeps `e` unless disabled or a notification arrived since `seen` was read from generation().
  void put(uint64_t seen, const std::string& repo, const std::string& ref, Entry e);
  // Drops what the notification `payload` names ("t\trepo\ttag\tms", "r\trepo\tms", "m\tdigest\tms");
  // an unreadable payload empties the cache. `now_ms` (epoch) measures the notification's lag.
  void apply(std::string_view payload, int64_t now_ms);

  // Drops what this front just changed, before answering the write, so its own next read does not wait
  // for the notification: `ref` of `repo` (a tag or a digest), or the whole repository when `ref` is empty.
  void forget(const std::string& repo, const std::string& ref);

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  uint64_t notifications() const { return notifications_; }
  size_t size() const { return count_; }
  // Seconds between the change's trigger and its notification reaching this front: the last one, the largest.
  double last_lag() const { return last_lag_; }
  double max_lag() const { return max_lag_; }

 private:
  void clear();
  void drop_repo(std::string_view repo);
  std::unordered_map<std::string, std::unordered_map<std::string, Entry>> repos_;
  size_t count_ = 0;
  bool enabled_ = false;
  uint64_t generation_ = 0;
  uint64_t hits_ = 0, misses_ = 0, notifications_ = 0;
  double last_lag_ = 0, max_lag_ = 0;
};

}  // namespace wharf::api
