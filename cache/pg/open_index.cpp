// The index a configuration names.
#include "cache/pg/open_index.hpp"

#include <filesystem>

#include "cache/pg/pg_index.hpp"

namespace wharf::cache {

std::expected<std::unique_ptr<Index>, std::string> open_index(const config::Config& cfg, Damaged damaged) {
  if (!cfg.database_dsn.empty()) {
    auto pg = PgIndex::open(cfg.database_dsn, size_t(cfg.database_pool_size));
    if (!pg) return std::unexpected(pg.error());
    return std::unique_ptr<Index>(std::move(*pg));
  }
  auto lmdb = LmdbIndex::open(std::filesystem::path(cfg.root_directory) / "index", size_t(64) << 30, damaged);
  if (!lmdb) return std::unexpected("storage.filesystem.rootdirectory: cannot open the index: " + lmdb.error());
  return std::unique_ptr<Index>(std::move(*lmdb));
}

}  // namespace wharf::cache
