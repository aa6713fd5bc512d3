#include "proxy/blob_fetch.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "proxy/upstream.hpp"

namespace wharf::proxy {

namespace {
constexpr size_t kMaxErrorBody = 64 * 1024;
}

BlobFetch::~BlobFetch() {
  if (fd_ >= 0) ::close(fd_);
  if (state_ != FetchState::Verified && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

uint64_t BlobFetch::available() const {
  if (state_ == FetchState::Verified) return written_;
  if (state_ != FetchState::Streaming) return 0;
  return written_ >= total_ ? (total_ > 0 ? total_ - 1 : 0) : written_;
}

uint64_t BlobFetch::add_listener(FetchListener l) {
  uint64_t id = next_listener_++;
  listeners_.emplace(id, std::move(l));
  return id;
}

void BlobFetch::remove_listener(uint64_t id) { listeners_.erase(id); }

void BlobFetch::notify_head() {
  auto copy = listeners_;
  for (auto& [id, l] : copy)
    if (listeners_.count(id) && l.on_head) l.on_head();
}

void BlobFetch::notify_progress() {
  auto copy = listeners_;
  for (auto& [id, l] : copy)
    if (listeners_.count(id) && l.on_progress) l.on_progress();
}

void BlobFetch::notify_fail(int status) {
  auto copy = listeners_;
  listeners_.clear();
  for (auto& [id, l] : copy)
    if (l.on_fail) l.on_fail(status, error_body_, error_type_);
}

std::shared_ptr<BlobFetch> FetchTable::get_or_start(Upstream& upstream, const std::string& remote_repo,
                                                    const std::string& cache_repo, const oci::Digest& d) {
  const std::string key = d.str();
  if (auto it = fetches_.find(key); it != fetches_.end()) return it->second;
  auto f = std::make_shared<BlobFetch>();
  f->digest_ = d;
  f->cache_repo = cache_repo;
  f->hasher_.emplace(d.algo);
  std::string tmpl = (store_.tmp_dir() / "fetch-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  f->fd_ = mkostemp(buf.data(), O_CLOEXEC);
  if (f->fd_ < 0) {
    f->state_ = FetchState::Failed;
    f->error_status_ = 503;
    spdlog::error("cannot create a temp file for {}: {}", key, std::strerror(errno));
    return f;  // not registered: the caller sees Failed at once
  }
  f->tmp_path_ = buf.data();
  fetches_.emplace(key, f);
  std::weak_ptr<BlobFetch> weak = f;
  FetchCallbacks cb;
  cb.on_head = [weak](const UpstreamResponse& res) {
    auto f = weak.lock();
    if (!f) return;
    if (res.status < 200 || res.status > 299) {
      f->error_status_ = res.status;
      f->error_type_ = std::string(res.header("content-type"));
      return;
    }
    auto cl = res.header("content-length");
    uint64_t n = 0;
    if (!cl.empty() && std::from_chars(cl.data(), cl.data() + cl.size(), n).ec == std::errc()) {
      f->total_ = n;
      f->state_ = FetchState::Streaming;
      f->notify_head();
    }
  };
  cb.on_data = [weak, this](const char* p, size_t n) {
    auto f = weak.lock();
    if (!f) return false;
    if (f->error_status_) {
      if (f->error_body_.size() < kMaxErrorBody) f->error_body_.append(p, std::min(n, kMaxErrorBody - f->error_body_.size()));
      return true;
    }
    if (f->state_ == FetchState::Streaming && f->written_ + n > f->total_) return false;  // longer than announced
    size_t off = 0;
    while (off < n) {
      ssize_t w = ::pwrite(f->fd_, p + off, n - off, off_t(f->written_ + off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      off += size_t(w);
    }
    f->hasher_->update(p, n);
    f->written_ += n;
    bytes_fetched_ += n;
    if (f->state_ == FetchState::Streaming) f->notify_progress();
    if (!ready_.empty()) publish_ready();  // a long download must not hold a group back for long
    return true;
  };
  cb.on_done = [weak, this](bool ok, const std::string& error) {
    if (auto f = weak.lock()) finish(f, ok, error);
  };
  f->upstream_id_ = upstream.fetch("GET", "/v2/" + remote_repo + "/blobs/" + key, remote_repo, {}, std::move(cb));
  return f;
}

void FetchTable::finish(const std::shared_ptr<BlobFetch>& f, bool ok, const std::string& error) {
  const std::string key = f->digest_.str();
  auto fail = [&](int status, const std::string& why) {
    spdlog::warn("upstream fetch of {} failed: {}", key, why);
    f->state_ = FetchState::Failed;
    fetches_.erase(key);
    f->notify_fail(status);
    publish_ready();
  };
  if (f->error_status_) return fail(f->error_status_, "upstream answered " + std::to_string(f->error_status_));
  if (!ok) return fail(502, error.empty() ? "transfer failed" : error);
  if (f->state_ == FetchState::Streaming && f->written_ != f->total_)
    return fail(502, "body cut short: " + std::to_string(f->written_) + " of " + std::to_string(f->total_) + " bytes");
  auto got = f->hasher_->finish();
  if (!(got == f->digest_)) return fail(502, "digest mismatch: upstream sent " + got.str());
  const bool head_pending = f->state_ != FetchState::Streaming;
  f->total_ = f->written_;
  f->state_ = FetchState::Verified;
  if (head_pending) f->notify_head();
  f->notify_progress();
  // Published with its group; the entry stays until then so requests keep sharing the temp file.
  if (ready_.empty()) ready_since_ = std::chrono::steady_clock::now();
  ready_.push_back(f);
  publish_ready();
}

bool FetchTable::streaming() const {
  for (const auto& [key, f] : fetches_)
    if (f->state_ == FetchState::Streaming) return true;  // bytes flowing: on_data checks the delay
  return false;
}

void FetchTable::publish_ready(bool force) {
  if (ready_.empty() || (publishing_ && !force)) return;
  if (!force && ready_.size() < kMaxGroup && std::chrono::steady_clock::now() - ready_since_ < kPublishDelay &&
      streaming())
    return;
  auto group = std::make_shared<std::vector<std::shared_ptr<BlobFetch>>>(std::move(ready_));
  ready_.clear();
  auto items = std::make_shared<std::vector<VerifiedBlob>>();
  for (const auto& f : *group) items->push_back({f->tmp_path_, f->digest_, f->written_, f->cache_repo});
  auto errors = std::make_shared<std::vector<std::string>>();
  publishing_ = true;
  submit_(
      [this, items, errors] { *errors = publish_(*items); },  // fsyncs, renames, one index transaction
      [this, group, errors] {
        for (size_t i = 0; i < group->size(); ++i) {
          auto& f = (*group)[i];
          const std::string key = f->digest_.str();
          if (i < errors->size() && !(*errors)[i].empty()) spdlog::error("caching {} failed: {}", key, (*errors)[i]);
          else f->tmp_path_.clear();  // renamed into the store: nothing to clean up
          auto it = fetches_.find(key);
          if (it != fetches_.end() && it->second == f) fetches_.erase(it);
        }
        publishing_ = false;
        publish_ready();
      });
}

}  // namespace wharf::proxy
