#pragma once
// Push sessions of the S3 store, kept in the bucket so that any process (a restart, another front) can
// continue them. Layout, relative to storage.s3.rootdirectory:
//   docker/registry/v2/_uploads/<id>/data       a multipart upload while the push goes on; the whole
//                                                staged blob once completed (hash_staged, prepare)
//   docker/registry/v2/_uploads/<id>/tail-<n>   the bytes after the first n parts (fewer than a part)
// Every part is exactly `chunksize` bytes (storage.s3.chunksize, at least 5 MiB); the bytes of a request
// that end short of a part go to tail-<n> when the writer closes, and the next writer starts from them.
// A tail whose <n> is not the number of parts is stale (its bytes went into a part) and is ignored, so a
// crash between a part and its tail never counts a byte twice. The session's state (upload id, parts,
// tail) is discovered from S3 with ListMultipartUploads, ListParts and a GET of the tail.
#include <cstdint>
#include <deque>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/blob_backend.hpp"
#include "cache/s3/s3_bridge.hpp"

namespace wharf::cache {

// The object keys of upload session `id` (relative to the root directory).
struct UploadKeys {
  static constexpr std::string_view kPrefix = "docker/registry/v2/_uploads/";
  // "<prefix><id>/": every object and multipart upload of the session is under it.
  static std::string dir(std::string_view id);
  // The multipart upload, and the completed staged blob.
  static std::string data(std::string_view id);
  // The bytes after the first `parts` parts.
  static std::string tail(std::string_view id, size_t parts);
  // The claim on moving the session on from `size` staged bytes (S3Uploads::claim).
  static std::string claim(std::string_view id, uint64_t size);
  // The session id a listed key belongs to; nullopt for keys outside the uploads prefix.
  static std::optional<std::string> id_of(std::string_view key);
};

// The StagedKey of S3 upload session `id` ("s3-upload:<id>"), and its inverse (nullopt for other keys:
// local staged files).
StagedKey s3_upload_key(std::string_view id);
std::optional<std::string> s3_upload_id(const StagedKey& key);

// Ranges of the parts of a server-side multipart copy of `size` bytes: `part_size` each (the last one
// shorter), grown so that there are at most 10,000 parts. Empty for size 0.
std::vector<s3::ByteRange> plan_copy_parts(uint64_t size, uint64_t part_size);

// What the bucket holds of an upload session.
struct UploadState {
  std::string upload_id;               // the multipart upload; empty once completed
  std::vector<s3::PartEntry> parts;    // finished parts, in order (each chunksize bytes)
  std::string tail;                    // the bytes after the parts
  std::string tail_etag;               // the tail object's ETag ("" if there is none)
  std::optional<uint64_t> completed;   // the size of the completed data object
  // Bytes staged in all.
  uint64_t size() const;
  // Bytes in the finished parts.
  uint64_t parts_size() const;
};

// The S3 side of upload sessions; every call blocks on the bridge (a worker, never the loop thread).
class S3Uploads {
 public:
  // `bridge` outlives this; `chunk_size` is the part size (at least 5 MiB).
  S3Uploads(const S3Bridge& bridge, uint64_t chunk_size) : bridge_(bridge), chunk_(chunk_size) {}
  // The part size.
  uint64_t chunk_size() const { return chunk_; }
  // Starts session `id` (a multipart upload); fails if one exists or S3 fails.
  std::expected<UploadState, StoreError> create(std::string_view id) const;
  // The state of session `id`; Missing if there is none, Failed if S3 cannot say. A state this process
  // saved last is reused after a check that S3 still holds exactly that (ListParts and a HEAD of the
  // tail: another process may have continued the session), which spares reading the tail back.
  std::expected<UploadState, StoreError> load(std::string_view id) const;
  // Notes `st` as what S3 holds of session `id` now (after its tail was saved).
  void remember(std::string_view id, const UploadState& st) const;
  // Drops the remembered state of `id` (S3 may hold something else now).
  void forget(std::string_view id) const;
  // Uploads `bytes` as part parts.size()+1 and records it in `st`; a message if S3 fails.
  std::expected<void, std::string> add_part(std::string_view id, UploadState& st, std::string bytes) const;
  // Starts uploading `bytes` as part `number` of `st` without waiting; `done` gets its ETag or failure
  // (on the loop thread, or before this returns).
  void start_part(std::string_view id, const UploadState& st, int number, std::string bytes,
                  s3::Done<std::string> done) const;
  // Like start_part, after creating the claim on `from` (claim() without its takeover of stale claims):
  // a refused claim fails `done` with status 412 and sends nothing.
  void start_claimed_part(std::string_view id, const UploadState& st, uint64_t from, const std::string& token,
                          int number, std::string bytes, s3::Done<std::string> done) const;
  // Stores `bytes` as the tail after the parts of `st`, and drops the tail after `old_parts` parts if
  // that is another one.
  std::expected<void, std::string> save_tail(std::string_view id, UploadState& st, size_t old_parts) const;
  // Completes the session into its data object (parts, then the tail as the last part; a single PUT
  // when there are no parts) unless done already; `st` then says `completed`.
  std::expected<void, std::string> complete(std::string_view id, UploadState& st) const;
  // The result of claim(): this writer may move the session on, another one did first, or S3 failed.
  enum class Claim { Ok, Taken, Failed };
  // Claims the move of session `id` away from the state of `size` staged bytes (claim-<size>, created with
  // If-None-Match: *), before a writer makes a part or a tail durable from that state: of two writers
  // (two fronts) continuing the same state, exactly one gets Ok. A claim left by a writer that died
  // between its claim and its write is taken over once it is older than kClaimStale and the session
  // still holds `size` bytes.
  // `token` (unique per writer) is stored in the claim, so a claim whose PUT was retried after a lost
  // answer is recognized as the caller's own.
  Claim claim(std::string_view id, uint64_t size, const std::string& token) const;
  // Removes the claim on `size` (a writer that made nothing durable after claiming it).
  void unclaim(std::string_view id, uint64_t size) const;
  // Deletes every claim of session `id` (once it is completed: no writer can move it on any more).
  void drop_claims(std::string_view id) const;
  // Aborts every multipart upload and deletes every object of session `id` (absent is fine).
  void remove(std::string_view id) const;
  // Every session in the bucket, with the last time it was written.
  std::vector<StagedItem> list() const;

