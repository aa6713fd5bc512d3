#pragma once
// The S3 blob backend: blob bytes live in a bucket under registry:2's layout,
// <rootdirectory>/docker/registry/v2/blobs/<algo>/<2 hex>/<hex>/data, so a bucket written by
// registry:2 and one written by wharf look alike.
//
// Design.
// - Push sessions (StageArea::Upload) live in the bucket (s3_writer.hpp): a multipart upload under
//   _uploads/<id>/data fed a chunksize part at a time while the push streams, the bytes short of a part
//   in a tail object, so any process can continue, size or hash a session. prepare() completes it and
//   copies it server-side to its final key (CopyObject with If-None-Match: *; UploadPartCopy parts above
//   multipartcopythresholdsize); place() deletes the staged object once the final one is checked.
//   discard() aborts and deletes. The slow part (completion, copy) runs before the index lock.
// - Other staging is local (Temp: fetches from upstreams, monolithic pushes, imports) under
//   storage.filesystem.rootdirectory's tmp/ (the mirror streams a fetch to its waiters from that file),
//   and each full chunksize part of it goes up to a multipart upload under _uploads/tmp-<random>/ while
//   it is written (s3_fetch_writer.hpp). prepare() then uploads the last part, completes and copies; a
//   file under chunksize (or whose parts failed) goes up whole as before (one PUT with If-None-Match: *,
//   else parts read back from the file). A key already present with the same size is kept.
// - place() runs inside the index write transaction: it HEADs each final key (a concurrent GC may have
//   removed an unrecorded object; then the item fails and is not recorded) and drops the staged file.
//   An object without an index record is an invisible stray that GC sweeps after its grace.
// - Reads: with redirects allowed, a presigned GET (20 minutes); otherwise an ObjectStream (s3_stream.hpp):
//   one GetObject for the range, paused while the client is not taking bytes.
//   The index is authoritative for S3 (objects are written before their record and deleted only after
//   it is gone): stat_recorded() answers from the record a handler just read, with no round trip, so
//   nothing on the loop thread asks the bucket or a networked index; stat() HEADs the object (workers).
// - Blocking calls go through S3Bridge (worker waits for the loop); never on the loop thread.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "cache/blob_backend.hpp"
#include "cache/fs/fs_store.hpp"
#include "cache/s3/s3_bridge.hpp"
#include "cache/s3/s3_fetch_writer.hpp"
#include "cache/s3/s3_writer.hpp"

namespace wharf::cache {

class S3BlobStore final : public BlobBackend {
 public:
  struct Options {
    uint64_t chunk_size = 10ull << 20;  // storage.s3.chunksize: single PUT up to this, else parts of it
    uint64_t copy_chunk_size = 32ull << 20;  // storage.s3.multipartcopychunksize
    uint64_t copy_threshold = 32ull << 20;   // storage.s3.multipartcopythresholdsize: larger copies go by parts
    std::chrono::seconds presign_expiry{1200};
  };
  // `local` stages writes; `bridge` (and its client) outlives the store.
  S3BlobStore(FsBlobStore local, const S3Bridge& bridge, Options opts);

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
  // Upload: a session in the bucket (s3_writer.hpp); Temp: a local file.
  std::expected<std::unique_ptr<BlobWriter>, StoreError> begin_write(StageArea a, std::string_view name) const override;
  std::expected<std::unique_ptr<BlobWriter>, StoreError> resume_write(std::string_view name) const override;
  std::expected<uint64_t, StoreError> upload_size(std::string_view name) const override;
  std::expected<std::pair<oci::Digest, uint64_t>, StoreError> hash_staged(const StagedKey& k, oci::DigestAlgo a) const override;
  void discard(const StagedKey& k) const override;
  StagedKey upload_key(std::string_view name) const override { return s3_upload_key(name); }
  std::vector<StagedItem> list_uploads() const override { return uploads_.list(); }
  std::expected<StagedKey, std::string> stage(std::string_view bytes) const override { return local_.stage(bytes); }
  void clean_temp() const override { local_.clean_temp(); }
  std::vector<std::string> prepare(const std::vector<Placement>&) const override;
  // Aborts the multipart uploads under the blob prefix and of Temp staging (_uploads/tmp-) started before
  // `older_than` (unix seconds): left by a process that died while uploading. Push sessions are the
  // purge's (they may be continued). Blocking; returns how many were aborted.
  size_t abort_stale_uploads(int64_t older_than) const;
  // abort_stale_uploads under one key prefix.
  size_t abort_stale_under(const std::string& prefix, int64_t older_than) const;
  std::vector<std::string> place(const std::vector<Placement>&) const override;
  std::optional<uint64_t> stat(const oci::Digest&) const override;
  std::optional<uint64_t> stat_recorded(const oci::Digest& d, const Recorded& recorded) const override;
  std::expected<std::optional<uint64_t>, std::string> stat_checked(const oci::Digest& d) const override;
  std::expected<std::optional<ReadPlan>, std::string> read(const oci::Digest&, const Recorded&, uint64_t first, uint64_t length,
                                                           RedirectPolicy) const override;
  std::optional<std::string> read_small(const oci::Digest&, uint64_t max) const override;
  int open_local(const oci::Digest&) const override { return -1; }
  bool intact(const oci::Digest&) const override;
  // A GetObject of the blob's key, streamed to `sink` (s3_read_all.cpp).
  std::expected<void, std::string> read_all(const oci::Digest& d,
                                            const std::function<bool(const char*, size_t)>& sink) const override;
  bool remove(const oci::Digest&) const override;
  std::expected<void, std::string> list(const std::function<void(const StoredBlob&)>& each) const override;

 private:
  // Uploads the staged file of `p` to its final key unless an object of that size is there.
  std::expected<void, std::string> upload(const Placement& p) const;
  // Completes the upload session `id` of `p` and copies it to its final key unless an object of that
  // size is there.
  std::expected<void, std::string> publish_session(const Placement& p, const std::string& id) const;
  // Server-side copy of `src` (`size` bytes) to `dst`: CopyObject (with If-None-Match: * if asked) up to
  // multipartcopythresholdsize (at most 5 GiB), else UploadPartCopy parts of multipartcopychunksize.
  std::expected<void, std::string> copy(const std::string& src, const std::string& dst, uint64_t size,
                                        bool if_none_match) const;
  // What is at the final key of `p`: nothing, a copy to keep (same size; intact if asked), or one to replace.
  enum class Existing { None, Keep, Damaged };
  std::expected<Existing, std::string> existing(const Placement& p, uint64_t size) const;
  // The parts already uploaded of local staged file `key` (nullptr if none); `forget` drops the entry.
  std::shared_ptr<TempParts> temp_parts(const StagedKey& key, bool forget) const;
  // Publishes the local file `fd` through its streamed parts: completes them, copies to `key`, drops the
  // staging object. nullopt if `parts` has no upload (upload the file whole).
  std::optional<std::expected<void, std::string>> publish_parts(TempParts& parts, uint64_t size,
                                                                const std::string& key, Existing there) const;
  std::expected<void, std::string> upload_parts(int fd, uint64_t size, const std::string& key) const;
  // HEAD of a key: its size, nullopt if absent, a message if S3 fails.
  std::expected<std::optional<uint64_t>, std::string> head(const std::string& key) const;

  FsBlobStore local_;
  const S3Bridge& bridge_;
  Options opts_;
  S3Uploads uploads_;
  mutable std::mutex temp_mu_;
  mutable std::map<std::string, std::shared_ptr<TempParts>> temp_;  // local staged path -> its parts
};

}  // namespace wharf::cache
