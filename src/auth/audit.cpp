// The audit logger: JSON lines through spdlog, to a file or to the default logger's sinks.
#include "src/auth/audit.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace wharf::auth {

std::unique_ptr<AuditLog> AuditLog::open(bool enabled, const std::string& path, std::string& error) {
  auto log = std::make_unique<AuditLog>();
  if (!enabled) return log;
  try {
    if (path.empty()) {
      auto main = spdlog::default_logger();
      log->logger_ = std::make_shared<spdlog::logger>("audit", main->sinks().begin(), main->sinks().end());
    } else {
      log->logger_ = std::make_shared<spdlog::logger>("audit", std::make_shared<spdlog::sinks::basic_file_sink_mt>(path));
      log->logger_->set_pattern("%v");
    }
  } catch (const spdlog::spdlog_ex& e) {
    error = "auth.audit.path: cannot open " + path + ": " + e.what();
    return nullptr;
  }
  log->logger_->set_level(spdlog::level::info);
  log->logger_->flush_on(spdlog::level::info);
  return log;
}

void AuditLog::record(const AuditEvent& e) {
  if (observer_) observer_(e);
  if (!logger_) return;
  const auto now = std::chrono::system_clock::now();
  const double ts = std::chrono::duration<double>(now.time_since_epoch()).count();
  nlohmann::json line{{"audit", std::string(e.event)}, {"ts", ts},
                      {"user", e.user.empty() ? std::string("-") : std::string(e.user)},
                      {"client", std::string(e.client)}};
  if (!e.repo.empty()) line["repo"] = std::string(e.repo);
  if (!e.action.empty()) line["action"] = std::string(e.action);
  if (!e.outcome.empty()) line["outcome"] = std::string(e.outcome);
  logger_->info("{}", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace wharf::auth
