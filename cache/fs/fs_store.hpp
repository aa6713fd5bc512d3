#pragma once
// The filesystem blob backend (the embedded default): <root>/blobs/<algo>/<2 hex>/<hex>, one copy per
// digest. Staged writes are files under <root>/uploads (resumable sessions) and <root>/tmp (the rest),
// on the same filesystem, so publication is fsync + rename + fsync(dir). Reads are sendfile from an fd.
#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/blob_backend.hpp"
#include "src/oci/digest.hpp"

namespace wharf::cache {

class FsBlobStore final : public BlobBackend {
 public:
  // Creates <root>/blobs, <root>/uploads, <root>/tmp if missing; fails with a message naming the path.
  static std::expected<FsBlobStore, std::string> open(const std::filesystem::path& root);

  // The root directory (health checks of its filesystem, backup's hard links).
  const std::filesystem::path& root() const { return root_; }
  // Where stored blob `d` lives (backup, restore).
  std::filesystem::path blob_path(const oci::Digest& d) const;
  // The directory of Temp staged items (offline verbs stage whole directories there).
  std::filesystem::path tmp_dir() const { return root_ / "tmp"; }

  Backend kind() const override { return Backend::Filesystem; }
  std::expected<std::unique_ptr<BlobWriter>, StoreError> begin_write(StageArea, std::string_view name) const override;
  std::expected<std::unique_ptr<BlobWriter>, StoreError> resume_write(std::string_view name) const override;
  std::expected<uint64_t, StoreError> upload_size(std::string_view name) const override;
  std::expected<std::pair<oci::Digest, uint64_t>, StoreError> hash_staged(const StagedKey&, oci::DigestAlgo) const override;
  void discard(const StagedKey&) const override;
  StagedKey upload_key(std::string_view name) const override { return root_ / "uploads" / name; }
  std::vector<StagedItem> list_uploads() const override;
  std::expected<StagedKey, std::string> stage(std::string_view bytes) const override;
  void clean_temp() const override;
  std::vector<std::string> prepare(const std::vector<Placement>&) const override;
  std::vector<std::string> place(const std::vector<Placement>&) const override;
  std::optional<uint64_t> stat(const oci::Digest&) const override;
  std::expected<std::optional<ReadPlan>, std::string> read(const oci::Digest&, const Recorded&, uint64_t first, uint64_t length,
                                                           RedirectPolicy) const override;
  std::optional<std::string> read_small(const oci::Digest&, uint64_t max) const override;
  int open_local(const oci::Digest& d) const override;
  bool intact(const oci::Digest&) const override;
  bool remove(const oci::Digest&) const override;
  std::expected<void, std::string> list(const std::function<void(const StoredBlob&)>& each) const override;

  // Stores verified `bytes` as `d` (prepare and place without the index lock: tests and tools whose
  // index nobody else uses); nothing is done if the blob exists.
  std::expected<void, std::string> write(const oci::Digest& d, std::string_view bytes) const;

 private:
  explicit FsBlobStore(std::filesystem::path root) : root_(std::move(root)) {}
  // Moves a prepared file to the place of `d` (see Placement); returns the directory that got a new
  // entry, nullopt if none did.
  std::expected<std::optional<std::filesystem::path>, std::string> place_one(const Placement&) const;
  std::filesystem::path root_;
};

}  // namespace wharf::cache
