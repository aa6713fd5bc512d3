// REGISTRY_* environment overrides, applied as registry:2 does: REGISTRY_ + the key path in upper case with
// "_" between levels; the value is read as YAML of the key's type; variables apply in lexical order.
#include <cctype>

#include "src/config/config.hpp"
#include "src/config/schema.hpp"

extern char** environ;

namespace wharf::config {

std::string env_var_name(std::string_view key_path) {
  std::string out = "REGISTRY_";
  for (char c : key_path) out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::map<std::string, std::string> registry_env() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view kv(*e);
    const size_t eq = kv.find('=');
    if (!kv.starts_with("REGISTRY_") || eq == std::string_view::npos) continue;
    out.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return out;
}

namespace detail {
namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    parts.emplace_back(path.substr(start, dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

// The node at `path`, or an undefined node.
YAML::Node find_at(const YAML::Node& root, std::string_view path) {
  YAML::Node cur;
  cur.reset(root);
  for (const std::string& part : split_path(path)) {
    if (!cur.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& const_cur = cur;
    YAML::Node next = const_cur[part];
    if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    cur.reset(next);
  }
  return cur;
}

enum class Overwrite { Always, IfAbsent };

// Stores `value` at `path`, turning whatever is in the way into mappings ("storage: filesystem" into
// {filesystem: ~}, so the driver survives).
void set_at(YAML::Node root, std::string_view path, const YAML::Node& value, Overwrite mode) {
  const std::vector<std::string> parts = split_path(path);
  YAML::Node cur;
  cur.reset(root);
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    walked += (walked.empty() ? "" : ".") + parts[i];
    YAML::Node next;
    next.reset(cur[parts[i]]);
    if (!next.IsMap()) {
      YAML::Node map(YAML::NodeType::Map);
      const Field* f = find_field(walked);
      if (next.IsScalar() && f != nullptr && !f->spec.driver_error.empty()) map[next.Scalar()] = YAML::Node();
      cur[parts[i]] = map;
      next.reset(cur[parts[i]]);
    }
    cur.reset(next);
  }
  if (mode == Overwrite::IfAbsent && cur[parts.back()].IsDefined() && !cur[parts.back()].IsNull()) return;
  cur[parts.back()] = value;
}

// The variable's value as registry:2 would unmarshal it: YAML, but structured YAML only for list/map keys.
YAML::Node env_value(const std::string& raw, KeyType type) {
  YAML::Node parsed;
  try {
    parsed = YAML::Load(raw);
  } catch (const YAML::Exception&) {
    return YAML::Node(raw);
  }
  if (parsed.IsNull() || parsed.IsScalar()) return parsed;
  const bool structured = type == KeyType::StringList || type == KeyType::HeaderMap ||
                          type == KeyType::UpstreamList || type == KeyType::AccessRules || type == KeyType::FetchRules ||
                          type == KeyType::GroupMap || type == KeyType::RetentionRules || type == KeyType::Any || type == KeyType::Section;
  return structured ? parsed : YAML::Node(raw);
}

// A variable naming a key exactly.
void apply_exact(YAML::Node& root, const Field& f, const std::string& name, const std::string& raw,
                 std::map<std::string, std::string>& sources, std::vector<std::string>& warnings) {
  const KeySpec& spec = f.spec;
  if (spec.type == KeyType::Version) {
    warnings.push_back(name + ": the configuration version cannot be set from the environment, ignored");
    return;
  }
  if (spec.type == KeyType::Section && !spec.driver_error.empty()) {
    // REGISTRY_AUTH=htpasswd, REGISTRY_STORAGE=filesystem: names the one driver.
    const std::string driver = lower(raw);
    const YAML::Node existing = find_at(root, spec.path);
    if (!(existing.IsMap() && existing[driver].IsDefined())) {
      YAML::Node map(YAML::NodeType::Map);
      map[driver] = YAML::Node();
      set_at(root, spec.path, map, Overwrite::Always);
    }
  } else if (spec.type == KeyType::Section) {
    const YAML::Node value = env_value(raw, spec.type);
    const std::string disable_key = std::string(spec.path) + ".disable";
    if (value.IsScalar() && find_field(disable_key) != nullptr) {
      // REGISTRY_STORAGE_REDIRECT=true|false: a switch for a section that has a `disable` key.
      const std::string b = lower(value.Scalar());
      if (b == "true" || b == "false") {
        set_at(root, disable_key, YAML::Node(b == "true" ? "false" : "true"), Overwrite::Always);
        sources[disable_key] = name;
        return;
      }
    }
    if (!value.IsMap()) {
      warnings.push_back(name + ": must be a YAML mapping for " + std::string(spec.path) + ", ignored");
      return;
    }
    set_at(root, spec.path, value, Overwrite::Always);
  } else {
    set_at(root, spec.path, env_value(raw, spec.type), Overwrite::Always);
  }
  sources[std::string(spec.path)] = name;
}

// A variable below a key that takes arbitrary children (a driver section or an opaque registry:2 section).
void apply_below(YAML::Node& root, const Field& f, const std::string& name, std::map<std::string, std::string>& sources,
                 std::vector<std::string>& warnings) {
  const KeySpec& spec = f.spec;
  std::string path(spec.path);
  if (!spec.driver_error.empty()) {
    const std::string rest = name.substr(env_var_name(spec.path).size() + 1);
    path += '.';
    path += lower(rest.substr(0, rest.find('_')));
    if (find_field(path) != nullptr) {
      warnings.push_back(name + ": unknown environment variable, ignored");
      return;
    }
  } else if (spec.use == KeyUse::Warned) {
    warnings.push_back(name + ": " + path + ": " + std::string(spec.note));
    return;
  } else if (spec.use != KeyUse::Rejected) {
    return;
  }
  // An unsupported driver: make it appear so loading refuses it, as registry:2 would switch to it.
  set_at(root, path, YAML::Node(YAML::NodeType::Map), Overwrite::IfAbsent);
  sources[path] = name;
}

}  // namespace

void apply_env(YAML::Node& root, const std::map<std::string, std::string>& env,
               std::map<std::string, std::string>& sources, std::vector<std::string>& warnings) {
  for (const auto& [name, raw] : env) {  // std::map iterates in lexical order, like registry:2
    if (!name.starts_with("REGISTRY_")) continue;
    const Field* exact = nullptr;
    const Field* below = nullptr;
    size_t below_len = 0;
    for (const Field& f : fields()) {
      const std::string var = env_var_name(f.spec.path);
      if (var == name) {
        exact = &f;
        break;
      }
      const bool open = f.spec.type == KeyType::Any || !f.spec.driver_error.empty();
      if (open && name.size() > var.size() + 1 && name.starts_with(var) && name[var.size()] == '_' &&
          var.size() > below_len) {
        below = &f;
        below_len = var.size();
      }
    }
    if (exact != nullptr) {
      apply_exact(root, *exact, name, raw, sources, warnings);
    } else if (below != nullptr) {
      apply_below(root, *below, name, sources, warnings);
    } else {
      warnings.push_back(name + ": unknown environment variable, ignored");
    }
  }
}

}  // namespace detail
}  // namespace wharf::config
