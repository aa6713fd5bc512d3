#pragma once
// The audit log: one JSON line per login, token issue, push, delete and denied request (who, what,
// from where, outcome) on its own spdlog logger, written to a file or to the main log. Never a secret:
// only names, repositories, actions and addresses are ever passed in.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace wharf::auth {

// One audited event.
struct AuditEvent {
  std::string_view event;    // "login", "token", "push", "delete", "denied"
  std::string_view user;     // empty: anonymous
  std::string_view client;   // peer address
  std::string_view repo;     // may be empty
  std::string_view action;   // e.g. "pull,push" or "PUT /v2/x/manifests/y"
  std::string_view outcome;  // "ok", "failed", "denied", "granted:..."
};

class AuditLog {
 public:
  // Disabled: records nothing. An empty path writes to the main log's sinks; otherwise appends to the
  // file (created 0600 if missing). Fails naming the path if the file cannot be opened.
  static std::unique_ptr<AuditLog> open(bool enabled, const std::string& path, std::string& error);
  // Writes one line (flushed at once, so a crash loses nothing acknowledged).
  // Observers see it too, even when the log itself is disabled.
  void record(const AuditEvent& e);
  // Also passes every event to `observer` (the web page's activity ring); loop thread only.
  void observe(std::function<void(const AuditEvent&)> observer) { observer_ = std::move(observer); }

 private:
  std::shared_ptr<spdlog::logger> logger_;  // null when disabled
  std::function<void(const AuditEvent&)> observer_;
};

}  // namespace wharf::auth
