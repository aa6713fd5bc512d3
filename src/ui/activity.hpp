#pragma once
// The page's recent activity: the audit events (logins, tokens, pushes, deletes, denials) in a bounded
// in-memory ring, fed by the same calls that write the audit log, whether or not it writes a file.
// Loop thread only.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "src/auth/audit.hpp"

namespace wharf::ui {

// One remembered event.
struct ActivityItem {
  int64_t time = 0;   // unix seconds
  std::string event;  // push, delete, login, token, denied
  std::string user;   // empty: anonymous
  std::string repo;
  std::string ref;    // tag or digest when the action names one (PUT/DELETE .../manifests/REF)
  std::string remote;
  std::string detail;  // the action and outcome
};

class Activity {
 public:
  explicit Activity(size_t capacity = 1000) : capacity_(capacity) {}
  // Remembers `e` at `now` (the oldest goes when full).
  void add(const auth::AuditEvent& e, int64_t now);
  // Up to `limit` items, newest first.
  std::vector<ActivityItem> recent(size_t limit) const;

 private:
  size_t capacity_;
  std::deque<ActivityItem> items_;
};

}  // namespace wharf::ui
