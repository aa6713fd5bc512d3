#pragma once
// For unit tests: a store (LMDB index + blob files) in a fresh directory under /tmp, removed at the
// end of the scope.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cache/fs/fs_store.hpp"
#include "cache/index.hpp"
#include "cache/index_lmdb.hpp"

namespace wharf::testing {

// Creates (if new) and links a blob record the way a publication does, without a file; true on success.
inline bool add_blob(cache::Index& index, const std::string& repo, const std::string& digest, uint64_t size,
                     cache::Origin origin) {
  return index.update("test", [&](cache::Index::Update& u) { u.add_blob(repo, digest, size, origin); }).has_value();
}

struct ScratchStore {
  std::filesystem::path dir;
  std::unique_ptr<cache::Index> index;
  std::optional<cache::FsBlobStore> blobs;

  explicit ScratchStore(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    auto i = cache::LmdbIndex::open(dir / "index", size_t(1) << 30);
    REQUIRE(i.has_value());
    index = std::move(*i);
    auto b = cache::FsBlobStore::open(dir);
    REQUIRE(b.has_value());
    blobs.emplace(std::move(*b));
  }
  ~ScratchStore() {
    index.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  ScratchStore(const ScratchStore&) = delete;
  ScratchStore& operator=(const ScratchStore&) = delete;
};

}  // namespace wharf::testing
