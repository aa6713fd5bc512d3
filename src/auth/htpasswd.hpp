#pragma once
// htpasswd (bcrypt "$2y$"/"$2b$"/"$2a$") user database, checked through libcrypt's crypt_r.
#include <chrono>
#include <expected>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::auth {

class Htpasswd {
 public:
  // Loads the file; fails with a message naming the path and line for unreadable files or malformed lines.
  // Lines with non-bcrypt hashes are skipped with a warning appended to `warnings`.
  static std::expected<Htpasswd, std::string> load(const std::filesystem::path& path);
  static std::expected<Htpasswd, std::string> parse(std::string_view text);
  // As above, appending one warning per skipped (non-bcrypt) line to `warnings`.
  static std::expected<Htpasswd, std::string> load(const std::filesystem::path& path,
                                                   std::vector<std::string>& warnings);
  static std::expected<Htpasswd, std::string> parse(std::string_view text, std::vector<std::string>& warnings);

  // Verifies a user/password pair with bcrypt (slow: tens of ms; call from a worker thread).
  // Constant-time comparison of the crypt output; false for unknown users (still spends a bcrypt).
  bool verify(std::string_view user, std::string_view password) const;
  size_t size() const { return users_.size(); }

 private:
  std::map<std::string, std::string, std::less<>> users_;  // user → hash
  std::string dummy_setting_;  // bcrypt setting at the file's usual cost, hashed for unknown users
};

// Decodes "Basic base64(user:pass)"; nullopt if not Basic or malformed.
std::optional<std::pair<std::string, std::string>> parse_basic(std::string_view authorization);

// Remembers Authorization headers that verified, keyed by SHA-256 of the header, for `ttl`.
// Thread-safe. The clock is injectable for tests.
class CredentialCache {
 public:
  using Clock = std::chrono::steady_clock;
  explicit CredentialCache(std::chrono::seconds ttl = std::chrono::seconds(300)) : ttl_(ttl) {}
  // The user name if `authorization` verified within ttl; nullopt otherwise.
  std::optional<std::string> lookup(std::string_view authorization, Clock::time_point now = Clock::now());
  void remember(std::string_view authorization, std::string user, Clock::time_point now = Clock::now());
  void clear();

  static constexpr size_t kMaxEntries = 10000;  // when full, expired entries go; if none, the cache empties

 private:
  std::chrono::seconds ttl_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, Clock::time_point>> entries_;  // sha256(header) → (user, expiry)
};

}  // namespace wharf::auth