 private:
  // The bytes of `key` (at most `max`) and its ETag; nullopt if absent, a message if S3 fails.
  std::expected<std::optional<std::pair<std::string, std::string>>, std::string> get(const std::string& key,
                                                                                     uint64_t max) const;
  // The remembered state of `id` if S3 still holds exactly it; nullopt otherwise (then load from S3).
  std::optional<UploadState> recall(std::string_view id) const;
  // The finished parts of upload `upload_id` of `key` (a short last part dropped); 404 as Missing.
  std::expected<std::vector<s3::PartEntry>, StoreError> list_parts(const std::string& key, const std::string& upload_id) const;

  const S3Bridge& bridge_;
  uint64_t chunk_;
  mutable std::mutex mu_;
  mutable std::map<std::string, UploadState, std::less<>> remembered_;  // at most kRemember, their tails bounded
  mutable uint64_t remembered_bytes_ = 0;
};

// Appends to an S3 upload session: bytes gather in memory and go up as a part each time a part is full,
// while the next ones fill (up to kInFlight parts at once; append waits for the oldest beyond that);
// close() waits for them and saves the rest as the session's tail.
class S3UploadWriter final : public BlobWriter {
 public:
  // Continues session `id` from `st` (its tail is the start of the next part).
  S3UploadWriter(const S3Uploads& uploads, std::string id, UploadState st);
  // Closes (best effort, logged) if close() was not called.
  ~S3UploadWriter() override;
  S3UploadWriter(const S3UploadWriter&) = delete;
  S3UploadWriter& operator=(const S3UploadWriter&) = delete;

  std::expected<void, std::string> append(const char* p, size_t n, oci::Hasher* hasher) override;
  std::expected<void, std::string> close() override;
  uint64_t size() const override;
  const StagedKey& key() const override { return key_; }
  int read_fd() const override { return -1; }
  bool conflicted() const override { return conflicted_; }

 private:
  struct InFlight;
  // Claims the move from `from` staged bytes (once per value); on Taken, conflict(from).
  std::expected<void, std::string> claim(uint64_t from);
  // Another writer continued from `from` first: waits for the parts in flight, reloads what S3 holds into
  // st_ (so size() tells the truth), marks the writer conflicted and fails with a message.
  std::expected<void, std::string> conflict(uint64_t from);
  // After settle() failed: if a part's claim was refused, whether it is this writer's own (a retried PUT)
  // or a stale one now taken over (then success: the parts' bytes are back in the tail and go up again)
  // or another writer's (conflict()).
  std::expected<void, std::string> after_failure(std::expected<void, std::string> failed);
  static constexpr size_t kInFlight = 3;
  // Starts the first chunksize bytes of the tail as the next part.
  void start_part();
  // Waits for the parts in flight until at most `keep` remain, recording them in order; on a failure,
  // waits for all and puts the bytes of every unrecorded part back in front of the tail.
  std::expected<void, std::string> settle(size_t keep);

  const S3Uploads& uploads_;
  std::string id_;
  StagedKey key_;
  UploadState st_;
  std::deque<std::shared_ptr<InFlight>> inflight_;  // parts being uploaded, oldest first
  size_t saved_parts_;  // the parts the saved tail follows
  size_t saved_tail_;   // the saved tail's length
  bool dirty_ = false;  // bytes appended since the tail was saved
  uint64_t start_;      // staged bytes when this writer began: its first durable write moves on from here
  std::vector<uint64_t> claims_;     // the states this writer claimed the move from, ascending
  std::optional<uint64_t> refused_;  // a part's claim on this state was refused (set by settle())
  std::string token_;                // written into this writer's claims
  bool conflicted_ = false;          // another writer continued the session first: nothing more is written
};

}  // namespace wharf::cache
