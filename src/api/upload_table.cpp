// The table of open upload sessions and its per-client and total caps.
#include "src/api/upload_table.hpp"

#include <unistd.h>

#include <algorithm>

namespace wharf::api {

UploadSession::~UploadSession() {
  if (kind == Kind::Monolithic && !path.empty() && store) store->discard(path);
}

void UploadTable::set_limits(size_t total, size_t per_client) {
  max_total_ = std::max<size_t>(total, 1);
  max_per_client_ = std::max<size_t>(per_client, 1);
}

UploadTable::Admit UploadTable::admit(const std::string& client, std::string* evicted, int64_t idle_before) {
  Admit a = Admit::Ok;
  if (sessions_.size() >= max_total_) a = Admit::TotalFull;
  else if (held_by(client) >= max_per_client_) a = Admit::ClientFull;
  if (a == Admit::Ok) return a;
  if (evicted != nullptr) {
    const UploadSession* victim = nullptr;
    for (const auto& [id, s] : sessions_) {
      if (s->kind != UploadSession::Kind::Resumable || s->busy || s->last_used() >= idle_before) continue;
      if (a == Admit::ClientFull && s->client != client) continue;
      if (victim == nullptr || s->last_used() < victim->last_used()) victim = s.get();
    }
    if (victim != nullptr) {
      *evicted = victim->id;
      erase(*evicted);
      ++evicted_;
      return Admit::Ok;
    }
  }
  ++refused_;
  return a;
}

std::shared_ptr<UploadSession> UploadTable::find(const std::string& id) const {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second->kind != UploadSession::Kind::Resumable) return nullptr;
  return it->second;
}

void UploadTable::put(std::shared_ptr<UploadSession> s) {
  auto [it, inserted] = sessions_.try_emplace(s->id, s);
  if (!inserted) {
    if (--per_client_[it->second->client] == 0) per_client_.erase(it->second->client);
    it->second = s;
  }
  ++per_client_[s->client];
}

void UploadTable::erase(const std::string& id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  auto pc = per_client_.find(it->second->client);
  if (pc != per_client_.end() && --pc->second == 0) per_client_.erase(pc);
  if (it->second->kind == UploadSession::Kind::Resumable) {
    const auto now = static_cast<int64_t>(::time(nullptr));
    while (!ended_order_.empty() &&
           (ended_order_.size() >= kEndedKept || ended_order_.front().first < now - kEndedSeconds)) {
      ended_.erase(ended_order_.front().second);
      ended_order_.pop_front();
    }
    if (ended_.insert(id).second) ended_order_.emplace_back(now, id);
  }
  sessions_.erase(it);
}

size_t UploadTable::held_by(const std::string& client) const {
  auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

}  // namespace wharf::api
