// Token cache entries keyed by a flattened (credential id, upstream, realm, service, sorted scopes) string.
#include "proxy/token_cache.hpp"

#include <algorithm>

#include "src/util/json.hpp"
#include "src/util/number.hpp"

namespace wharf::proxy {

TokenCache::TokenCache(Clock clock) : clock_(std::move(clock)) {}

std::string TokenCache::flatten(const TokenKey& key) {
  std::vector<std::string> scopes = key.scopes;
  std::sort(scopes.begin(), scopes.end());
  scopes.erase(std::unique(scopes.begin(), scopes.end()), scopes.end());
  std::string out = key.credential + '\n' + key.upstream + '\n' + key.realm + '\n' + key.service;
  for (const std::string& s : scopes) out += '\n' + s;
  return out;
}

void TokenCache::prune(std::chrono::system_clock::time_point now) {
  std::erase_if(entries_, [now](const auto& kv) { return kv.second.expires <= now; });
}

std::optional<std::string> TokenCache::get(const TokenKey& key) {
  const auto it = entries_.find(flatten(key));
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires <= clock_()) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.token;
}

void TokenCache::put(const TokenKey& key, std::string token, std::optional<std::chrono::seconds> expires_in,
                     std::optional<std::chrono::system_clock::time_point> issued_at) {
  const auto now = clock_();
  prune(now);
  // Clamped here too, so no caller can push a time point out of the clock's range.
  const std::chrono::seconds lifetime =
      std::clamp(expires_in.value_or(kDefaultLifetime), std::chrono::seconds{0}, kMaxLifetime);
  const std::chrono::seconds margin = std::min(kSafetyMargin, lifetime / 2);
  // An issue time before the lifetime could reach now only makes the token expired: treat it as such
  // without arithmetic near the clock's limits.
  if (issued_at && *issued_at < now - kMaxLifetime) return;
  const auto start = issued_at ? std::min(*issued_at, now) : now;
  const auto expires = start + lifetime - margin;
  if (expires <= now || token.empty()) return;
  entries_[flatten(key)] = Entry{std::move(token), expires};
}

void TokenCache::erase(const TokenKey& key) { entries_.erase(flatten(key)); }

namespace {

constexpr std::chrono::sys_seconds kEarliest{std::chrono::sys_days{std::chrono::year{1970} / 1 / 1}};
constexpr std::chrono::sys_seconds kLatest{std::chrono::sys_days{std::chrono::year{2200} / 1 / 1}};

// A JSON number of seconds clamped to [0, kMaxLifetime]: 1e300, 10000000000 or -5 never overflow.
std::chrono::seconds lifetime_of(const nlohmann::json& v) {
  const int64_t max = TokenCache::kMaxLifetime.count();
  if (v.is_number_unsigned()) return std::chrono::seconds(std::min<uint64_t>(v.get<uint64_t>(), uint64_t(max)));
  if (v.is_number_integer()) return util::clamp_seconds(v.get<int64_t>(), max);
  const double d = v.get<double>();  // nlohmann never yields NaN or infinity from JSON text
  if (!(d > 0)) return std::chrono::seconds{0};
  if (d >= double(max)) return TokenCache::kMaxLifetime;
  return std::chrono::seconds(int64_t(d));
}

// Reads exactly `n` decimal digits at `pos` (no sign, no spaces).
std::optional<int> digits(std::string_view s, size_t pos, size_t n) {
  if (pos > s.size() || n > s.size() - pos) return std::nullopt;
  const auto v = util::parse_u64(s.substr(pos, n));
  if (!v) return std::nullopt;
  return int(*v);
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
  using namespace std::chrono;
  // 2006-01-02T15:04:05[.frac](Z|+hh:mm|-hh:mm)
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return std::nullopt;
  const auto y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
  const auto h = digits(s, 11, 2), mi = digits(s, 14, 2), sec = digits(s, 17, 2);
  if (!y || !mo || !d || !h || !mi || !sec || *h > 23 || *mi > 59 || *sec > 60) return std::nullopt;
  const year_month_day ymd{year{*y}, month{unsigned(*mo)}, day{unsigned(*d)}};
  if (!ymd.ok()) return std::nullopt;
  size_t i = 19;
  nanoseconds frac{0};
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t start = i;
    int64_t scale = 100'000'000;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      frac += nanoseconds{(s[i] - '0') * scale};
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  seconds offset{0};
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    const auto oh = digits(s, i + 1, 2), om = digits(s, i + 4, 2);
    if (!oh || !om || *oh > 23 || *om > 59) return std::nullopt;
    offset = hours{*oh} + minutes{*om};
    if (s[i] == '-') offset = -offset;
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  // In seconds first (safe for any 4-digit year), then only if system_clock can hold it.
  const sys_seconds t = sys_days{ymd} + hours{*h} + minutes{*mi} + seconds{*sec} - offset;
  if (t < kEarliest || t > kLatest) return std::nullopt;
  return time_point_cast<system_clock::duration>(t) + duration_cast<system_clock::duration>(frac);
}

std::optional<TokenResponse> parse_token_response(std::string_view body) {
  util::JsonLimits limits;
  limits.max_bytes = kMaxTokenResponseBytes;
  limits.max_depth = 16;
  const auto j = util::parse_json(body, limits);
  if (!j || !j->is_object()) return std::nullopt;
  TokenResponse out;
  for (const char* name : {"token", "access_token"}) {
    const auto it = j->find(name);
    if (it != j->end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      out.token = it->get<std::string>();
      break;
    }
  }
  if (out.token.empty()) return std::nullopt;
  if (const auto it = j->find("expires_in"); it != j->end() && it->is_number())
    out.expires_in = lifetime_of(*it);
  if (const auto it = j->find("issued_at"); it != j->end() && it->is_string())
    out.issued_at = parse_rfc3339(it->get_ref<const std::string&>());
  return out;
}

}  // namespace wharf::proxy
