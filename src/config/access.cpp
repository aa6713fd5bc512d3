// The access-control keys: auth.access rules, auth.groups, and the checks across auth.token's keys.
#include "src/config/schema.hpp"
#include "src/util/number.hpp"

namespace wharf::config::detail {
namespace {

std::unexpected<ConfigError> fail(std::string key, std::string message) {
  return std::unexpected(ConfigError{std::move(key), std::move(message)});
}

// A scalar or a list of scalars, as a list.
std::expected<std::vector<std::string>, std::string> names(const YAML::Node& n) {
  if (n.IsNull()) return std::vector<std::string>{};
  if (n.IsScalar()) return std::vector<std::string>{n.Scalar()};
  if (!n.IsSequence()) return std::unexpected("must be a list of names");
  std::vector<std::string> out;
  for (const YAML::Node& item : n) {
    if (!item.IsScalar() || item.Scalar().empty()) return std::unexpected("must be a list of non-empty names");
    out.push_back(item.Scalar());
  }
  return out;
}

bool valid_pattern(const std::string& p) {
  if (p.empty() || p.size() > 255) return false;
  for (char c : p) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
                    c == '/' || c == '*' || c == '?';
    if (!ok) return false;
  }
  return true;
}

bool valid_tag_pattern(const std::string& p) {
  if (p.empty() || p.size() > 128) return false;
  for (char c : p) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-' || c == '*' || c == '?';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::expected<Value, ConfigError> access_rules(const YAML::Node& node, const Notes& notes) {
  const std::string key(notes.key);
  if (!node.IsSequence()) return fail(key, "must be a list of rules such as {match: \"team-a/*\", users: [alice], actions: [pull, push]}");
  std::vector<AccessRule> out;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string at = key + std::string("[") + std::to_string(i) + "]";
    const YAML::Node entry = node[i];
    if (!entry.IsMap()) return fail(at, "must be a mapping with match and actions");
    AccessRule r;
    for (const auto& kv : entry) {
      const std::string k = kv.first.as<std::string>();
      const std::string member = at + "." + k;
      if (k == "match") {
        if (!kv.second.IsScalar()) return fail(member, "must be a repository name pattern");
        r.match = kv.second.Scalar();
      } else if (k == "users" || k == "groups" || k == "actions") {
        auto list = names(kv.second);
        if (!list) return fail(member, list.error());
        (k == "users" ? r.users : k == "groups" ? r.groups : r.actions) = std::move(*list);
      } else if (k == "anonymous") {
        if (!kv.second.IsScalar() || !YAML::convert<bool>::decode(kv.second, r.anonymous))
          return fail(member, "must be true or false");
      } else {
        notes.warnings.push_back(member + ": unknown key, ignored");
      }
    }
    if (r.match.empty()) return fail(at + ".match", "missing; every rule needs a repository pattern such as \"team-a/*\"");
    if (!valid_pattern(r.match))
      return fail(at + ".match", "\"" + r.match + "\" is not a pattern of lowercase repository name characters, * and ?");
    if (r.actions.empty()) return fail(at + ".actions", "missing; list pull, push and/or delete");
    for (const std::string& a : r.actions) {
      if (a != "pull" && a != "push" && a != "delete" && a != "*")
        return fail(at + ".actions", "unknown action \"" + a + "\"; use pull, push, delete or *");
    }
    if (r.users.empty() && r.groups.empty() && !r.anonymous)
      return fail(at, "grants nobody anything; name users, groups or set anonymous: true");
    out.push_back(std::move(r));
  }
  return out;
}

std::expected<Value, ConfigError> fetch_rules(const YAML::Node& node, const Notes& notes) {
  const std::string key(notes.key);
  if (!node.IsSequence()) return fail(key, "must be a list such as {upstream: docker.io, groups: [ci]}");
  std::vector<AccessRule> out;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string at = key + std::string("[") + std::to_string(i) + "]";
    const YAML::Node entry = node[i];
    if (!entry.IsMap()) return fail(at, "must be a mapping with upstream and users or groups");
    AccessRule r;
    r.actions = {"fetch"};
    for (const auto& kv : entry) {
      const std::string k = kv.first.as<std::string>();
      const std::string member = at + "." + k;
      if (k == "upstream") {
        if (!kv.second.IsScalar() || kv.second.Scalar().empty()) return fail(member, "must be an upstream name such as docker.io");
        r.match = kv.second.Scalar();
      } else if (k == "users" || k == "groups") {
        auto list = names(kv.second);
        if (!list) return fail(member, list.error());
        (k == "users" ? r.users : r.groups) = std::move(*list);
      } else if (k == "anonymous") {
        if (!kv.second.IsScalar() || !YAML::convert<bool>::decode(kv.second, r.anonymous))
          return fail(member, "must be true or false");
      } else {
        notes.warnings.push_back(member + ": unknown key, ignored");
      }
    }
    if (r.match.empty()) return fail(at + ".upstream", "missing; name the upstream (e.g. docker.io)");
    out.push_back(std::move(r));
  }
  return out;
}

