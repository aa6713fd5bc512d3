// The S3 blob backend: staged writes (push sessions in the bucket, local Temp files with streamed parts),
// presigned or streamed reads, listing and deletion (see s3_store.hpp; publication in s3_publish.cpp).
#include "cache/s3/s3_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "cache/s3/s3_stream.hpp"
#include "src/util/number.hpp"
#include "src/util/work_pool.hpp"

namespace wharf::cache {
namespace {

constexpr std::string_view kBlobsPrefix = "docker/registry/v2/blobs/";
constexpr uint64_t kMinPart = 5ull << 20;

std::string s3_failure(std::string_view what, const s3::S3Error& e) {
  return std::string("S3 ").append(what).append(": ").append(e.str());
}

}  // namespace

int64_t S3BlobStore::parse_time(std::string_view s) {
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return 0;
  auto num = [&](size_t at, size_t len) { return util::parse_u64(s.substr(at, len), 9999); };
  auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), se = num(17, 2);
  if (!y || !mo || !d || !h || !mi || !se) return 0;
  tm t{};
  t.tm_year = int(*y) - 1900;
  t.tm_mon = int(*mo) - 1;
  t.tm_mday = int(*d);
  t.tm_hour = int(*h);
  t.tm_min = int(*mi);
  t.tm_sec = int(*se);
  return int64_t(timegm(&t));
}

std::optional<oci::Digest> S3BlobStore::digest_of_key(std::string_view key) {
  if (!key.starts_with(kBlobsPrefix)) return std::nullopt;
  key.remove_prefix(kBlobsPrefix.size());
  const size_t slash1 = key.find('/');
  if (slash1 == std::string_view::npos) return std::nullopt;
  const std::string_view algo = key.substr(0, slash1), rest = key.substr(slash1 + 1);
  const size_t slash2 = rest.find('/');
  if (slash2 != 2) return std::nullopt;
  const std::string_view tail = rest.substr(3);
  const size_t slash3 = tail.find('/');
  if (slash3 == std::string_view::npos || tail.substr(slash3) != "/data") return std::nullopt;
  const std::string_view hex = tail.substr(0, slash3);
  auto d = oci::parse_digest(std::string(algo).append(":").append(hex));
  if (!d || d->hex.substr(0, 2) != rest.substr(0, 2)) return std::nullopt;
  return d;
}

S3BlobStore::S3BlobStore(FsBlobStore local, const S3Bridge& bridge, Options opts)
    : local_(std::move(local)), bridge_(bridge), opts_(opts),
      uploads_(bridge, std::max(opts.chunk_size, kMinPart)) {
  opts_.chunk_size = std::max(opts_.chunk_size, kMinPart);
  opts_.copy_chunk_size = std::max(opts_.copy_chunk_size, kMinPart);
}

std::expected<std::unique_ptr<BlobWriter>, StoreError> S3BlobStore::begin_write(StageArea a, std::string_view name) const {
  if (a == StageArea::Temp) {
    auto w = local_.begin_write(a, name);
    if (!w) return w;
    auto parts = std::make_shared<TempParts>(bridge_, (*w)->read_fd(), opts_.chunk_size);
    {
      std::lock_guard lock(temp_mu_);
      temp_[(*w)->key().string()] = parts;
    }
    return std::make_unique<S3TempWriter>(std::move(*w), std::move(parts));
  }
  auto st = uploads_.create(name);
  if (!st) return std::unexpected(st.error());
  return std::make_unique<S3UploadWriter>(uploads_, std::string(name), std::move(*st));
}

std::expected<std::unique_ptr<BlobWriter>, StoreError> S3BlobStore::resume_write(std::string_view name) const {
  auto st = uploads_.load(name);
  if (!st) return std::unexpected(st.error());
  return std::make_unique<S3UploadWriter>(uploads_, std::string(name), std::move(*st));
}

std::expected<uint64_t, StoreError> S3BlobStore::upload_size(std::string_view name) const {
  auto st = uploads_.load(name);
  if (!st) return std::unexpected(st.error());
  return st->size();
}

std::expected<std::pair<oci::Digest, uint64_t>, StoreError> S3BlobStore::hash_staged(const StagedKey& k,
                                                                                     oci::DigestAlgo algo) const {
  auto id = s3_upload_id(k);
  if (!id) return local_.hash_staged(k, algo);
  // A session restored in this process: complete it (parts of an unfinished upload cannot be read) and
  // hash the object; no more bytes can be added afterwards, which is what finishing a push means.
  auto st = uploads_.load(*id);
  if (!st) return std::unexpected(st.error());
  if (auto done = uploads_.complete(*id, *st); !done) return std::unexpected(StoreError{StoreError::Kind::Failed, done.error()});
  auto hasher = std::make_shared<oci::Hasher>(algo);
  auto size = std::make_shared<uint64_t>(0);
  const std::string key = UploadKeys::data(*id);
  auto r = bridge_.call<void>([hasher, size, key](s3::Client& c, s3::Done<void> done) {
    s3::GetHandlers h;
    h.on_head = [](const s3::ObjectInfo&) {};
    h.on_data = [hasher, size](const char* p, size_t n) {
      hasher->update(p, n);
      *size += n;
      return true;
    };
    h.on_done = std::move(done);
    return c.get_object(key, std::nullopt, std::move(h));
  });
  if (!r && r.error().status == 404) return std::unexpected(StoreError{StoreError::Kind::Missing, "upload data missing"});
  if (!r) return std::unexpected(StoreError{StoreError::Kind::Failed, s3_failure("GetObject " + key, r.error())});
  return std::pair{hasher->finish(), *size};
}

