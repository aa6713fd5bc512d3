#pragma once
// Opening the store of a configuration from an offline verb (the server may be running: LMDB
// coordinates processes through its lock file, and <root>/tmp is never cleaned here). With storage.s3
// the blobs live in the bucket: the S3 store runs on a private event loop (its blocking calls run the
// loop themselves), and staging and the index stay under storage.filesystem.rootdirectory.
#include <expected>
#include <filesystem>
#include <memory>
#include <string>

#include "cache/fs/fs_store.hpp"
#include "cache/index.hpp"
#include "cache/index_lmdb.hpp"
#include "cache/pg/open_index.hpp"
#include "cache/s3/s3_env.hpp"
#include "src/config/config.hpp"

namespace wharf::commands {

struct Stores {
  std::unique_ptr<cache::FsBlobStore> store;  // the local root (staging; the blobs too without S3)
  std::unique_ptr<cache::Index> index;
  std::unique_ptr<cache::S3Env> s3;  // storage.s3 only; destroyed first (it refers to the index)
  // The backend holding the blobs: the bucket with storage.s3, else the local root.
  cache::BlobBackend& blobs() const {
    return s3 ? static_cast<cache::BlobBackend&>(*s3->store) : static_cast<cache::BlobBackend&>(*store);
  }
};

// Opens the S3 store of `cfg` for `stores` on a private event loop and HEADs the bucket; the error
// names the bucket or the config key.
inline std::expected<void, std::string> attach_s3(const config::Config& cfg, Stores& stores) {
  if (cfg.storage_driver != config::StorageDriver::S3) return {};
  auto env = cache::open_s3_store(cfg, nullptr, *stores.store);
  if (!env) return std::unexpected(env.error());
  if (auto why = (*env)->probe_bucket(); !why.empty()) return std::unexpected("storage.s3: " + why);
  stores.s3 = std::move(*env);
  return {};
}

// Opens the blob store under storage.filesystem.rootdirectory, the configured index (database.dsn:
// PostgreSQL, else LMDB under the root) and the bucket with storage.s3; the error names the key.
inline std::expected<Stores, std::string> open_stores(const config::Config& cfg) {
  std::filesystem::path root = cfg.root_directory;
  auto store = cache::FsBlobStore::open(root);
  if (!store) return std::unexpected("storage.filesystem.rootdirectory: " + store.error());
  auto index = cache::open_index(cfg);  // database.dsn: PostgreSQL; else LMDB under the root
  if (!index) return std::unexpected(index.error());
  Stores stores{std::make_unique<cache::FsBlobStore>(std::move(*store)), std::move(*index), nullptr};
  if (auto s3 = attach_s3(cfg, stores); !s3) return std::unexpected(s3.error());
  return stores;
}

}  // namespace wharf::commands
