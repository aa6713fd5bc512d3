#pragma once
// Decides whether a repository name is served locally or pulled through an upstream, and under which
// names. Pure: the caller supplies what it knows about the local store.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::proxy {

struct RoutingTable {
  std::vector<std::string> upstreams;         // configured upstream names ("docker.io", "ghcr.io", ...)
  std::string default_upstream;               // used for bare names; empty: bare names are local
  std::vector<std::string> local_namespaces;  // name prefixes that are never proxied
};

struct Decision {
  bool proxied = false;
  std::string upstream;     // upstream name when proxied
  std::string remote_repo;  // repository name on the upstream ("library/alpine")
  std::string cache_repo;   // repository name in wharf's store ("docker.io/library/alpine"); the local name otherwise
  bool explicit_upstream = false;  // chosen by ?ns= or a path prefix, not by default
};

// Routes `name` (already valid) with the containerd `ns` query parameter (may be empty):
// 1. a first path component equal to an upstream name → that upstream (rest of the path is the repo);
// 2. ns naming an upstream → that upstream;
// 3. a local namespace, or a repository that exists locally (`local_exists`) → local;
// 4. otherwise the default upstream, if any → proxied; else local.
// Docker Hub official images are "library/<name>": a one-component name sent to docker.io gets that prefix.
Decision route(const RoutingTable& table, std::string_view name, std::string_view ns, bool local_exists);

// True if `name` lies in one of `namespaces` ("team" matches "team" and "team/app").
bool in_namespaces(const std::vector<std::string>& namespaces, std::string_view name);

}  // namespace wharf::proxy
