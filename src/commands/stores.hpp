#pragma once
// Opening the store of a configuration from an offline verb (the server may be running: LMDB
// coordinates processes through its lock file, and <root>/tmp is never cleaned here).
#include <expected>
#include <filesystem>
#include <memory>
#include <string>

#include "cache/fs/fs_store.hpp"
#include "cache/index.hpp"
#include "cache/index_lmdb.hpp"
#include "cache/pg/open_index.hpp"
#include "src/config/config.hpp"

namespace wharf::commands {

struct Stores {
  std::unique_ptr<cache::FsBlobStore> store;
  std::unique_ptr<cache::Index> index;
};

// Opens the blob store under storage.filesystem.rootdirectory and the configured index; the error names the key.
inline std::expected<Stores, std::string> open_stores(const config::Config& cfg) {
  std::filesystem::path root = cfg.root_directory;
  auto store = cache::FsBlobStore::open(root);
  if (!store) return std::unexpected("storage.filesystem.rootdirectory: " + store.error());
  auto index = cache::open_index(cfg);  // database.dsn: PostgreSQL; else LMDB under the root
  if (!index) return std::unexpected(index.error());
  return Stores{std::make_unique<cache::FsBlobStore>(std::move(*store)), std::move(*index)};
}

}  // namespace wharf::commands
