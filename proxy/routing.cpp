#include "proxy/routing.hpp"

#include <algorithm>

namespace wharf::proxy {

namespace {

bool is_docker_hub(std::string_view upstream) { return upstream == "docker.io" || upstream == "registry-1.docker.io"; }

Decision proxied(std::string_view upstream, std::string_view repo, bool explicit_choice) {
  Decision d;
  d.proxied = true;
  d.upstream = std::string(upstream);
  d.remote_repo = std::string(repo);
  if (is_docker_hub(upstream) && repo.find('/') == std::string_view::npos) d.remote_repo = "library/" + d.remote_repo;
  d.cache_repo = d.upstream + "/" + d.remote_repo;
  d.explicit_upstream = explicit_choice;
  return d;
}

}  // namespace

bool in_namespaces(const std::vector<std::string>& namespaces, std::string_view name) {
  return std::any_of(namespaces.begin(), namespaces.end(), [&](const std::string& ns) {
    return name == ns || (name.size() > ns.size() && name.starts_with(ns) && name[ns.size()] == '/');
  });
}

Decision route(const RoutingTable& table, std::string_view name, std::string_view ns, bool local_exists) {
  auto known = [&](std::string_view u) {
    return std::find(table.upstreams.begin(), table.upstreams.end(), u) != table.upstreams.end();
  };
  size_t slash = name.find('/');
  if (slash != std::string_view::npos && known(name.substr(0, slash)))
    return proxied(name.substr(0, slash), name.substr(slash + 1), true);
  if (!ns.empty() && known(ns)) return proxied(ns, name, true);
  Decision local;
  local.cache_repo = std::string(name);
  if (in_namespaces(table.local_namespaces, name) || local_exists || table.default_upstream.empty()) return local;
  return proxied(table.default_upstream, name, false);
}

}  // namespace wharf::proxy
