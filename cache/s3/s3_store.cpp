// The S3 blob backend: uploads of verified staged files, HEAD-checked placement, presigned or streamed
// reads, listing and deletion (see s3_store.hpp).
#include "cache/s3/s3_store.hpp"

#include "cache/s3/s3_stream.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "src/util/number.hpp"

namespace wharf::cache {
namespace {

constexpr std::string_view kBlobsPrefix = "docker/registry/v2/blobs/";
constexpr uint64_t kMinPart = 5ull << 20;
constexpr uint64_t kMaxParts = 10'000;

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

S3BlobStore::S3BlobStore(FsBlobStore local, const S3Bridge& bridge, const Index& index, Options opts)
    : local_(std::move(local)), bridge_(bridge), index_(index), opts_(opts) {
  opts_.chunk_size = std::max(opts_.chunk_size, kMinPart);
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

std::expected<void, std::string> S3BlobStore::upload_parts(int fd, uint64_t size, const std::string& key) const {
  const uint64_t part = std::max(opts_.chunk_size, (size + kMaxParts - 1) / kMaxParts);
  auto id = bridge_.call<std::string>([key](s3::Client& c, s3::Done<std::string> done) {
    return c.create_multipart_upload(key, s3::PutOptions{}, std::move(done));
  });
  if (!id) return std::unexpected(s3_failure("CreateMultipartUpload " + key, id.error()));
  std::vector<s3::Part> parts;
  std::string failure;
  // Parts go kParallelParts at a time (pread on the loop from the page cache; S3 takes them in parallel).
  constexpr size_t kParallelParts = 4;
  uint64_t off = 0;
  while (off < size && failure.empty()) {
    std::vector<std::function<uint64_t(s3::Client&, s3::Done<std::string>)>> batch;
    for (size_t k = 0; k < kParallelParts && off < size; ++k, off += part) {
      const int number = int(parts.size() + batch.size()) + 1;
      const uint64_t at = off, len = std::min(part, size - off);
      batch.push_back([key, id = *id, number, fd, at, len](s3::Client& c, s3::Done<std::string> done) {
        return c.upload_part(key, id, number, proxy::RequestBody::from_fd(fd, at, len), std::move(done));
      });
    }
    const int first = int(parts.size()) + 1;
    auto etags = bridge_.call_all<std::string>(std::move(batch));
    for (size_t k = 0; k < etags.size(); ++k) {
      if (!etags[k]) {
        if (failure.empty()) failure = s3_failure("UploadPart " + key, etags[k].error());
      } else {
        parts.push_back(s3::Part{first + int(k), *etags[k]});
      }
    }
  }
  if (failure.empty()) {
    auto done = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> d) {
      return c.complete_multipart_upload(key, *id, parts, std::move(d));
    });
    if (done) return {};
    failure = s3_failure("CompleteMultipartUpload " + key, done.error());
  }
  (void)bridge_.call<void>([&](s3::Client& c, s3::Done<void> d) {
    return c.abort_multipart_upload(key, *id, std::move(d));
  });
  return std::unexpected(failure);
}

std::expected<void, std::string> S3BlobStore::upload(const Placement& p) const {
  const std::string key = blob_key(p.digest);
  int fd = ::open(p.key.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected("cannot open staged file '" + p.key.string() + "': " + std::generic_category().message(errno));
  struct CloseFd {
    int fd;
    ~CloseFd() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::unexpected("cannot stat staged file '" + p.key.string() + "'");
  const uint64_t size = uint64_t(st.st_size);
  auto present = head(key);
  if (!present) return std::unexpected(present.error());
  // Content-addressed: a copy of the same size holds the same bytes, unless the caller (a manifest, small)
  // asks to check it and it turns out damaged.
  if (*present && **present == size && (p.if_damaged == Placement::IfDamaged::Keep || intact(p.digest))) return {};
  if (size > opts_.chunk_size) return upload_parts(fd, size, key);
  s3::PutOptions put;
  put.if_none_match = !*present;  // a damaged copy of another size is overwritten
  auto r = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> done) {
    return c.put_object(key, proxy::RequestBody::from_fd(fd, 0, size), put, std::move(done));
  });
  if (r || r.error().status == 412) return {};  // 412: a concurrent upload of the same content won
  return std::unexpected(s3_failure("PutObject " + key, r.error()));
}

std::vector<std::string> S3BlobStore::prepare(const std::vector<Placement>& items) const {
  std::vector<std::string> errors(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    if (auto r = upload(items[i]); !r) errors[i] = r.error();
  }
  return errors;
}

size_t S3BlobStore::abort_stale_uploads(int64_t older_than) const {
  size_t aborted = 0;
  std::string key_marker, id_marker;
  for (int page = 0; page < 10'000; ++page) {
    auto r = bridge_.call<s3::UploadsPage>([&](s3::Client& c, s3::Done<s3::UploadsPage> done) {
      return c.list_multipart_uploads(std::string(kBlobsPrefix), key_marker, id_marker, std::move(done));
    });
    if (!r) return aborted;
    for (const auto& u : r->uploads) {
      const int64_t started = parse_time(u.initiated);
      if (started == 0 || started >= older_than) continue;
      auto a = bridge_.call<void>([&](s3::Client& c, s3::Done<void> done) {
        return c.abort_multipart_upload(u.key, u.upload_id, std::move(done));
      });
      if (a) ++aborted;
    }
    if (!r->truncated) return aborted;
    key_marker = r->next_key_marker;
    id_marker = r->next_upload_id_marker;
  }
  return aborted;
}

std::vector<std::string> S3BlobStore::place(const std::vector<Placement>& items) const {
  std::vector<std::string> errors(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string key = blob_key(items[i].digest);
    auto present = head(key);
    if (!present) errors[i] = present.error();
    else if (!*present) errors[i] = "S3 object " + key + " vanished before it was recorded";
    else if (items[i].size && **present != *items[i].size)
      errors[i] = "S3 object " + key + " has " + std::to_string(**present) + " bytes, not " + std::to_string(*items[i].size);
    else local_.discard(items[i].key);
  }
  return errors;
}

std::optional<uint64_t> S3BlobStore::stat(const oci::Digest& d) const {
  if (bridge_.on_loop_thread()) {  // the index is authoritative for S3 (see s3_store.hpp)
    auto txn = index_.read();
    if (auto rec = index_.blob(txn, d.str()); rec && rec->backend == Backend::S3) return rec->size;
    if (auto rec = index_.manifest(txn, d.str())) return rec->size;
    return std::nullopt;
  }
  auto r = head(blob_key(d));
  if (!r) return std::nullopt;
  return *r;
}

std::expected<std::optional<ReadPlan>, std::string> S3BlobStore::read(const oci::Digest& d, uint64_t first,
                                                                      uint64_t length, RedirectPolicy policy) const {
  if (!stat(d)) return std::optional<ReadPlan>();  // on the loop: the index; elsewhere a HEAD
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

void S3BlobStore::list(const std::function<void(const StoredBlob&)>& each) const {
  std::string token;
  for (int page = 0; page < 1'000'000; ++page) {
    s3::ListRequest req;
    req.prefix = std::string(kBlobsPrefix);
    req.continuation_token = token;
    auto r = bridge_.call<s3::ListPage>([req](s3::Client& c, s3::Done<s3::ListPage> done) {
      return c.list_objects(req, std::move(done));
    });
    if (!r) return;  // a failed listing sweeps nothing more
    for (const auto& o : r->objects) {
      if (auto d = digest_of_key(o.key)) each(StoredBlob{*d, o.size, parse_time(o.last_modified)});
    }
    if (!r->truncated || r->next_token.empty()) return;
    token = r->next_token;
  }
}

}  // namespace wharf::cache
