#pragma once
// The content-addressed blob store on disk: <root>/blobs/sha256/<2 hex>/<hex>, one copy per digest.
// Writes go to a temp file under <root>/tmp or <root>/uploads (same filesystem), then fsync + rename + fsync(dir).
#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/oci/digest.hpp"

namespace wharf::cache {

class BlobStore {
 public:
  // Creates <root>/blobs, <root>/uploads, <root>/tmp if missing; fails with a message naming the path.
  static std::expected<BlobStore, std::string> open(const std::filesystem::path& root);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path blob_path(const oci::Digest& d) const;
  // Path of the data file of upload session `uuid` (uuid is validated by the caller).
  std::filesystem::path upload_path(std::string_view uuid) const;
  std::filesystem::path tmp_dir() const { return root_ / "tmp"; }

  // Size of a stored blob, nullopt if absent.
  std::optional<uint64_t> stat(const oci::Digest& d) const;
  // Opens a stored blob read-only (O_CLOEXEC); -1 if absent.
  int open_read(const oci::Digest& d) const;

  // Moves a finished, already verified temp file into place: fsync(file), rename, fsync(parent dir).
  // If the blob already exists the temp file is removed and success is returned. Blocking: call from a worker.
  std::expected<void, std::string> publish(const std::filesystem::path& tmp, const oci::Digest& d) const;
  // publish() for several files at once: their writeback runs together and each fan-out directory is
  // fsynced once. Returns one message per item, in order ("" on success).
  struct Publication {
    std::filesystem::path tmp;
    oci::Digest digest;
  };
  std::vector<std::string> publish_all(const std::vector<Publication>& items) const;
  // Writes `bytes` (already verified to hash to `d`) durably: temp file, fsync, rename. Blocking: worker only.
  std::expected<void, std::string> write(const oci::Digest& d, std::string_view bytes) const;
  // Removes a stored blob; false if it was absent.
  bool remove(const oci::Digest& d) const;

  // Removes leftovers in <root>/tmp from a previous crash (called once at start).
  void clean_tmp() const;

 private:
  explicit BlobStore(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;
};

}  // namespace wharf::cache
