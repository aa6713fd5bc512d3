#pragma once
// The storage health check behind /debug/health (registry:2's health.storagedriver): a periodic probe
// that the root directory is writable and the index answers, with a failure threshold.
#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>

#include "cache/index.hpp"

namespace wharf {

class HealthCheck {
 public:
  HealthCheck(std::filesystem::path tmp_dir, cache::Index& index, int threshold)
      : tmp_dir_(std::move(tmp_dir)), index_(index), threshold_(threshold < 1 ? 1 : threshold) {}
  // Adds a check each probe also runs ("" when fine, else the failure); set before probing starts.
  void add_check(std::function<std::string()> check) { extra_ = std::move(check); }
  // Adds the database check (database.dsn: a SELECT 1), probed and counted apart from storage, which
  // then no longer reads the index itself (a database outage is reported once, as the database's).
  void set_database_check(std::function<std::string()> check) { database_ = std::move(check); }
  // Runs one probe (blocking file I/O: call from a worker thread).
  void probe();
  // True while fewer than `threshold` consecutive probes failed; `error` gets the last failure.
  bool healthy(std::string* error = nullptr) const;
  // The same for the database check (true when there is none).
  bool database_healthy(std::string* error = nullptr) const;

 private:
  std::filesystem::path tmp_dir_;
  cache::Index& index_;
  int threshold_;
  std::function<std::string()> extra_;  // storage.s3: a HEAD of the bucket
  mutable std::mutex mu_;
  int failures_ = 0;
  std::string last_error_;
  std::function<std::string()> database_;  // database.dsn: SELECT 1 on a pooled connection
  int database_failures_ = 0;
  std::string database_error_;
};

}  // namespace wharf
