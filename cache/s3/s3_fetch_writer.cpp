// Temp staged writes whose full parts go up to S3 while they are written (see s3_fetch_writer.hpp).
#include "cache/s3/s3_fetch_writer.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <chrono>

#include "cache/s3/s3_writer.hpp"

namespace wharf::cache {
namespace {

// Parts in flight finish within the client's own timeouts and retries; this only bounds a stopped loop.
constexpr std::chrono::minutes kIdleWait{15};

std::string random_name() {
  unsigned char b[12];
  RAND_bytes(b, sizeof b);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s.push_back(hex[c >> 4]);
    s.push_back(hex[c & 15]);
  }
  return s;
}

}  // namespace

std::string TempParts::prefix() { return std::string(UploadKeys::kPrefix).append("tmp-"); }

TempParts::TempParts(const S3Bridge& bridge, int fd, uint64_t chunk)
    : bridge_(bridge), fd_(fd >= 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1), chunk_(chunk),
      key_(prefix().append(random_name()).append("/data")) {
  if (fd_ < 0) failure_ = "the staged file has no descriptor";
}

TempParts::~TempParts() {
  if (fd_ >= 0) ::close(fd_);
}

template <typename T>
void TempParts::run(std::function<uint64_t(s3::Client&, s3::Done<T>)> start,
                    std::function<void(std::expected<T, s3::S3Error>)> then) {
  if (bridge_.on_loop_thread()) {
    start(bridge_.client(), std::move(then));
    return;
  }
  then(bridge_.call<T>(std::move(start)));
}

void TempParts::grew(uint64_t size) {
  std::vector<std::pair<int, uint64_t>> now;
  bool create_now = false;
  {
    std::lock_guard lock(mu_);
    if (!failure_.empty() || abandoned_) return;
    while (requested_ + chunk_ <= size) {
      const int number = int(requested_ / chunk_) + 1;
      if (number >= 10'000) {  // the last part is finish()'s; publication falls back to a whole upload
        failure_ = "more than 10,000 parts";
        return;
      }
      (upload_id_.empty() ? waiting_ : now).emplace_back(number, requested_);
      requested_ += chunk_;
    }
    if (upload_id_.empty() && !waiting_.empty() && !creating_) {
      creating_ = true;
      create_now = true;
      ++in_flight_;
    }
    in_flight_ += int(now.size());
  }
  if (create_now) create();
  for (auto [number, at] : now) upload(number, at);
}

void TempParts::create() {
  run<std::string>(
      [key = key_](s3::Client& c, s3::Done<std::string> done) {
        return c.create_multipart_upload(key, s3::PutOptions{}, std::move(done));
      },
      [self = shared_from_this()](std::expected<std::string, s3::S3Error> r) {
        std::vector<std::pair<int, uint64_t>> now;
        {
          std::lock_guard lock(self->mu_);
          self->creating_ = false;
          --self->in_flight_;
          if (!r) {
            if (self->failure_.empty()) self->failure_ = "S3 CreateMultipartUpload " + self->key_ + ": " + r.error().str();
            self->waiting_.clear();
          } else {
            self->upload_id_ = std::move(*r);
            now.swap(self->waiting_);
            self->in_flight_ += int(now.size());
          }
          self->cv_.notify_all();
        }
        for (auto [number, at] : now) self->upload(number, at);
        self->settle();
      });
}

void TempParts::upload(int number, uint64_t at) {
  std::string id;
  {
    std::lock_guard lock(mu_);
    id = upload_id_;
  }
  run<std::string>(
      [key = key_, id, number, fd = fd_, at, len = chunk_](s3::Client& c, s3::Done<std::string> done) {
        return c.upload_part(key, id, number, proxy::RequestBody::from_fd(fd, at, len), std::move(done));
      },
      [self = shared_from_this(), number](std::expected<std::string, s3::S3Error> r) {
        {
          std::lock_guard lock(self->mu_);
          --self->in_flight_;
          if (!r && self->failure_.empty()) self->failure_ = "S3 UploadPart " + self->key_ + ": " + r.error().str();
          if (r) self->etags_[number] = std::move(*r);
          self->cv_.notify_all();
        }
        self->settle();
      });
}

void TempParts::settle() {
  std::string id;
  {
    std::lock_guard lock(mu_);
    if (!abandoned_ || in_flight_ > 0 || upload_id_.empty()) return;
    id = std::move(upload_id_);
    upload_id_.clear();
    ++in_flight_;
  }
  run<void>([key = key_, id](s3::Client& c, s3::Done<void> done) { return c.abort_multipart_upload(key, id, std::move(done)); },
            [self = shared_from_this()](std::expected<void, s3::S3Error>) {
              std::lock_guard lock(self->mu_);
              --self->in_flight_;
              self->cv_.notify_all();
            });
}

void TempParts::abandon() {
  {
    std::lock_guard lock(mu_);
    abandoned_ = true;
  }
  settle();
}

std::expected<std::optional<std::string>, std::string> TempParts::finish(uint64_t size) {
  std::string id, failure;
  std::vector<s3::Part> parts;
  uint64_t covered = 0;
  {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kIdleWait, [this] { return in_flight_ == 0; })) failure = "S3 parts still in flight";
    if (abandoned_ || (upload_id_.empty() && failure_.empty() && failure.empty())) return std::optional<std::string>();
    if (failure.empty()) failure = failure_;
    id = upload_id_;
    covered = requested_;
    for (const auto& [number, etag] : etags_) parts.push_back(s3::Part{.number = number, .etag = etag});
    abandoned_ = true;  // used up: a second prepare uploads the file whole
  }
  if (failure.empty() && size < covered) failure = "the staged file shrank below its uploaded parts";
  if (failure.empty() && parts.size() != covered / chunk_) failure = "a part of the upload is missing";
  if (failure.empty() && size > covered) {
    const int number = int(parts.size()) + 1;
    auto etag = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> done) {
      return c.upload_part(key_, id, number, proxy::RequestBody::from_fd(fd_, covered, size - covered), std::move(done));
    });
    if (etag) parts.push_back(s3::Part{.number = number, .etag = std::move(*etag)});
    else failure = "S3 UploadPart " + key_ + ": " + etag.error().str();
  }
  if (failure.empty()) {
    auto done = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> d) {
      return c.complete_multipart_upload(key_, id, parts, std::move(d));
    });
    if (done) {
      std::lock_guard lock(mu_);
      upload_id_.clear();
      return std::optional<std::string>(key_);
    }
    failure = "S3 CompleteMultipartUpload " + key_ + ": " + done.error().str();
  }
  settle();  // aborts the upload (abandoned_ is set)
  return std::unexpected(failure);
}

std::expected<void, std::string> S3TempWriter::append(const char* p, size_t n, oci::Hasher* hasher) {
  auto r = local_->append(p, n, hasher);
  if (r) parts_->grew(local_->size());
  return r;
}

}  // namespace wharf::cache
