#pragma once
// Access rules compiled once from the configuration: for a caller and a repository, the set of actions
// (pull, push, delete) allowed. Rules only grant; a caller gets the union of every rule that matches.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "src/auth/actions.hpp"
#include "src/config/config.hpp"

namespace wharf::auth {

// The action bits of names such as "pull", "push", "delete", "*"; unknown names add nothing.
uint8_t parse_actions(const std::vector<std::string>& names);
// The names of the bits set in `actions`, in the order pull, push, delete.
std::vector<std::string> action_names(uint8_t actions);
// Glob match: '*' matches any run of characters (including '/'), '?' any one character.
bool glob_match(std::string_view pattern, std::string_view text);

class Rules {
 public:
  // How callers are treated when no rule is configured.
  enum class Default { AllowAll, AuthenticatedOnly };

  // No rules: everything allowed (as with Default::AllowAll).
  Rules() = default;
  // Compiles auth.access and auth.groups (already validated by the config loader).
  Rules(const config::Config& cfg, Default fallback);

  // Actions `user` (empty: anonymous) may take on `repo`. Without rules: everything for authenticated
  // users, and for anonymous ones only under Default::AllowAll.
  uint8_t allowed(std::string_view user, std::string_view repo) const;
  // True if some rule lets anonymous callers pull (or there are no rules and no authentication).
  bool anonymous_can_pull_somewhere() const;
  // Whether `user` (empty: anonymous) may make wharf fetch from `upstream`: true for upstreams that no
  // auth.fetch entry names; otherwise only for the users, groups (or anonymous callers) listed.
  bool may_fetch(std::string_view user, std::string_view upstream) const;
  // Whether auth.immutabletags makes `tag` of `repo` immutable (no overwrite, no delete once it exists).
  bool tag_immutable(std::string_view repo, std::string_view tag) const;
  // Whether any immutability rule is configured.
  bool has_immutable_tags() const { return !immutable_.empty(); }
  // Whether any rule is configured.
  bool configured() const { return !rules_.empty(); }

 private:
  struct Rule {
    std::string match;
    std::set<std::string, std::less<>> users;  // user names and groups' members, expanded
    bool any_user = false;                     // users: ["*"]
    bool anonymous = false;
    uint8_t actions = 0;
  };
  static Rule compile(const config::Config& cfg, const config::AccessRule& r);
  std::vector<Rule> rules_;
  std::vector<Rule> fetch_;  // match = upstream name
  std::vector<std::pair<std::string, std::string>> immutable_;  // repository glob, tag glob
  Default fallback_ = Default::AllowAll;
};

}  // namespace wharf::auth
