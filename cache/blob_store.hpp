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

  // ---- publication ----
  // A file enters blobs/ only through cache/publish.hpp, which places it and writes its index records
  // under one index write transaction; deleters unlink only under that lock and only what has no record.
  // The steps below are the file side of that; the whole-file ones block: call them from a worker.

  // Makes the data of each temp file durable (writeback started for all, then fdatasync each).
  // Returns one message per item, in order ("" on success).
  std::vector<std::string> sync_files(const std::vector<std::filesystem::path>& tmps) const;
  // Moves an already synced temp file to the place of `d`, creating (and syncing) its fan-out directory.
  // If a regular file of `size` (any size when nullopt) is already there, the temp file is removed
  // instead; a file of another size is replaced. Returns the directory that got a new entry (to pass
  // to sync_dir before the entry is relied on), nullopt if none did; the message names the path.
  std::expected<std::optional<std::filesystem::path>, std::string> place(const std::filesystem::path& tmp,
                                                                       const oci::Digest& d,
                                                                       std::optional<uint64_t> size) const;
  // Moves an already synced temp file over whatever is stored as `d` (a damaged copy); returns the
  // directory to sync_dir. The message names the path.
  std::expected<std::filesystem::path, std::string> replace(const std::filesystem::path& tmp, const oci::Digest& d) const;
  // True if the stored file of `d` exists and its content hashes to `d` (reads it all: small files only).
  bool intact(const oci::Digest& d) const;
  // fsyncs a directory, making its new entries durable; the message names it.
  std::expected<void, std::string> sync_dir(const std::filesystem::path& dir) const;
  // Writes `bytes` to a new temp file under <root>/tmp and fsyncs it; returns its path.
  std::expected<std::filesystem::path, std::string> stage(std::string_view bytes) const;

  // sync_files, place and sync_dir in a row, without the index lock: for tests and tools whose index
  // nobody else uses. Returns one message per item, in order ("" on success).
  struct Publication {
    std::filesystem::path tmp;
    oci::Digest digest;
  };
  std::vector<std::string> publish_all(const std::vector<Publication>& items) const;
  // publish_all of one file.
  std::expected<void, std::string> publish(const std::filesystem::path& tmp, const oci::Digest& d) const;
  // stage and publish of `bytes` (already verified to hash to `d`); nothing is done if the blob exists.
  std::expected<void, std::string> write(const oci::Digest& d, std::string_view bytes) const;
  // Removes a stored blob; false if it was absent. Only under the index write lock (see cache/gc.hpp).
  bool remove(const oci::Digest& d) const;

  // Removes leftovers in <root>/tmp from a previous crash (called once at start).
  void clean_tmp() const;

 private:
  explicit BlobStore(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;
};

}  // namespace wharf::cache
