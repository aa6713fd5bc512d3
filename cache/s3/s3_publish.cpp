// The S3 store's publication: completing push sessions and streamed parts, uploading local staged files,
// server-side copies to the blob's key, HEAD-checked placement, and aborting stale multipart uploads
// (see s3_store.hpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "cache/s3/s3_store.hpp"

namespace wharf::cache {
namespace {

constexpr std::string_view kBlobsPrefix = "docker/registry/v2/blobs/";
constexpr uint64_t kMaxParts = 10'000;

std::string s3_failure(std::string_view what, const s3::S3Error& e) {
  return std::string("S3 ").append(what).append(": ").append(e.str());
}

}  // namespace

std::shared_ptr<TempParts> S3BlobStore::temp_parts(const StagedKey& key, bool forget) const {
  std::lock_guard lock(temp_mu_);
  auto it = temp_.find(key.string());
  if (it == temp_.end()) return nullptr;
  auto parts = it->second;
  if (forget) temp_.erase(it);
  return parts;
}

std::optional<std::expected<void, std::string>> S3BlobStore::publish_parts(TempParts& parts, uint64_t size,
                                                                           const std::string& key, Existing there) const {
  auto staged = parts.finish(size);
  if (!staged) {
    spdlog::warn("{}; uploading {} whole", staged.error(), key);
    return std::nullopt;
  }
  if (!*staged) return std::nullopt;
  auto copied = copy(**staged, key, size, there == Existing::None);
  (void)bridge_.call<void>([&](s3::Client& c, s3::Done<void> d) { return c.delete_object(**staged, std::move(d)); });
  return copied;
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

std::expected<S3BlobStore::Existing, std::string> S3BlobStore::existing(const Placement& p, uint64_t size) const {
  auto present = head(blob_key(p.digest));
  if (!present) return std::unexpected(present.error());
  if (!*present) return Existing::None;
  // Content-addressed: a copy of the same size holds the same bytes, unless the caller (a manifest, small)
  // asks to check it and it turns out damaged.
  if (**present == size && (p.if_damaged == Placement::IfDamaged::Keep || intact(p.digest))) return Existing::Keep;
  return Existing::Damaged;
}

std::expected<void, std::string> S3BlobStore::upload(const Placement& p) const {
  if (auto id = s3_upload_id(p.key)) return publish_session(p, *id);
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
  auto there = existing(p, size);
  if (!there) return std::unexpected(there.error());
  auto parts = temp_parts(p.key, false);
  if (*there == Existing::Keep) {
    if (parts) parts->abandon();
    return {};
  }
  if (parts) {  // parts went up while the file was written (a fetch): only the last one is left
    if (auto published = publish_parts(*parts, size, key, *there)) return *published;
  }
  if (size > opts_.chunk_size) return upload_parts(fd, size, key);
  s3::PutOptions put;
  put.if_none_match = *there == Existing::None;  // a damaged copy is overwritten
  auto r = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> done) {
    return c.put_object(key, proxy::RequestBody::from_fd(fd, 0, size), put, std::move(done));
  });
  if (r || r.error().status == 412) return {};  // 412: a concurrent upload of the same content won
  return std::unexpected(s3_failure("PutObject " + key, r.error()));
}

std::expected<void, std::string> S3BlobStore::publish_session(const Placement& p, const std::string& id) const {
  auto st = uploads_.load(id);
  if (!st) return std::unexpected(st.error().kind == StoreError::Kind::Missing ? "upload data missing" : st.error().message);
  if (auto done = uploads_.complete(id, *st); !done) return std::unexpected(done.error());
  const uint64_t size = *st->completed;
  if (p.size && *p.size != size)
    return std::unexpected("upload " + id + " holds " + std::to_string(size) + " bytes, not " + std::to_string(*p.size));
  auto there = existing(p, size);
  if (!there) return std::unexpected(there.error());
  if (*there == Existing::Keep) return {};
  return copy(UploadKeys::data(id), blob_key(p.digest), size, *there == Existing::None);
}

