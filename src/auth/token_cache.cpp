// The cache of verified bearer tokens.
#include "src/auth/token_cache.hpp"

#include <openssl/evp.h>

namespace wharf::auth {
namespace {

std::string digest(std::string_view token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

}  // namespace

std::shared_ptr<const Claims> TokenCache::lookup(std::string_view token, int64_t now) {
  const auto it = entries_.find(digest(token));
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
  entries_.insert_or_assign(digest(token), Entry{std::move(claims), until});
}

}  // namespace wharf::auth
