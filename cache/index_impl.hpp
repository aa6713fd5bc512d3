#pragma once
// Internal to cache/index: LmdbIndex::Impl, the environment, its table handles and the shared helpers.
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cache/index_lmdb.hpp"
#include "cache/lmdb.hpp"

namespace wharf::cache {

struct LmdbIndex::Impl {
  lmdb::Env env;
  size_t max_key = 0;
  MDB_dbi repos = 0, tags = 0, manifests = 0, repo_manifests = 0, blobs = 0, links = 0, referrers = 0,
          uploads = 0, access = 0, meta = 0;

  // The writes of put_manifest, inside a caller's write transaction.
  void store_manifest(MDB_txn* t, std::string_view repo, std::string_view digest, const ManifestRecord& rec,
                      std::optional<std::string_view> tag);

  // Creates (if new) and links the blob record, as Update::add_blob.
  void add_blob(MDB_txn* t, std::string_view repo, std::string_view digest, uint64_t size, Origin origin, int64_t now,
                Backend backend = Backend::Filesystem);
  // The first of `required` neither linked in nor a manifest of `repo`.
  std::optional<std::string> first_missing(MDB_txn* t, std::string_view repo,
                                           const std::vector<std::string>& required) const;

  // Runs `f(txn)` in one write transaction and commits it; LMDB failures become the error message.
  template <class F>
  auto write(std::string_view op, F&& f) -> std::expected<std::invoke_result_t<F, MDB_txn*>, std::string> {
    try {
      auto txn = lmdb::Txn::begin(env.get(), 0);
      if constexpr (std::is_void_v<std::invoke_result_t<F, MDB_txn*>>) {
        f(txn.get());
        txn.commit();
        return {};
      } else {
        auto result = f(txn.get());
        txn.commit();
        return result;
      }
    } catch (const lmdb::Error& e) {
      return std::unexpected(describe(op, e));
    }
  }

  // "index <op>: <what>", spelling out MDB_MAP_FULL with the map size.
  std::string describe(std::string_view op, const lmdb::Error& e) const;

  // Records `repo` as created at `now` unless it exists.
  void ensure_repo(MDB_txn* t, std::string_view repo, int64_t now) const;

  // Removes `digest` from `repo`: its membership, every tag of `repo` pointing at it, its referrer entry.
  bool remove_from_repo(MDB_txn* t, std::string_view repo, std::string_view digest) const;

  // Calls f(key, value) for every entry of `dbi`, in key order.
  template <class F>
  void each(MDB_txn* t, MDB_dbi dbi, F&& f) const {
    lmdb::Cursor cur(t, dbi);
    MDB_val k{}, v{};
    for (bool ok = cur.get(k, v, MDB_FIRST); ok; ok = cur.get(k, v, MDB_NEXT)) f(lmdb::view(k), lmdb::view(v));
  }

  // Keys of `dbi` starting with `prefix` (returned without it), sorted, strictly after prefix+last,
  // at most n (0: all). Seeks with MDB_SET_RANGE, so the cost does not depend on the table size.
  std::vector<std::string> page(MDB_txn* t, MDB_dbi dbi, std::string_view prefix, std::string_view last, size_t n,
                                bool* more) const;
};

namespace index_detail {
// The MDB_txn* behind a ReadTxn.
inline MDB_txn* raw(const Index::ReadTxn& t) { return static_cast<MDB_txn*>(t.raw()); }
}  // namespace index_detail

}  // namespace wharf::cache
