// Access rules: groups expanded into user sets at load, so a check is a few glob matches and set lookups.
#include "src/auth/rules.hpp"

namespace wharf::auth {

uint8_t parse_actions(const std::vector<std::string>& names) {
  uint8_t out = 0;
  for (const std::string& n : names) {
    if (n == "pull") out |= kPull;
    else if (n == "push") out |= kPush;
    else if (n == "delete") out |= kDelete;
    else if (n == "*") out |= kAll;
  }
  return out;
}

std::vector<std::string> action_names(uint8_t actions) {
  std::vector<std::string> out;
  if (actions & kPull) out.emplace_back("pull");
  if (actions & kPush) out.emplace_back("push");
  if (actions & kDelete) out.emplace_back("delete");
  return out;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative with one backtrack point: linear in practice, never recursive.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Rules::Rules(const config::Config& cfg, Default fallback) : fallback_(fallback) {
  for (const config::AccessRule& r : cfg.access_rules) rules_.push_back(compile(cfg, r));
  for (const config::AccessRule& r : cfg.fetch_rules) fetch_.push_back(compile(cfg, r));
  for (const std::string& e : cfg.immutable_tags) {
    const size_t colon = e.rfind(':');
    if (colon != std::string::npos) immutable_.emplace_back(e.substr(0, colon), e.substr(colon + 1));
  }
}

bool Rules::tag_immutable(std::string_view repo, std::string_view tag) const {
  for (const auto& [repos, tags] : immutable_)
    if (glob_match(tags, tag) && glob_match(repos, repo)) return true;
  return false;
}

Rules::Rule Rules::compile(const config::Config& cfg, const config::AccessRule& r) {
  Rule rule;
  rule.match = r.match;
  rule.anonymous = r.anonymous;
  rule.actions = parse_actions(r.actions);
  for (const std::string& u : r.users) {
    if (u == "*") rule.any_user = true;
    else rule.users.insert(u);
  }
  for (const std::string& g : r.groups) {
    if (auto it = cfg.groups.find(g); it != cfg.groups.end()) rule.users.insert(it->second.begin(), it->second.end());
  }
  return rule;
}

bool Rules::may_fetch(std::string_view user, std::string_view upstream) const {
  bool listed = false;
  for (const Rule& r : fetch_) {
    if (r.match != upstream) continue;
    listed = true;
    if (r.anonymous || (!user.empty() && (r.any_user || r.users.contains(user)))) return true;
  }
  return !listed;
}

uint8_t Rules::allowed(std::string_view user, std::string_view repo) const {
  if (rules_.empty()) return !user.empty() || fallback_ == Default::AllowAll ? kAll : 0;
  uint8_t out = 0;
  for (const Rule& r : rules_) {
    // Named users get the rule's actions; anonymous: true gives everybody its pull.
    const bool named = !user.empty() && (r.any_user || r.users.contains(user));
    const uint8_t grant = named ? r.actions : r.anonymous ? uint8_t(r.actions & kPull) : uint8_t(0);
    if ((out | grant) == out || !glob_match(r.match, repo)) continue;
    out |= grant;
  }
  return out;
}

bool Rules::anonymous_can_pull_somewhere() const {
  if (rules_.empty()) return fallback_ == Default::AllowAll;
  for (const Rule& r : rules_)
    if (r.anonymous && (r.actions & kPull)) return true;
  return false;
}

}  // namespace wharf::auth
