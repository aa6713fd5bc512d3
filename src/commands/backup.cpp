// wharf backup CONFIG DIR [--include-blobs] (online) and wharf restore CONFIG DIR [--force] (offline).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/backup.hpp"
#include "src/commands/commands.hpp"
#include "src/commands/stores.hpp"

namespace wharf::commands {
namespace {

// Logs what a backup or restore could not find or verify; the exit code (1 if a referenced blob is missing
// or a blob is damaged).
int report_gaps(const char* verb, const cache::BackupResult& r) {
  for (const auto& d : r.missing) spdlog::warn("{}: {} is recorded in the index but missing from the store", verb, d);
  for (const auto& d : r.damaged) spdlog::error("{}: {} does not hash to its digest: not copied", verb, d);
  if (r.missing_referenced > 0)
    spdlog::error("{} incomplete: {} referenced blob(s) missing from the store", verb, r.missing_referenced);
  return r.missing_referenced > 0 || !r.damaged.empty() ? 1 : 0;
}

// The DIR argument and whether one of `flags` was given; nullopt (a usage error) for anything else or no DIR.
std::optional<std::pair<std::string, bool>> dir_and_flag(const std::vector<std::string>& args,
                                                         std::initializer_list<std::string_view> flags) {
  std::string dir;
  bool flag = false;
  for (const auto& a : args) {
    if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
      flag = true;
    } else if (dir.empty() && !a.starts_with("-")) {
      dir = a;
    } else {
      return std::nullopt;
    }
  }
  if (dir.empty()) return std::nullopt;
  return std::pair{dir, flag};
}

}  // namespace

int backup(const config::Config& cfg, const std::vector<std::string>& args) {
  auto parsed = dir_and_flag(args, {"--include-blobs"});
  if (!parsed) {
    std::fprintf(stderr, "usage: wharf backup CONFIG DIR [--include-blobs]\n");
    return 2;
  }
  const std::string& dir = parsed->first;
  const cache::IncludeBlobs include = parsed->second ? cache::IncludeBlobs::Yes : cache::IncludeBlobs::No;
  auto stores = open_stores(cfg);
  if (!stores) {
    spdlog::error("{}", stores.error());
    return 1;
  }
  if (stores->s3) {  // the bucket keeps the blobs: the index, and the blobs only when asked
    auto r = cache::backup_remote(*stores->index, stores->blobs(), dir, include);
    if (!r) return spdlog::error("backup failed: {}", r.error()), 1;
    std::printf("backup of the index of %s in %s: %zu blobs checked in bucket %s, %zu downloaded (%llu bytes)\n",
                cfg.root_directory.c_str(), dir.c_str(), r->present, cfg.s3.bucket.c_str(), r->copied,
                static_cast<unsigned long long>(r->bytes));
    return report_gaps("backup", *r);
  }
  auto r = cache::backup(*stores->index, *stores->store, dir);
  if (!r) {
    spdlog::error("backup failed: {}", r.error());
    return 1;
  }
  std::printf("backup of %s in %s: %zu files linked, %zu copied, %llu bytes\n", cfg.root_directory.c_str(), dir.c_str(),
              r->linked, r->copied, static_cast<unsigned long long>(r->bytes));
  return report_gaps("backup", *r);
}

int restore(const config::Config& cfg, const std::vector<std::string>& args) {
  auto parsed = dir_and_flag(args, {"--force", "-f"});
  if (!parsed) {
    std::fprintf(stderr, "usage: wharf restore CONFIG DIR [--force]\n");
    return 2;
  }
  const std::string& dir = parsed->first;
  const cache::Force force = parsed->second ? cache::Force::Yes : cache::Force::No;
  if (cfg.storage_driver == config::StorageDriver::S3) {  // the index goes to the root, missing blobs to the bucket
    if (auto r = cache::restore_index(dir, cfg.root_directory, force); !r)
      return spdlog::error("restore failed: {}", r.error()), 1;
    auto stores = open_stores(cfg);
    if (!stores) return spdlog::error("restore failed: {}", stores.error()), 1;
    auto r = cache::restore_blobs(dir, *stores->index, stores->blobs());
    if (!r) return spdlog::error("restore failed: {}", r.error()), 1;
    std::printf("restored the index of %s from %s: %zu blobs already in bucket %s, %zu uploaded (%llu bytes)\n",
                cfg.root_directory.c_str(), dir.c_str(), r->present, cfg.s3.bucket.c_str(), r->copied,
                static_cast<unsigned long long>(r->bytes));
    return report_gaps("restore", *r);
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