std::expected<void, std::string> S3BlobStore::copy(const std::string& src, const std::string& dst, uint64_t size,
                                                   bool if_none_match) const {
  constexpr uint64_t kMaxCopy = 5ull << 30;  // CopyObject's limit
  if (size <= std::min(opts_.copy_threshold, kMaxCopy)) {
    s3::PutOptions opts;
    opts.if_none_match = if_none_match;
    auto r = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> done) {
      return c.copy_object(src, dst, opts, std::move(done));
    });
    if (r || r.error().status == 412) return {};  // 412: a concurrent push of the same content won
    return std::unexpected(s3_failure("CopyObject " + src + " to " + dst, r.error()));
  }
  auto id = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> done) {
    return c.create_multipart_upload(dst, s3::PutOptions{}, std::move(done));
  });
  if (!id) return std::unexpected(s3_failure("CreateMultipartUpload " + dst, id.error()));
  const auto ranges = plan_copy_parts(size, opts_.copy_chunk_size);
  std::vector<s3::Part> parts;
  std::string failure;
  constexpr size_t kParallelParts = 4;
  for (size_t at = 0; at < ranges.size() && failure.empty(); at += kParallelParts) {
    std::vector<std::function<uint64_t(s3::Client&, s3::Done<std::string>)>> batch;
    for (size_t k = at; k < std::min(ranges.size(), at + kParallelParts); ++k) {
      batch.push_back([&, k](s3::Client& c, s3::Done<std::string> done) {
        return c.upload_part_copy(dst, *id, int(k) + 1, src, ranges[k], std::move(done));
      });
    }
    auto etags = bridge_.call_all<std::string>(std::move(batch));
    for (size_t k = 0; k < etags.size() && failure.empty(); ++k) {
      if (!etags[k]) failure = s3_failure("UploadPartCopy " + dst, etags[k].error());
      else parts.push_back(s3::Part{.number = int(at + k) + 1, .etag = *etags[k]});
    }
  }
  if (failure.empty()) {
    auto done = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> d) {
      return c.complete_multipart_upload(dst, *id, parts, std::move(d));
    });
    if (done) return {};
    failure = s3_failure("CompleteMultipartUpload " + dst, done.error());
  }
  (void)bridge_.call<void>([&](s3::Client& c, s3::Done<void> d) { return c.abort_multipart_upload(dst, *id, std::move(d)); });
  return std::unexpected(failure);
}

std::vector<std::string> S3BlobStore::prepare(const std::vector<Placement>& items) const {
  std::vector<std::string> errors(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    if (auto r = upload(items[i]); !r) errors[i] = r.error();
  }
  return errors;
}

size_t S3BlobStore::abort_stale_uploads(int64_t older_than) const {
  return abort_stale_under(std::string(kBlobsPrefix), older_than) + abort_stale_under(TempParts::prefix(), older_than);
}

size_t S3BlobStore::abort_stale_under(const std::string& prefix, int64_t older_than) const {
  size_t aborted = 0;
  std::string key_marker, id_marker;
  for (int page = 0; page < 10'000; ++page) {
    auto r = bridge_.call<s3::UploadsPage>([&](s3::Client& c, s3::Done<s3::UploadsPage> done) {
      return c.list_multipart_uploads(prefix, key_marker, id_marker, std::move(done));
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
    else if (auto id = s3_upload_id(items[i].key)) {  // the staged object; its tails went at completion
      const std::string staged = UploadKeys::data(*id);
      (void)bridge_.call<void>([&](s3::Client& c, s3::Done<void> d) { return c.delete_object(staged, std::move(d)); });
    } else {
      (void)temp_parts(items[i].key, true);
      local_.discard(items[i].key);
    }
  }
  return errors;
}

}  // namespace wharf::cache
