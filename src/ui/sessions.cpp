#include "src/ui/sessions.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace wharf::ui {

std::string random_token() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

bool tokens_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string SessionStore::create(std::string user, int64_t now) {
  if (sessions_.size() >= capacity_) evict_one(now);
  std::string id = random_token();
  sessions_[id] = Session{std::move(user), random_token(), now};
  return id;
}

const Session* SessionStore::find(std::string_view id, int64_t now) {
  auto it = sessions_.find(std::string(id));
  if (it == sessions_.end()) return nullptr;
  if (now - it->second.last_used >= idle_s_) {
    sessions_.erase(it);
    return nullptr;
  }
  it->second.last_used = now;
  return &it->second;
}

bool SessionStore::remove(std::string_view id) { return sessions_.erase(std::string(id)) > 0; }

void SessionStore::evict_one(int64_t now) {
  // Expired ones first (all of them), else the least recently used one.
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second.last_used >= idle_s_) it = sessions_.erase(it);
    else ++it;
  }
  if (sessions_.size() < capacity_ || sessions_.empty()) return;
  auto oldest = sessions_.begin();
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
    if (it->second.last_used < oldest->second.last_used) oldest = it;
  sessions_.erase(oldest);
}

}  // namespace wharf::ui
