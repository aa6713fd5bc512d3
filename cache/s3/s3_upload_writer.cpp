// The writer of S3 upload sessions: parts in flight while the next one fills, the tail saved at close
// (see s3_writer.hpp).
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>

#include "cache/s3/s3_writer.hpp"

namespace wharf::cache {
namespace {

std::string failure(std::string_view what, const std::string& key, const s3::S3Error& e) {
  return std::string("S3 ").append(what).append(" ").append(key).append(": ").append(e.str());
}

}  // namespace

S3UploadWriter::S3UploadWriter(const S3Uploads& uploads, std::string id, UploadState st)
    : uploads_(uploads), id_(std::move(id)), key_(s3_upload_key(id_)), st_(std::move(st)), saved_parts_(st_.parts.size()), saved_tail_(st_.tail.size()), start_(st_.size()) {
  unsigned char random[8];
  RAND_bytes(random, sizeof random);
  for (unsigned char b : random) token_.append(1, "0123456789abcdef"[b >> 4]).append(1, "0123456789abcdef"[b & 15]);
}

struct S3UploadWriter::InFlight {
  int number = 0;
  std::optional<uint64_t> claim;  // the state this part claimed the move from before it was sent
  std::string bytes;  // kept until the part is confirmed
  std::mutex mu;
  std::condition_variable cv;
  std::optional<std::expected<std::string, s3::S3Error>> result;
};

S3UploadWriter::~S3UploadWriter() {
  if (!dirty_) return;
  if (auto r = close(); !r) spdlog::warn("upload {}: bytes after offset {} not kept: {}", id_, st_.parts_size(), r.error());
}

uint64_t S3UploadWriter::size() const {
  uint64_t n = st_.size();
  for (const auto& f : inflight_) n += f->bytes.size();
  return n;
}

void S3UploadWriter::start_part() {
  const uint64_t chunk = uploads_.chunk_size();
  auto f = std::make_shared<InFlight>();
  f->number = int(st_.parts.size() + inflight_.size()) + 1;
  f->bytes = st_.tail.substr(0, chunk);
  st_.tail.erase(0, chunk);
  inflight_.push_back(f);
  auto done = [f](std::expected<std::string, s3::S3Error> r) {
    std::lock_guard lock(f->mu);
    f->result = std::move(r);
    f->cv.notify_all();
  };
  // The part moves the session on from the state before it (this writer's start for its first part); the
  // claim goes with it on the loop, so the writer does not wait for it.
  const uint64_t from = std::max(start_, uint64_t(f->number - 1) * chunk);
  if (!claims_.empty() && from <= claims_.back()) return uploads_.start_part(id_, st_, f->number, f->bytes, std::move(done));
  claims_.push_back(from);
  f->claim = from;
  uploads_.start_claimed_part(id_, st_, from, token_, f->number, f->bytes, std::move(done));
}

namespace {

// The result of a part in flight, once it has one (the client's timeouts and retries bound the call;
// the wait only bounds a loop that stopped).
template <typename F>
std::optional<std::expected<std::string, s3::S3Error>> wait_for_part(F& f) {
  std::unique_lock lock(f.mu);
  f.cv.wait_for(lock, std::chrono::minutes(15), [&] { return f.result.has_value(); });
  return std::move(f.result);
}

}  // namespace

std::expected<void, std::string> S3UploadWriter::settle(size_t keep) {
  std::string error;
  while (inflight_.size() > keep || (!error.empty() && !inflight_.empty())) {
    auto f = std::move(inflight_.front());
    inflight_.pop_front();
    auto result = wait_for_part(*f);
    if (error.empty() && result && *result) {
      st_.parts.push_back(s3::PartEntry{.number = f->number, .etag = std::move(**result), .size = f->bytes.size()});
      continue;
    }
    if (error.empty()) {
      if (f->claim && result && !*result && result->error().status == 412) refused_ = *f->claim;
      const std::string key = UploadKeys::data(id_);
      error = result ? failure("UploadPart", key, result->error()) : "S3 UploadPart " + key + " did not complete";
      // This part and every later one go back in front of the tail, in order (re-sent under the same numbers).
      std::string back = std::move(f->bytes);
      for (const auto& later : inflight_) back += later->bytes;
      st_.tail.insert(0, back);
    }
  }
  if (!error.empty()) return std::unexpected(error);
  return {};
}

std::expected<void, std::string> S3UploadWriter::claim(uint64_t from) {
  if (!claims_.empty() && from <= claims_.back()) return {};  // held (a part sent again after a failure)
  switch (uploads_.claim(id_, from, token_)) {
    case S3Uploads::Claim::Ok:
      claims_.push_back(from);
      return {};
    case S3Uploads::Claim::Failed:
      return std::unexpected("S3 upload " + id_ + ": cannot claim the move on from offset " + std::to_string(from));
    case S3Uploads::Claim::Taken:
      break;
  }
  return conflict(from);
}

std::expected<void, std::string> S3UploadWriter::after_failure(std::expected<void, std::string> failed) {
  if (!refused_) return failed;
  const uint64_t from = *refused_;
  refused_.reset();
  std::erase(claims_, from);  // not this writer's (yet)
  switch (uploads_.claim(id_, from, token_)) {
    case S3Uploads::Claim::Ok:  // ours after all, or a stale one taken over: the bytes go up again
      claims_.push_back(from);
      std::sort(claims_.begin(), claims_.end());
      return {};
    case S3Uploads::Claim::Failed:
      return failed;
    case S3Uploads::Claim::Taken:
      break;
  }
  return conflict(from);
}

std::expected<void, std::string> S3UploadWriter::conflict(uint64_t from) {
  // Another front continued from this state first: stop writing, and learn what the bucket holds now.
  (void)settle(0);
  conflicted_ = true;
  dirty_ = false;
  uploads_.forget(id_);
  if (auto now = uploads_.load(id_)) st_ = std::move(*now);
  else st_.tail.clear();
  return std::unexpected("upload " + id_ + " was continued by another request from offset " + std::to_string(from));
}

std::expected<void, std::string> S3UploadWriter::append(const char* p, size_t n, oci::Hasher* hasher) {
  if (n == 0) return {};
  if (st_.completed) return std::unexpected("upload " + id_ + " was already completed; no more data can be added");
  if (conflicted_) return std::unexpected("upload " + id_ + " was continued by another request");
  const uint64_t before = size();
  if (hasher) hasher->update(p, n);
  st_.tail.append(p, n);
  dirty_ = true;
  while (st_.tail.size() >= uploads_.chunk_size()) {
    if (auto r = settle(kInFlight - 1); !r) {
      r = after_failure(std::move(r));
      if (conflicted_) return r;
      if (!r) {
        // Keep what is durable or was staged before this call; the rest of these bytes are not kept.
        const uint64_t parts = st_.parts_size();
        st_.tail.resize(size_t(before > parts ? std::min<uint64_t>(before - parts, st_.tail.size()) : 0));
        return r;
      }
      continue;  // the claim was ours: the parts' bytes are back in the tail
    }
    start_part();
  }
  return {};
}

std::expected<void, std::string> S3UploadWriter::close() {
  if (!dirty_) return {};
  auto r = settle(0);
  if (!r) r = after_failure(std::move(r));
  while (r && st_.tail.size() >= uploads_.chunk_size()) {  // a failed part's bytes came back: retry them
    start_part();
    r = settle(0);
    if (!r) r = after_failure(std::move(r));
  }
  if (conflicted_) return r;
  // A new tail moves the session on from the parts (without one, the parts already did: nothing to claim).
  if (r && !st_.tail.empty()) r = claim(std::max(start_, st_.parts_size()));
  if (conflicted_) return r;
  if (r) r = uploads_.save_tail(id_, st_, saved_parts_);
  if (!r) {
    uploads_.forget(id_);
    // What is durable: the parts, and the saved tail unless a part went up since (then it is stale). With
    // no new part the buffer starts with the saved tail (it only grew).
    st_.tail.resize(saved_parts_ == st_.parts.size() ? std::min(saved_tail_, st_.tail.size()) : 0);
    saved_parts_ = st_.parts.size();
    saved_tail_ = st_.tail.size();
    dirty_ = false;
    // Claims on states the session did not move on from (or never reached) would hold up the next writer.
    while (!claims_.empty() && claims_.back() >= st_.size()) {
      uploads_.unclaim(id_, claims_.back());
      claims_.pop_back();
    }
    return r;
  }
  saved_parts_ = st_.parts.size();
  saved_tail_ = st_.tail.size();
  dirty_ = false;
  uploads_.remember(id_, st_);
  return {};
}

}  // namespace wharf::cache
