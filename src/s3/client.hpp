#pragma once
// An asynchronous S3 client on wharf's event loop, speaking through proxy::HttpClient (libcurl multi; no
// threads, no blocking calls).
//
// Design note.
// - Signing: every request carries AWS Signature V4 in the Authorization header (src/s3/sigv4), computed
//   with OpenSSL: host, x-amz-date, x-amz-content-sha256 and every header the call adds (Range,
//   x-amz-copy-source, If-None-Match, x-amz-server-side-encryption, x-amz-storage-class...) are signed.
//   Bodies held in memory are hashed into x-amz-content-sha256; streamed bodies (fd ranges, readers) are
//   sent as UNSIGNED-PAYLOAD (the caller verifies content by digest, as wharf does for every blob).
//   Presigned GET URLs sign only `host` (UNSIGNED-PAYLOAD), for redirects.
// - Addressing: path style (endpoint/bucket/key; RGW, minio, IP endpoints) or virtual-host style
//   (bucket.endpoint/key). Keys are relative to `root` (storage.s3.rootdirectory), which the client adds
//   and strips (listings return relative keys).
// - Retries: idempotent calls (GET, HEAD, PUT of in-memory or fd bodies, DELETE, lists, copies, part
//   uploads, aborts) are retried on no response, 5xx, 429 and SlowDown/RequestTimeout, up to
//   `retry.attempts` times with exponential backoff and full jitter (base .. cap). CreateMultipartUpload,
//   CompleteMultipartUpload and reader-bodied uploads are tried once. A GET whose head has reached the
//   caller is never retried (the caller sees the failure). The last failure comes back as S3Error; a
//   200 that carries <Error> (copies, CompleteMultipartUpload) counts as a 5xx.
// - Limits: answers that are not streamed (XML listings, errors) are read up to 8 MiB (then the call fails)
//   and parsed by the bounded reader in src/s3/xml; every transfer has HttpClient's connect, first-byte and
//   stall timeouts (the stall timeout also covers a request body that stops moving), so nothing hangs.
// - Bodies: in memory, an fd range (pread on the loop: meant for local files in the page cache), or a
//   reader that may pause (proxy::kBodyPause) until resume(id), for producers fed from elsewhere.
// - Lifetime: the HttpClient must outlive the Client; destroying the Client cancels its calls without
//   calling their callbacks. Never destroy the Client from one of its callbacks.
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/http_client.hpp"
#include "src/s3/error.hpp"
#include "src/s3/sigv4.hpp"

struct event_base;

