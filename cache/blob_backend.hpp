#pragma once
// The blob-store seam: everything the handlers, the mirror, publication, GC, fsck and the offline verbs
// need from the place blob bytes live. Implementations: cache/fs/ (files under the root directory,
// the embedded default) and cache/s3/ (objects in a bucket, staged locally). Callers never see paths or keys.
//
// Threading: the calls marked "blocking" do I/O and run on the work pool (never on the event loop).
// A backend whose I/O completes on the event loop (libcurl multi) implements them by starting the
// request on the loop and waiting for its completion on the calling worker. Reads are different: a
// ReadPlan is produced quickly and then served by the loop (sendfile of a descriptor, a redirect, or
// bytes a ByteStream pushes as they arrive), so a client stream never holds a worker.
//
// Publication keeps the guarantee of cache/publish.hpp: prepare() does the slow, durable part outside
// the index lock; place() makes blobs visible under their content address inside the index write
// transaction that records them; remove() is only called inside a write transaction that found no
// record (cache/gc.hpp).
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <expected>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cache/index.hpp"
#include "src/oci/digest.hpp"

namespace wharf::cache {

// Where a staged (not yet published) write lives. Upload: a resumable push session, kept across
// restarts until completed, cancelled or purged. Temp: anything else (monolithic pushes, fetches from
// upstreams, imports), removed by clean_temp() at start.
enum class StageArea { Upload, Temp };

// Why a staging call failed: Missing (the staged data is gone) or Failed (the store could not do it).
struct StoreError {
  enum class Kind { Missing, Failed } kind = Kind::Failed;
  std::string message;
};

// The staged key the backend hands out for a write (a temp file for the filesystem, an object key for
// S3). It is what publication consumes; callers treat it as opaque.
using StagedKey = std::filesystem::path;

// Appends to one staged write; one per writing request (not thread-safe). Closing it keeps the data.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  // Appends `n` bytes and feeds them to `hasher` (if given) in the same pass; on failure nothing after
  // size() is kept and the message says why.
  virtual std::expected<void, std::string> append(const char* p, size_t n, oci::Hasher* hasher) = 0;
  // Makes every appended byte durable (a backend may hold the last ones in memory until then); call it on
  // a worker before destroying the writer. On failure size() tells what was kept, the message why.
  virtual std::expected<void, std::string> close() { return {}; }
  // Bytes staged so far (including those of earlier writers of the same key).
  virtual uint64_t size() const = 0;
  // The key to publish or discard this staged data with.
  virtual const StagedKey& key() const = 0;
  // A descriptor the bytes written so far can be read back from while the write goes on (the mirror
  // streams a blob to its waiters as it arrives); -1 if the backend keeps no local copy.
  virtual int read_fd() const = 0;
  // True once append() or close() failed because another writer (another front) continued the same staged
  // upload first; size() then tells what the store holds now (the caller answers 416 with that Range).
  virtual bool conflicted() const { return false; }
};

// A staged item to make visible as blob `digest` (inside the index write transaction).
struct Placement {
  StagedKey key;
  oci::Digest digest;
  std::optional<uint64_t> size;  // an existing copy of this size is kept (the staged one is dropped)
  // Replace: a stored copy that does not hash to `digest` (damaged) is overwritten by this verified one.
  enum class IfDamaged { Keep, Replace } if_damaged = IfDamaged::Keep;
};

// Bytes of a stored blob on a descriptor the event loop can sendfile (owned by the plan).
struct LocalRange {
  int fd = -1;
  uint64_t first = 0, length = 0;
};

// A URL the client is redirected to (307) for the bytes (e.g. a presigned object-store GET).
struct Redirect {
  std::string url;
};

// Bytes that arrive asynchronously on the event loop (an object-store GET with Range), pulled a piece at
// a time so a slow client holds back the transfer (the server asks for the next piece once it drained).
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Fetches the next piece and calls `done` on the event loop with it: bytes (valid only during the call),
  // "" once the range is complete, or a message on failure. One call at a time (`done` may call next()
  // again); destroying the stream cancels it silently.
  virtual void next(std::function<void(std::expected<std::string_view, std::string>)> done) = 0;
};

// How a blob read is served.
using ReadPlan = std::variant<LocalRange, Redirect, std::unique_ptr<ByteStream>>;

// Whether a read may answer with a redirect (storage.redirect.disable: false) or must carry the bytes.
enum class RedirectPolicy { Allow, Never };

// What the index records of a blob or manifest, as a handler has it after its lookup: the size and, for a
// blob, the backend its record names (a manifest record names none).
struct Recorded {
  uint64_t size = 0;
  std::optional<Backend> backend;
  static Recorded of(const BlobRecord& r) { return {.size = r.size, .backend = r.backend}; }
  static Recorded of(const ManifestRecord& r) { return {.size = r.size, .backend = std::nullopt}; }
};

// One stored blob, as listed for GC and fsck.
struct StoredBlob {
  oci::Digest digest;
  uint64_t size = 0;
  int64_t modified = 0;  // unix seconds
};

// One staged item, as listed for purging.
struct StagedItem {
  std::string name;
  int64_t modified = 0;  // unix seconds
};

class BlobBackend {
 public:
  virtual ~BlobBackend() = default;
  // The backend recorded in the index for the blobs it holds.
  virtual Backend kind() const = 0;

