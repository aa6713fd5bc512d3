#pragma once
// One in-flight download of a blob from an upstream, shared by every client that wants it. Bytes go to
// a staged write of the blob backend as they arrive (clients stream from its local copy at their own pace); the digest and size
// are verified at the end and only then is the blob published. The fetch belongs to the FetchTable,
// not to a client, so it continues when the client that started it hangs up.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/blob_backend.hpp"
#include "proxy/credential.hpp"
#include "src/oci/digest.hpp"

namespace wharf::proxy {

class Upstream;

// Queued: waiting for a download slot; Starting: slot taken, size not known yet.
enum class FetchState { Queued, Starting, Streaming, Verified, Failed };

// Who asked: a client waiting for the bytes goes before any prefetch.
enum class FetchPriority { Client, Prefetch };

// What a waiting client is told. Each callback runs on the loop thread.
struct FetchListener {
  std::function<void()> on_head;      // total size known (state Streaming): send response headers
  std::function<void()> on_progress;  // more bytes in the file (or verified): send what is available
  // The fetch failed: before the head (status/error body from upstream, or 502/504), or mid-body (abort).
  std::function<void(int status, const std::string& body, const std::string& content_type)> on_fail;
};

class BlobFetch {
 public:
  FetchState state() const { return state_; }
  const oci::Digest& digest() const { return digest_; }
  // Total size from the upstream's Content-Length or the descriptor (known from on_head on).
  uint64_t total() const { return total_; }
  // Bytes in the temp file that clients may send now. The last byte is held back until the digest
  // is verified, so a client never receives a complete but corrupt body.
  uint64_t available() const;
  // The temp file (readable; stays valid after publishing, which renames it); -1 while queued.
  int fd() const { return writer_ ? writer_->read_fd() : -1; }
  // Why the fetch failed, for the client's error message; empty unless Failed.
  const std::string& failure() const { return failure_; }
  // True once the upstream sent a response head (false after a connect failure or timeout).
  bool upstream_answered() const { return answered_; }
  // Adds a listener; returns its id for remove_listener().
  uint64_t add_listener(FetchListener l);
  void remove_listener(uint64_t id);

 private:
  friend class FetchTable;
  oci::Digest digest_;
  std::string cache_repo;
  std::string remote_repo_;
  Credential cred_;  // the account the download uses
  Upstream* upstream_ = nullptr;
  FetchPriority priority_ = FetchPriority::Prefetch;
  FetchState state_ = FetchState::Queued;
  bool slot_ = false;                 // holds a download slot
  bool answered_ = false;
  std::optional<uint64_t> expected_;  // size from a descriptor, when one was seen
  uint64_t total_ = 0;
  uint64_t written_ = 0;
  const cache::BlobBackend* store_ = nullptr;
  std::unique_ptr<cache::BlobWriter> writer_;  // the staged write (open until the fetch is gone)
  std::string tmp_path_;                       // its staged key; cleared once published
  std::optional<oci::Hasher> hasher_;
  uint64_t next_listener_ = 1;
  std::unordered_map<uint64_t, FetchListener> listeners_;
  std::string error_body_;
  std::string error_type_;
  int error_status_ = 0;
  std::string abort_reason_;  // set when wharf itself stops the transfer (too long, bad Content-Length)
  std::string failure_;
  void notify_head();
  void notify_progress();
  void notify_fail(int status);