void S3BlobStore::discard(const StagedKey& k) const {
  if (auto id = s3_upload_id(k)) return uploads_.remove(*id);
  if (auto parts = temp_parts(k, true)) parts->abandon();
  local_.discard(k);
}

std::string S3BlobStore::blob_key(const oci::Digest& d) {
  return std::string(kBlobsPrefix)
      .append(d.algo == oci::DigestAlgo::Sha512 ? "sha512/" : "sha256/")
      .append(d.hex.substr(0, 2))
      .append("/")
      .append(d.hex)
      .append("/data");
}

std::expected<std::optional<uint64_t>, std::string> S3BlobStore::head(const std::string& key) const {
  auto r = bridge_.call<s3::ObjectInfo>([key](s3::Client& c, s3::Done<s3::ObjectInfo> done) {
    return c.head_object(key, std::move(done));
  });
  if (r) return std::optional<uint64_t>(r->size);
  if (r.error().status == 404) return std::optional<uint64_t>();
  return std::unexpected(s3_failure("HeadObject " + key, r.error()));
}

std::expected<std::optional<uint64_t>, std::string> S3BlobStore::stat_checked(const oci::Digest& d) const {
  return head(blob_key(d));
}

std::optional<uint64_t> S3BlobStore::stat(const oci::Digest& d) const {
  // A HEAD would block every client: the loop asks stat_recorded().
  if (util::blocking_on_event_loop("S3 stat")) return std::nullopt;
  auto r = head(blob_key(d));
  if (!r) return std::nullopt;
  return *r;
}

std::optional<uint64_t> S3BlobStore::stat_recorded(const oci::Digest&, const Recorded& recorded) const {
  // A blob recorded in another backend (a store switched to S3 without moving its blobs) is not here.
  if (recorded.backend && *recorded.backend != Backend::S3) return std::nullopt;
  return recorded.size;
}

std::expected<std::optional<ReadPlan>, std::string> S3BlobStore::read(const oci::Digest& d, const Recorded& recorded,
                                                                      uint64_t first, uint64_t length,
                                                                      RedirectPolicy policy) const {
  // The caller just read the blob's record: no round trip to ask the bucket (or the index) again.
  if (!stat_recorded(d, recorded)) return std::optional<ReadPlan>();
  const std::string key = blob_key(d);
  if (policy == RedirectPolicy::Allow)
    return std::optional<ReadPlan>(Redirect{bridge_.client().presign_get(key, opts_.presign_expiry)});
  if (length == 0) return std::unexpected(std::string("an empty range cannot be streamed"));
  return std::optional<ReadPlan>(
      std::make_unique<ObjectStream>(bridge_.client(), bridge_.client().base(), key, first, first + length));
}

std::optional<std::string> S3BlobStore::read_small(const oci::Digest& d, uint64_t max) const {
  struct Acc {
    std::string bytes;
    bool too_big = false;
  };
  auto acc = std::make_shared<Acc>();
  const std::string key = blob_key(d);
  auto r = bridge_.call<void>([acc, key, max](s3::Client& c, s3::Done<void> done) {
    s3::GetHandlers h;
    h.on_head = [](const s3::ObjectInfo&) {};
    h.on_data = [acc, max](const char* p, size_t n) {
      if (acc->bytes.size() + n > max) {
        acc->too_big = true;
        return false;
      }
      acc->bytes.append(p, n);
      return true;
    };
    h.on_done = std::move(done);
    return c.get_object(key, std::nullopt, std::move(h));
  });
  if (!r || acc->too_big) return std::nullopt;
  return std::move(acc->bytes);
}

bool S3BlobStore::intact(const oci::Digest& d) const {
  auto hasher = std::make_shared<oci::Hasher>(d.algo);
  const std::string key = blob_key(d);
  auto r = bridge_.call<void>([hasher, key](s3::Client& c, s3::Done<void> done) {
    s3::GetHandlers h;
    h.on_head = [](const s3::ObjectInfo&) {};
    h.on_data = [hasher](const char* p, size_t n) {
      hasher->update(p, n);
      return true;
    };
    h.on_done = std::move(done);
    return c.get_object(key, std::nullopt, std::move(h));
  });
  return r && hasher->finish() == d;
}

bool S3BlobStore::remove(const oci::Digest& d) const {
  const std::string key = blob_key(d);
  if (auto present = head(key); !present || !*present) return false;  // absent, or S3 cannot say: keep
  auto r = bridge_.call<void>([key](s3::Client& c, s3::Done<void> done) { return c.delete_object(key, std::move(done)); });
  return r.has_value();
}

std::expected<void, std::string> S3BlobStore::list(const std::function<void(const StoredBlob&)>& each) const {
  std::string token;
  for (int page = 0; page < 1'000'000; ++page) {
    s3::ListRequest req;
    req.prefix = std::string(kBlobsPrefix);
    req.continuation_token = token;
    auto r = bridge_.call<s3::ListPage>([req](s3::Client& c, s3::Done<s3::ListPage> done) {
      return c.list_objects(req, std::move(done));
    });
    if (!r) return std::unexpected(s3_failure("ListObjectsV2 " + std::string(kBlobsPrefix), r.error()));
    for (const auto& o : r->objects) {
      if (auto d = digest_of_key(o.key)) each(StoredBlob{*d, o.size, parse_time(o.last_modified)});
    }
    if (!r->truncated || r->next_token.empty()) return {};
    token = r->next_token;
  }
  return std::unexpected(std::string("listing ").append(kBlobsPrefix).append(" did not end after a million pages"));
}

}  // namespace wharf::cache
