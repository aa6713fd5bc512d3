#include "proxy/blob_fetch.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/upstream.hpp"
#include "src/util/number.hpp"

namespace wharf::proxy {

namespace {
constexpr size_t kMaxErrorBody = 64 * 1024;
}

BlobFetch::~BlobFetch() {
  writer_.reset();
  if (state_ != FetchState::Verified && !tmp_path_.empty() && store_) store_->discard(tmp_path_);
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

size_t FetchTable::queued() const {
  size_t n = 0;
  for (const auto& [name, f] : fetches_)
    if (f->state_ == FetchState::Queued) ++n;
  return n;
}

void FetchTable::note_size(const oci::Digest& d, uint64_t size) {
  if (sizes_.size() >= kMaxNotedSizes) sizes_.clear();  // crude but bounded; sizes are only a safeguard
  sizes_[d.str()] = size;
}

std::optional<std::chrono::seconds> FetchTable::known_bad(const oci::Digest& d) const {
  const auto it = bad_.find(d.str());
  if (it == bad_.end()) return std::nullopt;
  const auto now = std::chrono::steady_clock::now();
  if (it->second <= now) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::seconds>(it->second - now) + std::chrono::seconds(1);
}

std::shared_ptr<BlobFetch> FetchTable::get_or_start(Upstream& upstream, const std::string& remote_repo,
                                                    const std::string& cache_repo, const oci::Digest& d,
                                                    FetchPriority priority, std::optional<uint64_t> size,
                                                    Credential cred) {
  const std::string key = d.str();
  if (auto it = fetches_.find(key); it != fetches_.end()) {
    auto& f = it->second;
    if (f->state_ == FetchState::Queued && priority == FetchPriority::Client && f->priority_ == FetchPriority::Prefetch) {
      f->priority_ = FetchPriority::Client;  // its entry in the prefetch queue is skipped from now on
      queues_[f->upstream_->name()].client.emplace_back(next_seq_++, f);
    }
    return f;
  }
  auto f = std::make_shared<BlobFetch>();
  f->digest_ = d;
  f->cache_repo = cache_repo;
  f->remote_repo_ = remote_repo;
  f->cred_ = std::move(cred);
  f->upstream_ = &upstream;
  f->priority_ = priority;
  if (!size)
    if (auto it = sizes_.find(key); it != sizes_.end()) size = it->second;
  f->expected_ = size;
  Queues& q = queues_[upstream.name()];
  if (running_ < limits_.total && q.running < limits_.per_upstream && (priority == FetchPriority::Client || !backlogged())) {
    if (!launch(f)) return f;  // Failed, not registered: the caller sees it at once
    fetches_.emplace(key, f);
    return f;
  }
  fetches_.emplace(key, f);
  (priority == FetchPriority::Client ? q.client : q.prefetch).emplace_back(next_seq_++, f);
  return f;
}

bool FetchTable::launch(const std::shared_ptr<BlobFetch>& f) {
  const std::string key = f->digest_.str();
  f->hasher_.emplace(f->digest_.algo);
  auto writer = store_.begin_write(cache::StageArea::Temp, "fetch");
  if (!writer) {
    f->state_ = FetchState::Failed;
    f->error_status_ = 503;
    f->failure_ = "cannot stage the blob: " + writer.error().message;
    spdlog::error("cannot stage {}: {}", key, writer.error().message);
    return false;
  }
  f->store_ = &store_;
  f->writer_ = std::move(*writer);
  f->tmp_path_ = f->writer_->key().string();
  f->state_ = FetchState::Starting;
  f->slot_ = true;
  ++running_;
  ++queues_[f->upstream_->name()].running;
  std::weak_ptr<BlobFetch> weak = f;
  FetchCallbacks cb;
  cb.on_head = [weak](const UpstreamResponse& res) {
    auto f = weak.lock();
    if (!f) return;
    f->answered_ = true;
    if (res.status < 200 || res.status > 299) {
      f->error_status_ = res.status;
      f->error_type_ = std::string(res.header("content-type"));
      return;
    }
    const std::string_view cl = res.header("content-length");
    std::optional<uint64_t> length;
    if (!cl.empty() && !(length = util::parse_u64_trimmed(cl))) {
      f->abort_reason_ = "the upstream sent an invalid Content-Length";
      return;
    }
    if (length && f->expected_ && *length != *f->expected_) {
      f->abort_reason_ = "the upstream announced " + std::to_string(*length) + " bytes for a blob of " +
                         std::to_string(*f->expected_) + " bytes";
      return;
    }
    if (!length) length = f->expected_;
    if (length) {
      f->total_ = *length;
      f->state_ = FetchState::Streaming;
      f->notify_head();
    }
  };
  cb.on_data = [weak, this](const char* p, size_t n) {
    auto f = weak.lock();
    if (!f || !f->abort_reason_.empty()) return false;
    if (f->error_status_) {
      if (f->error_body_.size() < kMaxErrorBody) f->error_body_.append(p, std::min(n, kMaxErrorBody - f->error_body_.size()));
      return true;
    }
    if (f->state_ == FetchState::Streaming && n > f->total_ - f->written_) {
      f->abort_reason_ = "the upstream sent more than the " + std::to_string(f->total_) + " bytes announced";
      return false;
    }
    if (auto wrote = f->writer_->append(p, n, &*f->hasher_); !wrote) {
      f->abort_reason_ = "cannot stage the blob: " + wrote.error();
      return false;
    }
    f->written_ += n;
    bytes_fetched_ += n;
    if (f->state_ == FetchState::Streaming) f->notify_progress();
    if (!ready_.empty()) publish_ready();  // a long download must not hold a group back for long
    return true;
  };
  cb.on_done = [weak, this](bool ok, const std::string& error) {
    if (auto f = weak.lock()) finish(f, ok, error);
  };
  f->upstream_->fetch("GET", "/v2/" + f->remote_repo_ + "/blobs/" + key, f->remote_repo_, {}, std::move(cb), f->cred_);
  return true;
}

void FetchTable::release(BlobFetch& f) {
  if (!f.slot_) return;
  f.slot_ = false;
  --running_;
  auto it = queues_.find(f.upstream_->name());
  if (it != queues_.end() && it->second.running > 0) --it->second.running;
}

void FetchTable::start_queued() {
  while (running_ < limits_.total) {
    // The oldest waiting client request among upstreams with a free slot, else the oldest prefetch.
    std::deque<std::pair<uint64_t, std::shared_ptr<BlobFetch>>>* best = nullptr;
    for (bool clients : {true, false}) {
      if (!clients && backlogged()) break;  // prefetches wait until publishing catches up
      for (auto& [name, q] : queues_) {
        auto& dq = clients ? q.client : q.prefetch;
        // Drop entries that were started, failed or moved to the clients' queue.
        while (!dq.empty() && (dq.front().second->state_ != FetchState::Queued ||
                               (!clients && dq.front().second->priority_ == FetchPriority::Client)))
          dq.pop_front();
        if (dq.empty() || q.running >= limits_.per_upstream) continue;
        if (!best || dq.front().first < best->front().first) best = &dq;
      }
      if (best) break;
    }
    if (!best) return;
    std::shared_ptr<BlobFetch> f = std::move(best->front().second);
    best->pop_front();
    if (!launch(f)) {
      fetches_.erase(f->digest_.str());
      f->notify_fail(f->error_status_);
    }
  }
}

void FetchTable::finish(const std::shared_ptr<BlobFetch>& f, bool ok, const std::string& error) {
  const std::string key = f->digest_.str();
  release(*f);
  auto fail = [&](int status, const std::string& why) {
    spdlog::warn("upstream {}: download of {} from {} failed: {}", f->upstream_->name(), key, f->remote_repo_, why);
    f->state_ = FetchState::Failed;
    f->failure_ = why;
    fetches_.erase(key);
    f->notify_fail(status);
    start_queued();
    publish_ready();
  };
  if (f->error_status_) return fail(f->error_status_, "upstream answered " + std::to_string(f->error_status_));
  if (!f->abort_reason_.empty()) return fail(502, f->abort_reason_);
  if (!ok) return fail(502, error.empty() ? "transfer failed" : error);
  if (f->state_ == FetchState::Streaming && f->written_ != f->total_)
    return fail(502, "body cut short: " + std::to_string(f->written_) + " of " + std::to_string(f->total_) + " bytes");
  if (f->expected_ && f->written_ != *f->expected_)
    return fail(502, "the upstream sent " + std::to_string(f->written_) + " bytes for a blob of " +
                         std::to_string(*f->expected_) + " bytes");
  auto got = f->hasher_->finish();
  if (!(got == f->digest_)) {
    if (bad_.size() >= kMaxBadDigests) {
      const auto now = std::chrono::steady_clock::now();
      std::erase_if(bad_, [now](const auto& kv) { return kv.second <= now; });
      if (bad_.size() >= kMaxBadDigests)
        bad_.erase(std::min_element(bad_.begin(), bad_.end(),
                                    [](const auto& a, const auto& b) { return a.second < b.second; }));
    }
    bad_[key] = std::chrono::steady_clock::now() + kBadDigestMemory;
    return fail(502, "digest mismatch: the upstream's bytes hash to " + got.str());
  }
  bad_.erase(key);
  const bool head_pending = f->state_ != FetchState::Streaming;
  f->total_ = f->written_;
  f->state_ = FetchState::Verified;
  if (head_pending) f->notify_head();
  f->notify_progress();
  // Published with its group; the entry stays until then so requests keep sharing the temp file.
  if (ready_.empty()) ready_since_ = std::chrono::steady_clock::now();
  ready_.push_back(f);
  ++unpublished_;
  start_queued();
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
        unpublished_ -= std::min(unpublished_, group->size());
        publishing_ = false;
        start_queued();
        publish_ready();
      });
}

}  // namespace wharf::proxy
