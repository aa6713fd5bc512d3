// The cache of verified bearer tokens.
#include "src/auth/token_cache.hpp"

namespace wharf::auth {

std::shared_ptr<const Claims> TokenCache::lookup(std::string_view token, int64_t now) {
  const auto it = entries_.find(token);
  if (it == entries_.end()) return nullptr;
  if (now >= it->second.until) {
    entries_.erase(it);
    return nullptr;
  }
  return it->second.claims;
}

void TokenCache::remember(std::string_view token, std::shared_ptr<const Claims> claims, int64_t until, int64_t now) {
  if (entries_.size() >= kMaxEntries) {
    std::erase_if(entries_, [&](const auto& e) { return e.second.until <= now; });
    if (entries_.size() >= kMaxEntries) entries_.clear();
  }
  entries_.insert_or_assign(std::string(token), Entry{std::move(claims), until});
}

}  // namespace wharf::auth