namespace wharf::s3 {

// How to address the bucket.
enum class Addressing { PathStyle, VirtualHost };

// Backoff between attempts of an idempotent call.
struct RetryPolicy {
  int attempts = 4;                            // tries in total (1 = no retry)
  std::chrono::milliseconds base{100};         // first backoff ceiling; doubles each time
  std::chrono::milliseconds cap{5'000};        // largest backoff
};

// Everything the client needs to reach one bucket.
struct ClientConfig {
  std::string endpoint;  // "http(s)://host[:port]" (no path); empty: https://s3.<region>.amazonaws.com
  std::string region;
  std::string bucket;
  Credentials credentials;
  Addressing addressing = Addressing::PathStyle;
  std::string root;              // key prefix ("/registry" and "registry/" both mean "registry/")
  bool verify_tls = true;        // storage.s3.skipverify inverted
  std::string encrypt;           // "" (none), "AES256" or "aws:kms" (x-amz-server-side-encryption on writes)
  std::string kms_key_id;        // with aws:kms
  std::string storage_class;     // x-amz-storage-class on writes ("" or "NONE": not sent)
  RetryPolicy retry;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds first_byte_timeout{30'000};
  std::chrono::milliseconds stall_timeout{30'000};
  std::function<std::chrono::system_clock::time_point()> clock;  // empty: system_clock::now
  // Called on the loop after each finished call: S3's operation name, the last HTTP status (0: no
  // answer) and the time from start to end, retries included (metrics).
  std::function<void(const std::string& op, int status, double seconds)> observe;
};

// What S3 says about an object (HeadObject, and GetObject's head).
struct ObjectInfo {
  uint64_t size = 0;           // Content-Length (of the range, for a ranged GET)
  uint64_t total_size = 0;     // the whole object's size (from Content-Range when ranged)
  std::string etag;
  std::string last_modified;
  std::string content_type;
};

// One entry of a listing.
struct ObjectEntry {
  std::string key;  // relative to root
  uint64_t size = 0;
  std::string etag;
  std::string last_modified;
};

// A ListObjectsV2 request; pass the previous page's next_token to continue.
struct ListRequest {
  std::string prefix;  // relative to root
  std::string delimiter;
  std::string continuation_token;
  int max_keys = 1000;
};

// One page of ListObjectsV2.
struct ListPage {
  std::vector<ObjectEntry> objects;
  std::vector<std::string> common_prefixes;  // relative to root
  std::string next_token;                    // empty on the last page
  bool truncated = false;
};

// An unfinished multipart upload.
struct UploadEntry {
  std::string key;  // relative to root
  std::string upload_id;
  std::string initiated;  // ISO 8601
};

// One page of ListMultipartUploads; continue with next_key_marker/next_upload_id_marker.
struct UploadsPage {
  std::vector<UploadEntry> uploads;
  std::string next_key_marker;
  std::string next_upload_id_marker;
  bool truncated = false;
};

// A finished part of a multipart upload.
struct Part {
  int number = 0;
  std::string etag;
};

// A part of an unfinished multipart upload, as ListParts reports it.
struct PartEntry {
  int number = 0;
  std::string etag;
  uint64_t size = 0;
};

// One page of ListParts; continue with next_part_number_marker.
struct PartsPage {
  std::vector<PartEntry> parts;
  int next_part_number_marker = 0;
  bool truncated = false;
};

// Options of PutObject and CreateMultipartUpload.
struct PutOptions {
  bool if_none_match = false;  // send If-None-Match: * (412 PreconditionFailed if the key exists)
  std::string content_type;    // empty: application/octet-stream
};

// Callbacks of a streamed GetObject. on_head runs once (2xx only) before any data; on_data returning false
// aborts; on_done runs exactly once at the end. hold (optional) is asked before each piece: true pauses
// the GET, the piece is kept, and Client::resume(id) offers it to on_data again (backpressure).
struct GetHandlers {
  std::function<void(const ObjectInfo&)> on_head;
  std::function<bool()> hold;
  std::function<bool(const char* data, size_t len)> on_data;
  std::function<void(std::expected<void, S3Error>)> on_done;
};

// An inclusive byte range [first, last].
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
};

template <typename T>
using Done = std::function<void(std::expected<T, S3Error>)>;

// The client of one bucket. Every call returns an id for cancel() and reports later on the loop.
class Client {
 public:
  // Checks the config (bucket, region, credentials, endpoint URL); fails naming what is wrong.
  static std::expected<std::unique_ptr<Client>, std::string> create(event_base* base, proxy::HttpClient& http,
                                                                    ClientConfig cfg);
  // Cancels every call in flight without calling its callbacks.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // PUT the bucket (CreateBucket in the client's region); BucketAlreadyOwnedByYou counts as success.
  uint64_t create_bucket(Done<void> done);
  // HEAD the bucket: fails with NoSuchBucket (404), AccessDenied (403), or a transport error.
  uint64_t head_bucket(Done<void> done);
  // PUT an object; yields its ETag. With if_none_match, an existing key fails with PreconditionFailed (412).
  uint64_t put_object(const std::string& key, proxy::RequestBody body, const PutOptions& opts, Done<std::string> done);
  // GET an object (or a range of it), streamed to the handlers; 404 fails with NoSuchKey.
  uint64_t get_object(const std::string& key, std::optional<ByteRange> range, GetHandlers handlers);
  // HEAD an object; a missing key fails with NoSuchKey (404).
  uint64_t head_object(const std::string& key, Done<ObjectInfo> done);
  // DELETE an object (S3 answers 204 whether or not it existed).
  uint64_t delete_object(const std::string& key, Done<void> done);
  // One page of ListObjectsV2.
  uint64_t list_objects(const ListRequest& req, Done<ListPage> done);
  // Server-side copy of a whole object (up to 5 GiB); yields the new ETag.
  uint64_t copy_object(const std::string& src_key, const std::string& dst_key, const PutOptions& opts,
                       Done<std::string> done);
  // Starts a multipart upload; yields its UploadId. Tried once.
  uint64_t create_multipart_upload(const std::string& key, const PutOptions& opts, Done<std::string> done);
  // Uploads part `number` (1..10000); yields its ETag.
  uint64_t upload_part(const std::string& key, const std::string& upload_id, int number, proxy::RequestBody body,
                       Done<std::string> done);
  // Copies (a range of) another object as part `number`; yields its ETag.
  uint64_t upload_part_copy(const std::string& key, const std::string& upload_id, int number,
                            const std::string& src_key, std::optional<ByteRange> range, Done<std::string> done);
  // Completes a multipart upload from its parts (in order); yields the object's ETag. Tried once.
  uint64_t complete_multipart_upload(const std::string& key, const std::string& upload_id,
                                     const std::vector<Part>& parts, Done<std::string> done);
  // Aborts a multipart upload (NoSuchUpload if it is already gone).
  uint64_t abort_multipart_upload(const std::string& key, const std::string& upload_id, Done<void> done);
  // One page of ListMultipartUploads under `prefix` (relative to root).
  uint64_t list_multipart_uploads(const std::string& prefix, const std::string& key_marker,
                                  const std::string& upload_id_marker, Done<UploadsPage> done);
  // One page of ListParts of upload `upload_id` of `key`, after part `part_number_marker` (0: from the
  // start); NoSuchUpload (404) if the upload is gone.
  uint64_t list_parts(const std::string& key, const std::string& upload_id, int part_number_marker,
                      Done<PartsPage> done);
  // A presigned GET URL for `key`, valid for `expires` (clamped to 1 s .. 7 days).
  std::string presign_get(const std::string& key, std::chrono::seconds expires) const;
  // Resumes the upload of a call whose body reader returned proxy::kBodyPause, or a GetObject paused by
  // GetHandlers::hold (the held piece may reach on_data before this returns). Unknown ids are ignored.
  void resume(uint64_t id);
  // Cancels a call; its callbacks are not called afterwards. Unknown ids are ignored.
  void cancel(uint64_t id);
  // The full object key for a key relative to root.
  std::string full_key(const std::string& key) const;
  // The configuration in use.
  const ClientConfig& config() const;

  // ---- streaming reads (S3STREAM) ----
  // The event loop the client runs on (for timers of its callers, e.g. a paused stream's idle limit).
  event_base* base() const;

  struct Call;      // one request as the operations describe it (client_ops.cpp)
  struct Response;  // a finished, non-streamed answer

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  uint64_t execute(Call call);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::s3