std::expected<Value, ConfigError> retention_rules(const YAML::Node& node, const Notes& notes) {
  const std::string key(notes.key);
  if (!node.IsSequence()) return fail(key, "must be a list of rules such as {match: \"team-a/*\", tags: \"pr-*\", keep: 5}");
  std::vector<RetentionRule> out;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string at = key + std::string("[") + std::to_string(i) + "]";
    const YAML::Node entry = node[i];
    if (!entry.IsMap()) return fail(at, "must be a mapping with match, tags and keep");
    RetentionRule r;
    bool has_keep = false;
    for (const auto& kv : entry) {
      const std::string k = kv.first.as<std::string>();
      const std::string member = at + "." + k;
      if (k == "match" || k == "tags") {
        if (!kv.second.IsScalar()) return fail(member, "must be a pattern");
        (k == "match" ? r.match : r.tags) = kv.second.Scalar();
      } else if (k == "keep") {
        const auto n = kv.second.IsScalar() ? util::parse_u64(kv.second.Scalar(), 1000000) : std::nullopt;
        if (!n) return fail(member, "must be a whole number of tags to keep (0 to 1000000)");
        r.keep = int64_t(*n);
        has_keep = true;
      } else {
        notes.warnings.push_back(member + ": unknown key, ignored");
      }
    }
    if (r.match.empty()) return fail(at + ".match", "missing; every rule needs a repository pattern such as \"team-a/*\"");
    if (!valid_pattern(r.match))
      return fail(at + ".match", "\"" + r.match + "\" is not a pattern of lowercase repository name characters, * and ?");
    if (r.tags.empty()) r.tags = "*";
    if (!valid_tag_pattern(r.tags))
      return fail(at + ".tags", "\"" + r.tags + "\" is not a pattern of tag characters (A-Z a-z 0-9 _ . -), * and ?");
    if (!has_keep) return fail(at + ".keep", "missing; say how many of the newest matching tags to keep");
    out.push_back(std::move(r));
  }
  return out;
}

std::expected<Value, ConfigError> group_map(const YAML::Node& node, const Notes& notes) {
  const std::string key(notes.key);
  if (!node.IsMap()) return fail(key, "must map group names to lists of user names");
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& kv : node) {
    const std::string group = kv.first.as<std::string>();
    auto members = names(kv.second);
    if (!members) return fail(key + "." + group, members.error());
    out[group] = std::move(*members);
  }
  return out;
}

std::expected<void, ConfigError> finish_access(Draft& d, bool token_present) {
  d.token_enabled = token_present;
  if (d.forward_credentials && (token_present || !d.htpasswd_path.empty()))
    return fail("proxy.forwardcredentials",
                "cannot be combined with auth.htpasswd or auth.token: the client's Authorization header carries its "
                "upstream account, so wharf's own sign-in must be off");
  if (d.forward_credentials && !d.fetch_rules.empty())
    return fail("proxy.forwardcredentials", "cannot be combined with auth.fetch (which needs wharf's own sign-in)");
  for (size_t i = 0; i < d.access_rules.size(); ++i) {
    for (const std::string& g : d.access_rules[i].groups) {
      if (!d.groups.contains(g))
        return fail(std::string("auth.access[") + std::to_string(i) + "].groups", "group \"" + g + "\" is not defined in auth.groups");
    }
  }
  for (size_t i = 0; i < d.fetch_rules.size(); ++i) {
    const std::string at = std::string("auth.fetch[") + std::to_string(i) + "]";
    bool known = false;
    for (const Upstream& u : d.upstreams) known = known || u.name == d.fetch_rules[i].match;
    if (!known) return fail(at + ".upstream", "no upstream named \"" + d.fetch_rules[i].match + "\" is configured");
    for (const std::string& g : d.fetch_rules[i].groups)
      if (!d.groups.contains(g)) return fail(at + ".groups", "group \"" + g + "\" is not defined in auth.groups");
  }
  for (size_t i = 0; i < d.immutable_tags.size(); ++i) {
    const std::string& e = d.immutable_tags[i];
    const size_t colon = e.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == e.size() || !valid_pattern(e.substr(0, colon)))
      return fail("auth.immutabletags[" + std::to_string(i) + "]",
                  "\"" + e + "\" must be REPOSITORY_PATTERN:TAG_PATTERN, e.g. \"team-a/*:v*\"");
  }
  if (!token_present) return {};
  if (d.token_realm.empty() && d.token_signing_keys.empty())
    return fail("auth.token.signingkeys", "missing; wharf issues tokens itself when auth.token.realm is empty, and needs a key to sign them");
  if (!d.token_realm.empty() && d.token_root_certs.empty() && d.token_jwks.empty())
    return fail("auth.token.rootcertbundle",
                "missing; required (or auth.token.jwks) to verify tokens from the external realm");
  return {};
}

}  // namespace wharf::config::detail
