#include "src/ui/activity.hpp"

namespace wharf::ui {

void Activity::add(const auth::AuditEvent& e, int64_t now) {
  ActivityItem item{now, std::string(e.event), std::string(e.user), std::string(e.repo), {}, std::string(e.client), {}};
  const std::string_view action = e.action;
  for (std::string_view marker : {std::string_view("/manifests/"), std::string_view("/blobs/")}) {
    if (const size_t at = action.rfind(marker); at != std::string_view::npos) {
      item.ref = std::string(action.substr(at + marker.size()));
      break;
    }
  }
  item.detail = std::string(action);
  if (!e.outcome.empty()) item.detail.append(item.detail.empty() ? "" : ": ").append(e.outcome);
  if (items_.size() >= capacity_) items_.pop_front();
  items_.push_back(std::move(item));
}

std::vector<ActivityItem> Activity::recent(size_t limit) const {
  std::vector<ActivityItem> out;
  for (auto it = items_.rbegin(); it != items_.rend() && out.size() < limit; ++it) out.push_back(*it);
  return out;
}

}  // namespace wharf::ui
