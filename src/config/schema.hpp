#pragma once
// Internal to src/config: the key table with, for each key, how its converted value lands in the Config.
#include <yaml-cpp/yaml.h>

#include <expected>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "src/config/config.hpp"

namespace wharf::config::detail {

using Headers = std::vector<std::pair<std::string, std::string>>;

// A key's value after conversion according to its KeyType (monostate for Section/Any).
using Value = std::variant<std::monostate, std::string, bool, int64_t, std::chrono::seconds, uint64_t,
                           std::vector<std::string>, Headers, std::vector<Upstream>, std::vector<AccessRule>,
                           std::vector<RetentionRule>,
                           std::map<std::string, std::vector<std::string>>>;

// The Config being built, plus what can only be settled once the whole document is read.
struct Draft : Config {
  std::string remote_url;       // proxy.remoteurl
  std::string remote_username;  // proxy.username
  std::string remote_password;  // proxy.password
  std::vector<Upstream> extra_upstreams;  // proxy.upstreams
  std::string legacy_log_level;           // top-level "loglevel" (used only without log.level)
};

// Lets a key's handler add warnings that name the key.
struct Notes {
  std::string_view key;
  std::vector<std::string>& warnings;
  void warn(std::string_view message) const { warnings.push_back(std::string(key) + ": " + std::string(message)); }
};

// Stores a converted value; fails with a message (the caller prefixes the key path).
using Apply = std::expected<void, std::string> (*)(Draft&, const Value&, const Notes&);

struct Field {
  KeySpec spec;
  Apply apply = nullptr;  // only for KeyUse::Used leaves
};

// The whole table, parents before children.
std::span<const Field> fields();
// The field for a dotted path; nullptr if unknown.
const Field* find_field(std::string_view path);

// Converts a YAML node to `type`; fails naming notes.key (or, inside lists and maps, the entry's own path).
std::expected<Value, ConfigError> convert(const YAML::Node& node, KeyType type, const Notes& notes);

// auth.access: a list of {match, users, groups, actions, anonymous}; fails naming the entry and member.
std::expected<Value, ConfigError> access_rules(const YAML::Node& node, const Notes& notes);
// auth.fetch: a list of {upstream, users, groups, anonymous} (upstream lands in AccessRule::match).
std::expected<Value, ConfigError> fetch_rules(const YAML::Node& node, const Notes& notes);
// storage.retention: a list of {match, tags, keep}; fails naming the entry and member.
std::expected<Value, ConfigError> retention_rules(const YAML::Node& node, const Notes& notes);
// auth.groups: a mapping of group name → list of user names; fails naming the group.
std::expected<Value, ConfigError> group_map(const YAML::Node& node, const Notes& notes);
// Cross-key checks of the access-control keys, once the whole document is read; fails naming the key.
std::expected<void, ConfigError> finish_access(Draft& d, bool token_present);

// Overlays REGISTRY_* variables from `env` onto `root`, in lexical order like registry:2.
// Records which key each variable set in `sources` (key path → variable) and warns about unknown ones.
void apply_env(YAML::Node& root, const std::map<std::string, std::string>& env,
               std::map<std::string, std::string>& sources, std::vector<std::string>& warnings);

// Checks "host:port" (host may be empty, a name, IPv4 or [IPv6]; port 1..65535); the problem, if any.
std::optional<std::string> check_listen_addr(const std::string& addr);
// ASCII lower case.
std::string lower(std::string_view s);
// The host[:port] of an http:// or https:// URL; nullopt if it is not one.
std::optional<std::string> url_host(std::string_view url);

}  // namespace wharf::config::detail
