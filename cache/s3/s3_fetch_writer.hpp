#pragma once
// Temp staged writes of the S3 store (fetches from upstreams, monolithic pushes, imports): the bytes go
// to a local file, which the mirror streams to its waiters (read_fd), and every full chunksize part of
// it goes up to a multipart upload under _uploads/tmp-<random>/data while the write goes on, so that
// publication only uploads the last part, completes, and copies server-side to the blob's key.
// The parts are started from whichever thread appends: on the event loop's thread (the mirror's
// download callbacks) as asynchronous calls of the client, elsewhere as blocking calls of the bridge.
// The multipart upload is only created once a first part is full (smaller blobs go up in one PUT).
// A process that dies leaves its tmp- multipart uploads to abort_stale_uploads at the next start.
#include <condition_variable>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cache/blob_backend.hpp"
#include "cache/s3/s3_bridge.hpp"

namespace wharf::cache {

// The multipart upload that follows one local staged file. Thread-safe.
class TempParts : public std::enable_shared_from_this<TempParts> {
 public:
  // Follows the file open as `fd` (duplicated and owned here) in `chunk`-byte parts.
  TempParts(const S3Bridge& bridge, int fd, uint64_t chunk);
  // Closes the descriptor (call abort() first if an upload may exist).
  ~TempParts();
  TempParts(const TempParts&) = delete;
  TempParts& operator=(const TempParts&) = delete;

  // The staging key of the upload (relative to the root directory).
  const std::string& key() const { return key_; }
  // The file has grown to `size` bytes: starts the upload of each part that became full. Failures are
  // remembered for finish().
  void grew(uint64_t size);
  // On a worker: waits for the parts in flight, uploads bytes [parts, size) as the last part and
  // completes the upload at key() (which the caller then owns). nullopt if no part was started (a small
  // file) or finish/abandon ran before: upload the file whole; a message if a step failed (the upload is
  // then aborted; the file can still be uploaded whole).
  std::expected<std::optional<std::string>, std::string> finish(uint64_t size);
  // The file is not wanted (discarded, or its blob is there already): aborts the upload once the parts in
  // flight are done, without waiting (any thread, the loop's too).
  void abandon();
  // The staging key prefix of every TempParts upload (relative to the root directory).
  static std::string prefix();

 private:
  struct Started;
  // Starts `start` (loop thread: asynchronously; elsewhere: through the bridge, waiting), `then` with its result.
  template <typename T>
  void run(std::function<uint64_t(s3::Client&, s3::Done<T>)> start, std::function<void(std::expected<T, s3::S3Error>)> then);
  void create();                         // starts CreateMultipartUpload
  void upload(int number, uint64_t at);  // starts part `number` of bytes [at, at + chunk)
  void settle();                         // abandoned and idle: starts the abort of the upload

  const S3Bridge& bridge_;
  int fd_;
  uint64_t chunk_;
  std::string key_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string upload_id_;         // once created
  bool creating_ = false;         // CreateMultipartUpload in flight
  int in_flight_ = 0;             // calls not completed
  uint64_t requested_ = 0;        // bytes covered by parts started (or waiting for the upload id)
  std::vector<std::pair<int, uint64_t>> waiting_;  // parts to start once the upload id is known
  std::map<int, std::string> etags_;
  std::string failure_;
  bool abandoned_ = false;        // abandon() or finish() ran: no more parts; abort when idle
};

// Appends to a local staged file and feeds its TempParts.
class S3TempWriter final : public BlobWriter {
 public:
  // `local` writes the file; `parts` follows it.
  S3TempWriter(std::unique_ptr<BlobWriter> local, std::shared_ptr<TempParts> parts)
      : local_(std::move(local)), parts_(std::move(parts)) {}
  std::expected<void, std::string> append(const char* p, size_t n, oci::Hasher* hasher) override;
  uint64_t size() const override { return local_->size(); }
  const StagedKey& key() const override { return local_->key(); }
  int read_fd() const override { return local_->read_fd(); }

 private:
  std::unique_ptr<BlobWriter> local_;
  std::shared_ptr<TempParts> parts_;
};

}  // namespace wharf::cache
