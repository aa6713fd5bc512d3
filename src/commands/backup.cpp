// wharf backup CONFIG DIR (online) and wharf restore CONFIG DIR [--force] (offline).
#include <spdlog/spdlog.h>

#include <cstdio>

#include "cache/backup.hpp"
#include "src/commands/commands.hpp"
#include "src/commands/stores.hpp"

namespace wharf::commands {

int backup(const config::Config& cfg, const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0].starts_with("-")) {
    std::fprintf(stderr, "usage: wharf backup CONFIG DIR\n");
    return 2;
  }
  auto stores = open_stores(cfg);
  if (!stores) {
    spdlog::error("{}", stores.error());
    return 1;
  }
  auto r = cache::backup(*stores->index, *stores->store, args[0]);
  if (!r) {
    spdlog::error("backup failed: {}", r.error());
    return 1;
  }
  for (const auto& d : r->missing) spdlog::warn("backup: {} is recorded in the index but missing from the store", d);
  std::printf("backup of %s in %s: %zu files linked, %zu copied, %llu bytes\n", cfg.root_directory.c_str(), args[0].c_str(),
              r->linked, r->copied, static_cast<unsigned long long>(r->bytes));
  if (r->missing_referenced > 0) {
    spdlog::error("backup incomplete: {} referenced blob(s) missing from the store", r->missing_referenced);
    return 1;
  }
  return 0;
}

int restore(const config::Config& cfg, const std::vector<std::string>& args) {
  std::string dir;
  cache::Force force = cache::Force::No;
  for (const auto& a : args) {
    if (a == "--force" || a == "-f") {
      force = cache::Force::Yes;
    } else if (dir.empty() && !a.starts_with("-")) {
      dir = a;
    } else {
      dir.clear();
      break;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "usage: wharf restore CONFIG DIR [--force]\n");
    return 2;
  }
  auto r = cache::restore(dir, cfg.root_directory, force);
  if (!r) {
    spdlog::error("restore failed: {}", r.error());
    return 1;
  }
  std::printf("restored %s from %s: %zu files linked, %zu copied, %llu bytes\n", cfg.root_directory.c_str(),
              dir.c_str(), r->linked, r->copied, static_cast<unsigned long long>(r->bytes));
  return 0;
}

}  // namespace wharf::commands
