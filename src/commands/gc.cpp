// wharf garbage-collect CONFIG [--dry-run] [--delete-untagged]: offline mark and sweep (registry:2's verb),
// with storage.retention applied first.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "cache/fs/fs_store.hpp"
#include "cache/gc.hpp"
#include "cache/index.hpp"
#include "src/commands/commands.hpp"
#include "src/commands/stores.hpp"

namespace wharf::commands {

int garbage_collect(const config::Config& cfg, const std::vector<std::string>& args) {
  cache::GcOptions opts;  // grace 0: the server is expected to be stopped, as with registry:2
  opts.retention = cfg.retention;
  opts.immutable_tags = cfg.immutable_tags;
  for (const auto& a : args) {
    if (a == "--dry-run" || a == "-d") {
      opts.dry_run = cache::DryRun::Yes;
    } else if (a == "--delete-untagged" || a == "-m") {
      opts.untagged = cache::Untagged::Delete;
    } else {
      std::fprintf(stderr, "usage: wharf garbage-collect CONFIG [--dry-run] [--delete-untagged]\n");
      return 2;
    }
  }
  auto stores = open_stores(cfg);
  if (!stores) {
    spdlog::error("{}", stores.error());
    return 1;
  }
  // With the index in PostgreSQL, fronts may be running: the verb takes their maintenance lock (held
  // until it returns) and refuses while one of them is collecting or evicting.
  std::unique_ptr<cache::Index::MaintenanceLock> lock;
  if (opts.dry_run == cache::DryRun::No) {
    auto got = stores->index->try_maintenance_lock();
    if (!got) {
      spdlog::error("garbage-collect: {}", got.error());
      return 1;
    }
    if (!*got) {
      spdlog::error("garbage-collect: another wharf sharing the {} index (database.dsn) is collecting garbage or "
                    "evicting now (it holds the maintenance lock); nothing was changed: try again once it is done",
                    stores->index->kind());
      return 1;
    }
    lock = std::move(*got);
  }
  auto r = cache::collect(*stores->index, stores->blobs(), opts);
  if (!r) {
    spdlog::error("{}", r.error());
    return 1;
  }
  const bool dry = opts.dry_run == cache::DryRun::Yes;
  for (const auto& what : r->deleted) std::printf("%s%s\n", dry ? "would delete " : "deleted ", what.c_str());
  std::printf("%s: %zu tags, %zu manifests untagged, %zu manifests, %zu blobs, %zu files, %llu bytes\n",
              dry ? "would free (dry run)" : "freed", r->tags_deleted, r->manifests_untagged, r->manifests_deleted, r->blobs_deleted,
              r->files_deleted, static_cast<unsigned long long>(r->bytes_freed));
  return 0;
}

}  // namespace wharf::commands
