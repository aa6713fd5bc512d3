#pragma once
// The web page's sign-in sessions: server-side, in memory, bounded in count, expiring after an idle
// time. A session id and its CSRF token are 256 random bits each (OpenSSL's RAND_bytes), hex-encoded.
// Loop thread only.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace wharf::ui {

// One signed-in browser.
struct Session {
  std::string user;
  std::string csrf;
  int64_t last_used = 0;  // unix seconds
};

class SessionStore {
 public:
  // At most `capacity` sessions (the least recently used goes when full); idle ones expire after `idle_s`.
  SessionStore(size_t capacity = 10000, int64_t idle_s = 12 * 3600) : capacity_(capacity), idle_s_(idle_s) {}
  // Creates a session for `user` at `now`; returns its id. Throws std::runtime_error only if the system
  // random generator fails.
  std::string create(std::string user, int64_t now);
  // The session `id` if it exists and has not expired at `now` (and marks it used); else nullptr.
  const Session* find(std::string_view id, int64_t now);
  // Removes session `id`; false if there was none.
  bool remove(std::string_view id);
  // Sessions held now (expired ones included until they are looked up or pushed out).
  size_t size() const { return sessions_.size(); }

 private:
  void evict_one(int64_t now);
  size_t capacity_;
  int64_t idle_s_;
  std::unordered_map<std::string, Session> sessions_;
};

// 256 random bits as 64 lowercase hex digits; throws std::runtime_error if RAND_bytes fails.
std::string random_token();

// Whether `a` equals `b`, in time that depends only on their lengths (CRYPTO_memcmp).
bool tokens_equal(std::string_view a, std::string_view b);

}  // namespace wharf::ui
