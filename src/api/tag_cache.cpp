// The per-front manifest lookup cache of src/api/tag_cache.hpp.
#include "src/api/tag_cache.hpp"

#include <algorithm>
#include <vector>

#include "src/util/number.hpp"

namespace wharf::api {

namespace {

// Splits on tabs.
std::vector<std::string_view> fields(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t start = 0;;) {
    size_t tab = s.find('\t', start);
    out.push_back(s.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
    if (tab == std::string_view::npos) return out;
    start = tab + 1;
  }
}

}  // namespace

void TagCache::set_enabled(bool on) {
  enabled_ = on;
  clear();
}

void TagCache::clear() {
  ++generation_;
  repos_.clear();
  count_ = 0;
}

const TagCache::Entry* TagCache::get(const std::string& repo, const std::string& ref) {
  if (!enabled_) return nullptr;
  if (auto r = repos_.find(repo); r != repos_.end())
    if (auto e = r->second.find(ref); e != r->second.end()) {
      ++hits_;
      return &e->second;
    }
  ++misses_;
  return nullptr;
}

void TagCache::put(uint64_t seen, const std::string& repo, const std::string& ref, Entry e) {
  if (!enabled_ || seen != generation_) return;
  if (count_ >= kMaxEntries) clear();  // simple and bounded: start over when full
  if (repos_[repo].insert_or_assign(ref, std::move(e)).second) ++count_;
}

void TagCache::forget(const std::string& repo, const std::string& ref) {
  ++generation_;
  if (ref.empty()) return drop_repo(repo);
  if (auto r = repos_.find(repo); r != repos_.end()) count_ -= r->second.erase(ref);
}

void TagCache::drop_repo(std::string_view repo) {
  if (auto r = repos_.find(std::string(repo)); r != repos_.end()) {
    count_ -= r->second.size();
    repos_.erase(r);
  }
}

void TagCache::apply(std::string_view payload, int64_t now_ms) {
  ++notifications_;
  ++generation_;
  auto f = fields(payload);
  std::optional<int64_t> sent = f.size() >= 3 ? util::parse_i64(f.back(), 0) : std::nullopt;
  if (sent) {
    last_lag_ = double(std::max<int64_t>(0, now_ms - *sent)) / 1000.0;
    max_lag_ = std::max(max_lag_, last_lag_);
  }
  if (!sent || f[0].size() != 1) return clear();
  if (f[0] == "t" && f.size() == 4) {
    if (auto r = repos_.find(std::string(f[1])); r != repos_.end()) {
      count_ -= r->second.erase(std::string(f[2]));
      // Entries by digest stay: a tag move changes no manifest.
    }
    return;
  }
  if (f[0] == "r" && f.size() == 3) return drop_repo(f[1]);
  if (f[0] == "m" && f.size() == 3) {
    for (auto& [repo, refs] : repos_)
      std::erase_if(refs, [&](const auto& kv) {
        if (kv.second.digest != f[1]) return false;
        --count_;
        return true;
      });
    return;
  }
  clear();  // a kind this wharf does not know: forget everything rather than serve something stale
}

}  // namespace wharf::api
