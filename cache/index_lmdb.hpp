#pragma once
// The embedded index: LMDB under <root>/index (tables and encodings in cache/index_records.hpp).
// Writers are serialized by LMDB's writer lock, which every process opening the environment shares.
#include <cstddef>
#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cache/index.hpp"

namespace wharf::cache {

// What LmdbIndex::open does with records that do not decode.
enum class Damaged { Refuse, Open };

class LmdbIndex final : public Index {
 public:
  // Opens (creating) the LMDB environment in `dir` with the given map size, after checking it: data.mdb
  // must hold every page its meta page names, the schema record must be wharf's (it is written into a
  // fresh or older index), and every record must decode (all are read, up to kCheckLimit). Fails with
  // a message naming the problems; with Damaged::Open, records that do not decode are only listed in
  // damage() (for `wharf check --repair`), while a truncated file or a foreign schema still fail.
  static std::expected<std::unique_ptr<LmdbIndex>, std::string> open(const std::filesystem::path& dir,
                                                                     size_t map_size = size_t(64) << 30,
                                                                     Damaged damaged = Damaged::Refuse);
  // Records read by the open-time check, at most.
  static constexpr size_t kCheckLimit = size_t(8) << 20;
  // The problems the open-time check found (only with Damaged::Open; empty when sound).
  const std::vector<std::string>& damage() const { return damage_; }
  ~LmdbIndex() override;
  // The environment and its tables (opaque outside cache/index*.cpp: cache/index_impl.hpp).
  struct Impl;

  ReadTxn read() const override;
  std::string_view kind() const override { return "lmdb"; }

  bool repo_exists(const ReadTxn&, std::string_view repo) const override;
  std::optional<BlobRecord> blob(const ReadTxn&, std::string_view digest) const override;
  bool blob_linked(const ReadTxn&, std::string_view repo, std::string_view digest) const override;
  std::optional<std::string> tag(const ReadTxn&, std::string_view repo, std::string_view tag) const override;
  std::optional<ManifestRecord> manifest(const ReadTxn&, std::string_view digest) const override;
  bool manifest_in_repo(const ReadTxn&, std::string_view repo, std::string_view digest) const override;
  std::vector<std::string> tags(const ReadTxn&, std::string_view repo, std::string_view last, size_t n,
                                bool* more) const override;
  std::vector<std::string> repos(const ReadTxn&, std::string_view last, size_t n, bool* more) const override;
  std::vector<Referrer> referrers(const ReadTxn&, std::string_view repo, std::string_view subject) const override;
  std::optional<UploadRecord> upload(const ReadTxn&, std::string_view uuid) const override;
  std::optional<int64_t> last_access(const ReadTxn&, std::string_view digest) const override;

  std::expected<void, std::string> link_blobs(const std::vector<NewLink>& links) override;
  std::expected<bool, std::string> unlink_blob(std::string_view repo, std::string_view digest) override;
  std::expected<void, std::string> put_manifest(std::string_view repo, std::string_view digest,
                                                const ManifestRecord& rec,
                                                std::optional<std::string_view> tag) override;
  std::expected<std::optional<std::string>, std::string> put_manifest_checked(
      std::string_view repo, std::string_view digest, const ManifestRecord& rec, std::optional<std::string_view> tag,
      const std::vector<std::string>& required) override;
  std::expected<bool, std::string> delete_tag(std::string_view repo, std::string_view tag) override;
  std::expected<bool, std::string> delete_manifest(std::string_view repo, std::string_view digest) override;
  std::expected<void, std::string> put_upload(std::string_view uuid, const UploadRecord& rec) override;
  std::expected<void, std::string> delete_upload(std::string_view uuid) override;
  std::vector<std::pair<std::string, UploadRecord>> uploads(const ReadTxn&) const override;
  std::expected<void, std::string> touch(const std::vector<std::pair<std::string, int64_t>>& accesses) override;
  std::vector<TagEntry> all_tags(const ReadTxn&) const override;
  std::vector<RepoManifest> all_repo_manifests(const ReadTxn&) const override;
  std::vector<std::pair<std::string, ManifestRecord>> all_manifests(const ReadTxn&) const override;
  std::vector<std::pair<std::string, BlobRecord>> all_blobs(const ReadTxn&) const override;
  std::vector<BlobLink> all_links(const ReadTxn&) const override;
  std::vector<std::pair<std::string, int64_t>> all_access(const ReadTxn&) const override;
  std::expected<void, std::string> update(std::string_view op, const std::function<void(Update&)>& f) override;
  // A compacted copy of the environment (mdb_env_copy2 with MDB_CP_COMPACT, a consistent snapshot).
  std::expected<void, std::string> copy_to(const std::filesystem::path& dir) const override;
  std::expected<void, std::string> put_tags(const std::vector<TagEntry>& entries) override;
  std::expected<bool, std::string> drop_raw(std::string_view table, std::string_view key) override;
  std::vector<std::string> undecodable(std::string_view table) const override;

 protected:
  void end_read(void* handle) const noexcept override;

 private:
  LmdbIndex() = default;
  friend class LmdbUpdate;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> damage_;
};

}  // namespace wharf::cache
