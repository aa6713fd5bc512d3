#pragma once
// The S3 blob backend: blob bytes live in a bucket under registry:2's layout,
// <rootdirectory>/docker/registry/v2/blobs/<algo>/<2 hex>/<hex>/data, so a bucket written by
// registry:2 and one written by wharf look alike.
//
// Design.
// - Staging is local: pushes and fetches stream into the filesystem store's uploads/ and tmp/ under
//   storage.filesystem.rootdirectory (hashed as they stream, resumable across restarts). prepare()
//   uploads each verified staged file to its final key (one PUT with If-None-Match: * up to
//   storage.s3.chunksize, else a multipart upload of chunksize parts, aborted on any failure), so the
//   slow part runs before the index lock. A key already present with the same size is kept.
// - place() runs inside the index write transaction: it HEADs each final key (a concurrent GC may have
//   removed an unrecorded object; then the item fails and is not recorded) and drops the staged file.
//   An object without an index record is an invisible stray that GC sweeps after its grace.
// - Reads: with redirects allowed, a presigned GET (20 minutes); otherwise an ObjectStream (s3_stream.hpp):
//   one GetObject for the range, paused while the client is not taking bytes.
//   stat() on the loop thread answers from the index (authoritative for S3: objects are written before
//   their record and deleted only after it is gone); elsewhere it HEADs the object.
// - Blocking calls go through S3Bridge (worker waits for the loop); never on the loop thread.
#include <chrono>
#include <memory>

#include "cache/blob_backend.hpp"
#include "cache/fs/fs_store.hpp"
#include "cache/s3/s3_bridge.hpp"

namespace wharf::cache {

class S3BlobStore final : public BlobBackend {
 public:
  struct Options {
    uint64_t chunk_size = 10ull << 20;  // storage.s3.chunksize: single PUT up to this, else parts of it
    std::chrono::seconds presign_expiry{1200};
  };
  // `local` stages writes; `bridge` (and its client) and `index` outlive the store.
  S3BlobStore(FsBlobStore local, const S3Bridge& bridge, const Index& index, Options opts);

  // The object key (relative to storage.s3.rootdirectory) of blob `d`.
  static std::string blob_key(const oci::Digest& d);
  // The digest a listed key names (blob_key's inverse); nullopt for any other key.
  static std::optional<oci::Digest> digest_of_key(std::string_view key);
  // S3's LastModified ("2026-12-01T11:00:00.000Z") as unix seconds; 0 if it does not parse.
  static int64_t parse_time(std::string_view s);
  // The local staging store (its root holds the index, uploads/ and tmp/).
  const FsBlobStore& local() const { return local_; }

  Backend kind() const override { return Backend::S3; }
  bool reads_block() const override { return true; }
  std::expected<std::unique_ptr<BlobWriter>, StoreError> begin_write(StageArea a, std::string_view name) const override {
    return local_.begin_write(a, name);
  }
  std::expected<std::unique_ptr<BlobWriter>, StoreError> resume_write(std::string_view name) const override {
    return local_.resume_write(name);
  }
  std::optional<uint64_t> upload_size(std::string_view name) const override { return local_.upload_size(name); }
  std::expected<std::pair<oci::Digest, uint64_t>, StoreError> hash_staged(const StagedKey& k, oci::DigestAlgo a) const override {
    return local_.hash_staged(k, a);
  }
  void discard(const StagedKey& k) const override { local_.discard(k); }
  StagedKey upload_key(std::string_view name) const override { return local_.upload_key(name); }
  std::vector<StagedItem> list_uploads() const override { return local_.list_uploads(); }
  std::expected<StagedKey, std::string> stage(std::string_view bytes) const override { return local_.stage(bytes); }
  void clean_temp() const override { local_.clean_temp(); }
  std::vector<std::string> prepare(const std::vector<Placement>&) const override;
  // Aborts the multipart uploads under the blob prefix started before `older_than` (unix seconds): left
  // by a process that died while uploading. Blocking; returns how many were aborted.
  size_t abort_stale_uploads(int64_t older_than) const;
  std::vector<std::string> place(const std::vector<Placement>&) const override;
  std::optional<uint64_t> stat(const oci::Digest&) const override;
  std::expected<std::optional<ReadPlan>, std::string> read(const oci::Digest&, uint64_t first, uint64_t length,
                                                           RedirectPolicy) const override;
  std::optional<std::string> read_small(const oci::Digest&, uint64_t max) const override;
  int open_local(const oci::Digest&) const override { return -1; }
  bool intact(const oci::Digest&) const override;
  bool remove(const oci::Digest&) const override;
  void list(const std::function<void(const StoredBlob&)>& each) const override;

 private:
  // Uploads the staged file of `p` to its final key unless an object of that size is there.
  std::expected<void, std::string> upload(const Placement& p) const;
  std::expected<void, std::string> upload_parts(int fd, uint64_t size, const std::string& key) const;
  // HEAD of a key: its size, nullopt if absent, a message if S3 fails.
  std::expected<std::optional<uint64_t>, std::string> head(const std::string& key) const;

  FsBlobStore local_;
  const S3Bridge& bridge_;
  const Index& index_;
  Options opts_;
};

}  // namespace wharf::cache
