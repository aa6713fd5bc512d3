// htpasswd files (bcrypt only, as registry:2), Basic credentials, and the cache of verified headers.
#include "src/auth/htpasswd.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace wharf::auth {
namespace {

constexpr size_t kBcryptLength = 60;              // "$2y$" + 2-digit cost + "$" + 22 salt + 31 hash
constexpr size_t kMaxBasicLength = 8192;          // longest base64 credential accepted
constexpr int kDefaultCost = 10;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool is_bcrypt_prefix(std::string_view hash) {
  return hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$");
}

// The cost of a well-formed bcrypt hash; nullopt if the hash is not one.
std::optional<int> bcrypt_cost(std::string_view hash) {
  if (hash.size() != kBcryptLength || hash[6] != '$') return std::nullopt;
  if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9') return std::nullopt;
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) return std::nullopt;
  for (char c : hash.substr(7)) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '/';
    if (!ok) return std::nullopt;
  }
  return cost;
}

// A bcrypt setting (no password behind it) at `cost`, so unknown users cost as much as known ones.
std::string dummy_setting(int cost) {
  static constexpr char kEntropy[16] = {'w', 'h', 'a', 'r', 'f', '-', 'n', 'o', '-', 's', 'u', 'c', 'h', 'u', 's', 'r'};
  char out[CRYPT_GENSALT_OUTPUT_SIZE] = {};
  if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), kEntropy, sizeof kEntropy, out, sizeof out) == nullptr) {
    return {};
  }
  return out;
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0x0f];
  }
  return out;
}

}  // namespace

std::expected<Htpasswd, std::string> Htpasswd::parse(std::string_view text) {
  std::vector<std::string> ignored;
  return parse(text, ignored);
}

std::expected<Htpasswd, std::string> Htpasswd::parse(std::string_view text, std::vector<std::string>& warnings) {
  Htpasswd db;
  std::map<int, int> costs;  // cost → number of users with it
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    const std::string where = "line " + std::to_string(line_no);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::unexpected(where + ": expected user:hash");
    const std::string_view user = line.substr(0, colon);
    const std::string_view hash = line.substr(colon + 1);
    if (!is_bcrypt_prefix(hash)) {
      warnings.push_back(where + ": user \"" + std::string(user) + "\": only bcrypt hashes are supported, skipped");
      continue;
    }
    const auto cost = bcrypt_cost(hash);
    if (!cost) return std::unexpected(where + ": malformed bcrypt hash for user \"" + std::string(user) + "\"");
    ++costs[*cost];
    db.users_.insert_or_assign(std::string(user), std::string(hash));  // a later line wins, as in registry:2
  }
  int usual_cost = kDefaultCost;
  int most = 0;
  for (const auto& [cost, count] : costs) {
    if (count > most) {
      usual_cost = cost;
      most = count;
    }
  }
  db.dummy_setting_ = dummy_setting(usual_cost);
  return db;
}

std::expected<Htpasswd, std::string> Htpasswd::load(const std::filesystem::path& path) {
  std::vector<std::string> ignored;
  return load(path, ignored);
}

std::expected<Htpasswd, std::string> Htpasswd::load(const std::filesystem::path& path,
                                                    std::vector<std::string>& warnings) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected("cannot read " + path.string() + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::unexpected("cannot read " + path.string() + ": " + std::strerror(errno));
  std::vector<std::string> found;
  auto db = parse(text.str(), found);
  for (std::string& w : found) warnings.push_back(path.string() + ": " + w);
  if (!db) return std::unexpected(path.string() + ": " + db.error());
  return db;
}

bool Htpasswd::verify(std::string_view user, std::string_view password) const {
  const auto it = users_.find(user);
  const bool known = it != users_.end();
  const std::string& hash = known ? it->second : dummy_setting_;
  const std::string pw(password);
  auto data = std::make_unique<crypt_data>();  // value-initialised: crypt_r wants it zeroed
  const char* out = crypt_r(pw.c_str(), hash.c_str(), data.get());
  if (out == nullptr || out[0] == '*') return false;
  const size_t n = std::strlen(out);
  const bool same = n == hash.size() && CRYPTO_memcmp(out, hash.data(), n) == 0;
  // A NUL inside the password would have cut it short for crypt_r; such passwords never match.
  return known && same && pw.find('\0') == std::string::npos;
}

std::optional<std::pair<std::string, std::string>> parse_basic(std::string_view authorization) {
  std::string_view h = trim(authorization);
  if (h.size() < 6 || !iequals(h.substr(0, 5), "basic") || (h[5] != ' ' && h[5] != '\t')) return std::nullopt;
  h = trim(h.substr(6));
  if (h.empty() || h.size() % 4 != 0 || h.size() > kMaxBasicLength) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && h[h.size() - 1 - pad] == '=') ++pad;
  for (char c : h.substr(0, h.size() - pad)) {
    if (!is_base64_char(c)) return std::nullopt;
  }
  std::string decoded(h.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(h.data()), static_cast<int>(h.size()));
  if (n < 0 || static_cast<size_t>(n) < pad) return std::nullopt;
  decoded.resize(static_cast<size_t>(n) - pad);  // EVP_DecodeBlock counts padding as zero bytes
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::make_pair(decoded.substr(0, colon), decoded.substr(colon + 1));
}

std::optional<std::string> CredentialCache::lookup(std::string_view authorization, Clock::time_point now) {
  const std::string key = sha256_hex(authorization);
  std::lock_guard lock(mu_);
  const auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (now >= it->second.second) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.first;
}

void CredentialCache::remember(std::string_view authorization, std::string user, Clock::time_point now) {
  std::string key = sha256_hex(authorization);
  std::lock_guard lock(mu_);
  if (entries_.size() >= kMaxEntries && !entries_.contains(key)) {
    std::erase_if(entries_, [&](const auto& entry) { return now >= entry.second.second; });
    if (entries_.size() >= kMaxEntries) entries_.clear();
  }
  entries_.insert_or_assign(std::move(key), std::make_pair(std::move(user), now + ttl_));
}

void CredentialCache::clear() {
  std::lock_guard lock(mu_);
  entries_.clear();
}

}  // namespace wharf::auth
