#pragma once
// Bearer tokens that verified, remembered until they expire, so a request with a known token costs one
// hash-table lookup instead of a signature check. Entries are keyed by the whole token and matched
// exactly (no digest that a forged token could collide with). Loop-thread only.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "src/auth/jwt.hpp"

namespace wharf::auth {

class TokenCache {
 public:
  // The claims of `token` if it verified before and has not expired at `now` (seconds since the epoch).
  std::shared_ptr<const Claims> lookup(std::string_view token, int64_t now);
  // Remembers verified claims until `until` (seconds since the epoch); `now` prunes when full.
  void remember(std::string_view token, std::shared_ptr<const Claims> claims, int64_t until, int64_t now);
  // Forgets every token (keys changed).
  void clear() { entries_.clear(); }
  // Tokens remembered now.
  size_t size() const { return entries_.size(); }

  static constexpr size_t kMaxEntries = 10000;  // when full, expired entries go; if none, the cache empties

 private:
  struct Entry {
    std::shared_ptr<const Claims> claims;
    int64_t until = 0;
  };
  // Lookups by string_view without building a std::string.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;  // token → claims
};

}  // namespace wharf::auth