 public:
  ~BlobFetch();
};

// Runs `work` off the loop, then `done` on it (the WorkPool's submit).
using Submit = std::function<void(std::function<void()> work, std::function<void()> done)>;
// A downloaded and verified blob, ready to be published.
struct VerifiedBlob {
  std::string tmp_path;
  oci::Digest digest;
  uint64_t size = 0;
  std::string cache_repo;
};
// Publishes verified temp files into the store and index (runs on a worker): one error message per
// blob, in order ("" on success).
using Publish = std::function<std::vector<std::string>(const std::vector<VerifiedBlob>&)>;

// How many downloads run at once (proxy.limits.downloads, proxy.limits.downloadsperupstream).
struct FetchLimits {
  size_t total = 64;
  size_t per_upstream = 16;
};

// The in-flight downloads, keyed by digest: concurrent requests for one blob share one download.
//
// At most FetchLimits downloads run at once (each holds a temp file and a connection); the others wait
// in FIFO order, clients' before prefetches', and a prefetch a client asks for moves to the clients' queue.
// Verified blobs keep their temp file open until published, so prefetches also wait while
// kMaxUnpublished of them are waiting for (or in) a publish: disk syncs pace the prefetch.
//
// Verified blobs are published in groups (group commit): a group goes to a worker when no download is
// still streaming, when its oldest blob has waited kPublishDelay, or at kMaxGroup blobs, and never while
// the previous group is being published. Until then requests are served from the temp file, so the
// fsyncs are off the clients' path and one index transaction covers the whole pull.
class FetchTable {
 public:
  FetchTable(cache::BlobBackend& store, Submit submit, Publish publish, FetchLimits limits = {})
      : store_(store), submit_(std::move(submit)), publish_(std::move(publish)), limits_(limits) {}
  // The download of `d` in progress or queued, or a new one from `upstream` (GET /v2/<remote_repo>/blobs/<d>),
  // started now or queued when the limits are reached. `size` is the descriptor's size, if known (a
  // size noted with note_size() is used otherwise). A new download uses `cred` (a forwarded client
  // account; empty: the configured one): the caller joins a download in progress only for a caller whose
  // access to `d` is established. A fetch that cannot start is returned Failed.
  std::shared_ptr<BlobFetch> get_or_start(Upstream& upstream, const std::string& remote_repo,
                                          const std::string& cache_repo, const oci::Digest& d,
                                          FetchPriority priority = FetchPriority::Client,
                                          std::optional<uint64_t> size = std::nullopt, Credential cred = {});
  // Remembers the size a descriptor gave `d` (bounded table), so a later download of it is held to it.
  void note_size(const oci::Digest& d, uint64_t size);
  // If the upstream recently served bytes that do not match `d`: how much longer that is remembered.
  std::optional<std::chrono::seconds> known_bad(const oci::Digest& d) const;
  static constexpr std::chrono::milliseconds kPublishDelay{500};
  static constexpr size_t kMaxGroup = 64;
  static constexpr std::chrono::seconds kBadDigestMemory{600};
  static constexpr size_t kMaxBadDigests = 4096;
  static constexpr size_t kMaxNotedSizes = 200'000;
  static constexpr size_t kMaxUnpublished = 4 * kMaxGroup;
  size_t in_flight() const { return fetches_.size(); }
  bool in_flight(const oci::Digest& d) const { return fetches_.count(d.str()) > 0; }
  // The download of `d` in progress or queued (not started by this call), or null.
  std::shared_ptr<BlobFetch> find(const oci::Digest& d) const {
    auto it = fetches_.find(d.str());
    return it == fetches_.end() ? nullptr : it->second;
  }
  // Downloads holding a slot, in total.
  size_t running() const { return running_; }
  // Downloads waiting for a slot.
  size_t queued() const;
  uint64_t bytes_fetched() const { return bytes_fetched_; }
  // Hands every verified, unpublished blob to the workers now (at shutdown, before the pool drains).
  void flush() { publish_ready(true); }

 private:
  struct Queues {
    std::deque<std::pair<uint64_t, std::shared_ptr<BlobFetch>>> client, prefetch;  // (sequence, fetch)
    size_t running = 0;
  };
  // Takes a slot, creates the temp file and starts the transfer; false (fetch Failed) if it cannot.
  bool launch(const std::shared_ptr<BlobFetch>& f);
  // Starts queued downloads while slots are free.
  void start_queued();
  void release(BlobFetch& f);
  void finish(const std::shared_ptr<BlobFetch>& f, bool ok, const std::string& error);
  // Submits the waiting group if one of the conditions above holds (or `force`).
  void publish_ready(bool force = false);
  bool streaming() const;
  bool backlogged() const { return unpublished_ >= kMaxUnpublished; }
  cache::BlobBackend& store_;
  Submit submit_;
  Publish publish_;
  FetchLimits limits_;
  std::unordered_map<std::string, std::shared_ptr<BlobFetch>> fetches_;
  std::map<std::string, Queues> queues_;  // per upstream name
  size_t running_ = 0;
  uint64_t next_seq_ = 1;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> bad_;  // digest → forget at
  std::unordered_map<std::string, uint64_t> sizes_;                            // digest → descriptor size
  std::vector<std::shared_ptr<BlobFetch>> ready_;  // verified, waiting to be published
  std::chrono::steady_clock::time_point ready_since_;
  bool publishing_ = false;
  size_t unpublished_ = 0;  // verified, not yet through publish_
  uint64_t bytes_fetched_ = 0;
};

}  // namespace wharf::proxy