  // ---- staged writes ----
  // Starts a staged write: in Upload, named `name` (a validated session id; fails if it exists); in
  // Temp, a new unique item whose name starts with `name`. Blocking (a create).
  virtual std::expected<std::unique_ptr<BlobWriter>, StoreError> begin_write(StageArea, std::string_view name) const = 0;
  // Continues the upload `name` at its end; Missing if it is gone.
  virtual std::expected<std::unique_ptr<BlobWriter>, StoreError> resume_write(std::string_view name) const = 0;
  // Bytes staged for the upload `name`; Missing if it is gone, Failed if the store cannot tell now.
  virtual std::expected<uint64_t, StoreError> upload_size(std::string_view name) const = 0;
  // Hashes the whole staged item with `algo` (a session restored after a restart); blocking.
  virtual std::expected<std::pair<oci::Digest, uint64_t>, StoreError> hash_staged(const StagedKey&, oci::DigestAlgo) const = 0;
  // Removes a staged item (a staged key, or the upload `name` through upload_key); absent is fine.
  virtual void discard(const StagedKey&) const = 0;
  // The key of the upload `name`.
  virtual StagedKey upload_key(std::string_view name) const = 0;
  // Every staged upload (purging orphans); blocking.
  virtual std::vector<StagedItem> list_uploads() const = 0;
  // Writes `bytes` as a new durable staged item in Temp and returns its key; blocking.
  virtual std::expected<StagedKey, std::string> stage(std::string_view bytes) const = 0;
  // Removes what is left in Temp from a previous run (called once at start, before serving).
  virtual void clean_temp() const = 0;

  // ---- publication ----
  // Makes the staged data of each item durable (the filesystem: fsync; S3: the upload to its final key),
  // outside the index lock; one message per item ("" ok). Blocking.
  virtual std::vector<std::string> prepare(const std::vector<Placement>&) const = 0;
  // Makes each prepared item visible under its digest, durably, before returning; only inside the
  // index write transaction that records the successful ones. One message per item ("" ok); a failed
  // item is not visible and its staged data is left to the caller.
  virtual std::vector<std::string> place(const std::vector<Placement>&) const = 0;

  // ---- reads ----
  // True if read_small() and intact() do network I/O: callers on the event loop run them on the work pool.
  virtual bool reads_block() const { return false; }
  // Size of a stored blob, nullopt if absent. Blocking for a network store (off the event loop).
  virtual std::optional<uint64_t> stat(const oci::Digest&) const = 0;
  // Size of a blob the index has just recorded (`recorded`: the record's size and, for a blob, the backend
  // it names; a manifest record names none), nullopt if the store does not hold it. Never blocks: what a
  // handler on the event loop asks after its index lookup. The filesystem looks at its file; a store whose
  // records are authoritative (S3: objects are written before their record and removed after it) answers
  // from the record, so a networked index is never asked again on the loop.
  virtual std::optional<uint64_t> stat_recorded(const oci::Digest& d, const Recorded& recorded) const {
    (void)recorded;
    return stat(d);
  }
  // Size of a stored blob, nullopt if absent, a message if the store cannot tell now (a network store
  // that fails): what the offline verbs use, so an outage never reads as missing blobs. Blocking.
  virtual std::expected<std::optional<uint64_t>, std::string> stat_checked(const oci::Digest& d) const { return stat(d); }
  // How to serve bytes [first, first+length) of a blob the index recorded as `recorded`; nullopt if the
  // store does not hold it (as far as it can tell without a round trip: see stat_recorded), a message if
  // the store fails. Quick enough for the event loop (an open or a URL signature).
  virtual std::expected<std::optional<ReadPlan>, std::string> read(const oci::Digest&, const Recorded& recorded,
                                                                   uint64_t first, uint64_t length,
                                                                   RedirectPolicy) const = 0;
  // The whole content of a stored blob of at most `max` bytes; nullopt if absent, larger or unreadable. Blocking.
  virtual std::optional<std::string> read_small(const oci::Digest&, uint64_t max) const = 0;
  // Opens a stored blob for reading on this machine (export, bundle); -1 if absent or not local. Blocking.
  virtual int open_local(const oci::Digest&) const = 0;
  // True if the stored blob exists and hashes to its digest (reads it all); blocking.
  virtual bool intact(const oci::Digest&) const = 0;
  // Streams the whole stored blob to `sink` in order (offline verbs: export, backup); `sink` returning
  // false stops it. Fails with a message if the blob is absent, unreadable or `sink` stopped. Blocking.
  // The default reads open_local()'s descriptor.
  virtual std::expected<void, std::string> read_all(const oci::Digest& d,
                                                    const std::function<bool(const char*, size_t)>& sink) const {
    const int fd = open_local(d);
    if (fd < 0) return std::unexpected("blob " + d.str() + " is not in the store");
    std::vector<char> buf(size_t(1) << 20);
    std::expected<void, std::string> r;
    for (;;) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) r = std::unexpected("cannot read blob " + d.str() + ": " + std::strerror(errno));
      else if (n > 0 && !sink(buf.data(), size_t(n))) r = std::unexpected("reading blob " + d.str() + " was stopped");
      if (n <= 0 || !r) break;
    }
    ::close(fd);
    return r;
  }

  // ---- deletion and listing ----
  // Removes a stored blob; false if it was absent. Only inside an index write transaction that found
  // no record for it (cache/gc.hpp).
  virtual bool remove(const oci::Digest&) const = 0;
  // Calls `each` for every stored blob (GC strays, fsck); entries that are not blobs are skipped. Blocking.
  // A message if the listing broke off (what was listed before was passed to `each`).
  virtual std::expected<void, std::string> list(const std::function<void(const StoredBlob&)>& each) const = 0;
};

}  // namespace wharf::cache
