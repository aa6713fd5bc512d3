// Upload sessions of the S3 store kept in the bucket (see s3_writer.hpp).
#include "cache/s3/s3_writer.hpp"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <map>

#include "cache/s3/s3_store.hpp"
#include "src/util/number.hpp"

namespace wharf::cache {
namespace {

constexpr std::string_view kKeyScheme = "s3-upload:";
constexpr uint64_t kMaxParts = 10'000;

std::string failure(std::string_view what, const std::string& key, const s3::S3Error& e) {
  return std::string("S3 ").append(what).append(" ").append(key).append(": ").append(e.str());
}

StoreError failed(std::string message) { return StoreError{StoreError::Kind::Failed, std::move(message)}; }

// The body of a claim: "<unix seconds> <token>".
std::string claim_body(const std::string& token) { return std::to_string(::time(nullptr)).append(" ").append(token); }

}  // namespace

std::string UploadKeys::dir(std::string_view id) { return std::string(kPrefix).append(id).append("/"); }

std::string UploadKeys::data(std::string_view id) { return dir(id).append("data"); }

std::string UploadKeys::tail(std::string_view id, size_t parts) { return dir(id).append("tail-").append(std::to_string(parts)); }

std::string UploadKeys::claim(std::string_view id, uint64_t size) {
  return dir(id).append("claim-").append(std::to_string(size));
}

std::optional<std::string> UploadKeys::id_of(std::string_view key) {
  if (!key.starts_with(kPrefix)) return std::nullopt;
  key.remove_prefix(kPrefix.size());
  const size_t slash = key.find('/');
  if (slash == 0 || slash == std::string_view::npos) return std::nullopt;
  return std::string(key.substr(0, slash));
}

StagedKey s3_upload_key(std::string_view id) { return StagedKey(std::string(kKeyScheme).append(id)); }

std::optional<std::string> s3_upload_id(const StagedKey& key) {
  const std::string& s = key.native();
  if (!s.starts_with(kKeyScheme) || s.size() == kKeyScheme.size()) return std::nullopt;
  return s.substr(kKeyScheme.size());
}

std::vector<s3::ByteRange> plan_copy_parts(uint64_t size, uint64_t part_size) {
  std::vector<s3::ByteRange> out;
  if (size == 0) return out;
  const uint64_t part = std::max({part_size, uint64_t(1), (size + kMaxParts - 1) / kMaxParts});
  for (uint64_t at = 0; at < size; at += part) out.push_back(s3::ByteRange{at, std::min(size, at + part) - 1});
  return out;
}

uint64_t UploadState::parts_size() const {
  uint64_t n = 0;
  for (const auto& p : parts) n += p.size;
  return n;
}

uint64_t UploadState::size() const { return completed ? *completed : parts_size() + tail.size(); }

// ---- S3Uploads ----

std::expected<std::optional<std::pair<std::string, std::string>>, std::string> S3Uploads::get(const std::string& key,
                                                                                              uint64_t max) const {
  auto bytes = std::make_shared<std::string>();
  auto etag = std::make_shared<std::string>();
  auto too_big = std::make_shared<bool>(false);
  auto r = bridge_.call<void>([key, bytes, etag, too_big, max](s3::Client& c, s3::Done<void> done) {
    s3::GetHandlers h;
    h.on_head = [etag](const s3::ObjectInfo& info) { *etag = info.etag; };
    h.on_data = [bytes, too_big, max](const char* p, size_t n) {
      if (bytes->size() + n > max) {
        *too_big = true;
        return false;
      }
      bytes->append(p, n);
      return true;
    };
    h.on_done = std::move(done);
    return c.get_object(key, std::nullopt, std::move(h));
  });
  using Result = std::optional<std::pair<std::string, std::string>>;
  if (*too_big) return std::unexpected("S3 object " + key + " is larger than " + std::to_string(max) + " bytes");
  if (!r && r.error().status == 404) return Result();
  if (!r) return std::unexpected(failure("GetObject", key, r.error()));
  return Result(std::pair{std::move(*bytes), std::move(*etag)});
}

void S3Uploads::remember(std::string_view id, const UploadState& st) const {
  constexpr size_t kRemember = 64;
  constexpr uint64_t kRememberBytes = 256ull << 20;
  std::lock_guard lock(mu_);
  if (auto it = remembered_.find(id); it != remembered_.end()) {
    remembered_bytes_ -= it->second.tail.size();
    remembered_.erase(it);
  }
  if (st.completed || remembered_.size() >= kRemember || remembered_bytes_ + st.tail.size() > kRememberBytes) return;
  remembered_bytes_ += st.tail.size();
  remembered_.emplace(std::string(id), st);
}

void S3Uploads::forget(std::string_view id) const {
  std::lock_guard lock(mu_);
  if (auto it = remembered_.find(id); it != remembered_.end()) {
    remembered_bytes_ -= it->second.tail.size();
    remembered_.erase(it);
  }
}

std::optional<UploadState> S3Uploads::recall(std::string_view id) const {
  std::optional<UploadState> st;
  {
    std::lock_guard lock(mu_);
    if (auto it = remembered_.find(id); it != remembered_.end()) st = it->second;
  }
  if (!st) return std::nullopt;
  // Another process may have continued the session: its parts and tail must be the ones remembered.
  auto parts = list_parts(UploadKeys::data(id), st->upload_id);
  if (!parts || parts->size() != st->parts.size()) return std::nullopt;
  for (size_t i = 0; i < parts->size(); ++i) {
    if ((*parts)[i].etag != st->parts[i].etag) return std::nullopt;
  }
  const std::string tail = UploadKeys::tail(id, st->parts.size());
  auto head = bridge_.call<s3::ObjectInfo>([&](s3::Client& c, s3::Done<s3::ObjectInfo> done) {
    return c.head_object(tail, std::move(done));
  });
  if (st->tail.empty()) {
    if (!head && head.error().status == 404) return st;
    return std::nullopt;
  }
  if (head && head->size == st->tail.size() && !st->tail_etag.empty() && head->etag == st->tail_etag) return st;
  return std::nullopt;
}

std::expected<std::vector<s3::PartEntry>, StoreError> S3Uploads::list_parts(const std::string& key,
                                                                            const std::string& upload_id) const {
  std::vector<s3::PartEntry> parts;
  int marker = 0;
  for (int page = 0; page < 10'000; ++page) {
    auto r = bridge_.call<s3::PartsPage>([&](s3::Client& c, s3::Done<s3::PartsPage> done) {
      return c.list_parts(key, upload_id, marker, std::move(done));
    });
    if (!r && r.error().status == 404) return std::unexpected(StoreError{StoreError::Kind::Missing, "upload data missing"});
    if (!r) return std::unexpected(failed(failure("ListParts", key, r.error())));
    for (auto& p : r->parts) parts.push_back(std::move(p));
    if (!r->truncated) break;
    marker = r->next_part_number_marker;
  }
  std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.number < b.number; });
  // Parts after a gap were sent while an earlier one failed: their bytes were never acknowledged (the
  // request failed), and they are sent again under the same numbers.
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].number != int(i) + 1) {
      parts.resize(i);
      break;
    }
  }
  // A short last part is the tail sent up by a completion that failed: the tail object still holds those
  // bytes, and the next part of that number replaces it.
  if (!parts.empty() && parts.back().size < chunk_) parts.pop_back();
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].number != int(i) + 1 || parts[i].size != chunk_)
      return std::unexpected(failed("S3 upload " + key + " has an unexpected part " + std::to_string(parts[i].number) +
                                    " of " + std::to_string(parts[i].size) + " bytes (storage.s3.chunksize changed?)"));
  }
  return parts;
}

std::expected<UploadState, StoreError> S3Uploads::create(std::string_view id) const {
  const std::string key = UploadKeys::data(id);
  auto existing = bridge_.call<s3::UploadsPage>([&](s3::Client& c, s3::Done<s3::UploadsPage> done) {
    return c.list_multipart_uploads(UploadKeys::dir(id), "", "", std::move(done));
  });
  if (!existing) return std::unexpected(failed(failure("ListMultipartUploads", UploadKeys::dir(id), existing.error())));
  if (!existing->uploads.empty()) return std::unexpected(failed("upload session " + std::string(id) + " exists"));
  auto upload = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> done) {
    return c.create_multipart_upload(key, s3::PutOptions{}, std::move(done));
  });
  if (!upload) return std::unexpected(failed(failure("CreateMultipartUpload", key, upload.error())));
  UploadState st;
  st.upload_id = std::move(*upload);
  remember(id, st);
  return st;
}

std::expected<UploadState, StoreError> S3Uploads::load(std::string_view id) const {
  if (auto st = recall(id)) return std::move(*st);
  const std::string key = UploadKeys::data(id);
  auto uploads = bridge_.call<s3::UploadsPage>([&](s3::Client& c, s3::Done<s3::UploadsPage> done) {
    return c.list_multipart_uploads(key, "", "", std::move(done));
  });
  if (!uploads) return std::unexpected(failed(failure("ListMultipartUploads", key, uploads.error())));
  UploadState st;
  for (const auto& u : uploads->uploads) {
    if (u.key == key) {
      st.upload_id = u.upload_id;
      break;
    }
  }
  if (st.upload_id.empty()) {  // completed (hash_staged or prepare ran), or gone
    auto head = bridge_.call<s3::ObjectInfo>([&](s3::Client& c, s3::Done<s3::ObjectInfo> done) {
      return c.head_object(key, std::move(done));
    });
    if (!head && head.error().status == 404) return std::unexpected(StoreError{StoreError::Kind::Missing, "upload data missing"});
    if (!head) return std::unexpected(failed(failure("HeadObject", key, head.error())));
    st.completed = head->size;
    return st;
  }
  auto parts = list_parts(key, st.upload_id);
  if (!parts) return std::unexpected(parts.error());
  st.parts = std::move(*parts);
  auto tail = get(UploadKeys::tail(id, st.parts.size()), chunk_);
  if (!tail) return std::unexpected(failed(tail.error()));
  if (*tail) {
    st.tail = std::move((*tail)->first);
    st.tail_etag = std::move((*tail)->second);
  }
  remember(id, st);
  return st;
}

std::expected<void, std::string> S3Uploads::add_part(std::string_view id, UploadState& st, std::string bytes) const {
  const std::string key = UploadKeys::data(id);
  const int number = int(st.parts.size()) + 1;
  const uint64_t size = bytes.size();
  auto etag = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> done) {
    return c.upload_part(key, st.upload_id, number, proxy::RequestBody::from_string(std::move(bytes)), std::move(done));
  });
  if (!etag) return std::unexpected(failure("UploadPart", key, etag.error()));
  st.parts.push_back(s3::PartEntry{.number = number, .etag = std::move(*etag), .size = size});
  return {};
}

void S3Uploads::start_part(std::string_view id, const UploadState& st, int number, std::string bytes,
                           s3::Done<std::string> done) const {
  bridge_.post<std::string>(
      [key = UploadKeys::data(id), upload_id = st.upload_id, number, bytes = std::move(bytes)](
          s3::Client& c, s3::Done<std::string> d) {
        return c.upload_part(key, upload_id, number, proxy::RequestBody::from_string(bytes), std::move(d));
      },
      std::move(done));
}

void S3Uploads::start_claimed_part(std::string_view id, const UploadState& st, uint64_t from, const std::string& token,
                                   int number, std::string bytes, s3::Done<std::string> done) const {
  bridge_.post<std::string>(
      [claim = UploadKeys::claim(id, from), body = claim_body(token), key = UploadKeys::data(id), upload_id = st.upload_id, number,
       bytes = std::make_shared<const std::string>(std::move(bytes))](s3::Client& c, s3::Done<std::string> d) {
        s3::PutOptions once;
        once.if_none_match = true;
        s3::Done<std::string> then = [&c, key, upload_id, number, bytes, d](std::expected<std::string, s3::S3Error> r) {
          if (!r) return d(std::unexpected(std::move(r.error())));
          c.upload_part(key, upload_id, number, proxy::RequestBody::from_string(*bytes), d);
        };
        return c.put_object(claim, proxy::RequestBody::from_string(body), once, std::move(then));
      },
      std::move(done));
}

std::expected<void, std::string> S3Uploads::save_tail(std::string_view id, UploadState& st, size_t old_parts) const {
  st.tail_etag.clear();
  if (!st.tail.empty()) {
    const std::string key = UploadKeys::tail(id, st.parts.size());
    auto r = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> done) {
      return c.put_object(key, proxy::RequestBody::from_string(st.tail), s3::PutOptions{}, std::move(done));
    });
    if (!r) return std::unexpected(failure("PutObject", key, r.error()));
    st.tail_etag = std::move(*r);
  }
  if (old_parts != st.parts.size() || st.tail.empty()) {  // stale now: its bytes are in a part
    const std::string old = UploadKeys::tail(id, old_parts);
    (void)bridge_.call<void>([&](s3::Client& c, s3::Done<void> done) { return c.delete_object(old, std::move(done)); });
  }
  return {};
}

std::expected<void, std::string> S3Uploads::complete(std::string_view id, UploadState& st) const {
  if (st.completed) return {};
  const std::string key = UploadKeys::data(id);
  const uint64_t total = st.size();
  // Completing moves the session on too: not while another front continues it from this state.
  unsigned char random[8];
  RAND_bytes(random, sizeof random);
  std::string token;
  for (unsigned char b : random) token.append(1, "0123456789abcdef"[b >> 4]).append(1, "0123456789abcdef"[b & 15]);
  switch (claim(id, total, token)) {
    case Claim::Ok: break;
    case Claim::Taken: return std::unexpected("upload " + std::string(id) + " is being continued by another request");
    case Claim::Failed: return std::unexpected("S3 upload " + std::string(id) + ": cannot claim its completion");
  }
  auto failed_with = [&](std::string message) -> std::expected<void, std::string> {
    unclaim(id, total);  // a retried PUT may claim it again
    return std::unexpected(std::move(message));
  };
  const size_t tail_parts = st.parts.size();
  if (st.parts.empty()) {  // under one part: one PUT, and the multipart upload goes
    auto put = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> done) {
      return c.put_object(key, proxy::RequestBody::from_string(st.tail), s3::PutOptions{}, std::move(done));
    });
    if (!put) return failed_with(failure("PutObject", key, put.error()));
    (void)bridge_.call<void>([&](s3::Client& c, s3::Done<void> done) {
      return c.abort_multipart_upload(key, st.upload_id, std::move(done));
    });
  } else {
    if (!st.tail.empty()) {
      if (auto r = add_part(id, st, st.tail); !r) return failed_with(r.error());
    }
    std::vector<s3::Part> parts;
    for (const auto& p : st.parts) parts.push_back(s3::Part{.number = p.number, .etag = p.etag});
    auto done = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> d) {
      return c.complete_multipart_upload(key, st.upload_id, parts, std::move(d));
    });
    if (!done) {
      if (!st.tail.empty()) st.parts.pop_back();  // the tail stays the tail (its part is overwritten next time)
      return failed_with(failure("CompleteMultipartUpload", key, done.error()));
    }
  }
  forget(id);
  const std::string tail = UploadKeys::tail(id, tail_parts);
  (void)bridge_.call<void>([&](s3::Client& c, s3::Done<void> d) { return c.delete_object(tail, std::move(d)); });
  drop_claims(id);
  st = UploadState{.upload_id = "", .parts = {}, .tail = {}, .tail_etag = {}, .completed = total};
  return {};
}

S3Uploads::Claim S3Uploads::claim(std::string_view id, uint64_t size, const std::string& token) const {
  // A writer claims right before its part or tail PUT, so a claim this old whose state never moved on
  // belongs to a writer that died in between (or hangs); the clocks of the fronts are assumed in sync.
  constexpr int64_t kClaimStale = 120;
  const std::string key = UploadKeys::claim(id, size);
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::string now = claim_body(token);
    s3::PutOptions once;
    once.if_none_match = true;
    auto r = bridge_.call<std::string>([&](s3::Client& c, s3::Done<std::string> done) {
      return c.put_object(key, proxy::RequestBody::from_string(now), once, std::move(done));
    });
    if (r) return Claim::Ok;
    if (r.error().status != 412) {
      spdlog::warn("{}", failure("PutObject", key, r.error()));
      return Claim::Failed;
    }
    if (attempt > 0) return Claim::Taken;
    auto held = get(key, 64);
    if (!held) return Claim::Failed;
    if (!*held) continue;  // removed meanwhile: try again
    const std::string& body = (*held)->first;
    const size_t space = body.find(' ');
    if (space != std::string::npos && body.substr(space + 1) == token) return Claim::Ok;  // ours (a retried PUT)
    auto since = util::parse_u64(std::string_view(body).substr(0, space), uint64_t(1) << 40);
    if (!since || int64_t(*since) + kClaimStale > ::time(nullptr)) return Claim::Taken;
    forget(id);
    auto st = load(id);
    if (!st || st->size() != size) return Claim::Taken;  // it moved on: the claim was used
    spdlog::warn("upload {}: taking over the claim on offset {} left {} s ago by a writer that did not finish", id,
                 size, ::time(nullptr) - int64_t(*since));
    unclaim(id, size);
  }
  return Claim::Taken;
}

void S3Uploads::drop_claims(std::string_view id) const {
  s3::ListRequest req;
  req.prefix = UploadKeys::dir(id).append("claim-");
  auto listed = bridge_.call<s3::ListPage>([&](s3::Client& c, s3::Done<s3::ListPage> done) {
    return c.list_objects(req, std::move(done));
  });
  if (!listed) return;  // left for the purge of the session's objects
  std::vector<std::function<uint64_t(s3::Client&, s3::Done<void>)>> deletes;
  for (const auto& o : listed->objects)
    deletes.push_back([key = o.key](s3::Client& c, s3::Done<void> done) { return c.delete_object(key, std::move(done)); });
  if (!deletes.empty()) (void)bridge_.call_all<void>(std::move(deletes));
}

void S3Uploads::unclaim(std::string_view id, uint64_t size) const {
  const std::string key = UploadKeys::claim(id, size);
  (void)bridge_.call<void>([&](s3::Client& c, s3::Done<void> done) { return c.delete_object(key, std::move(done)); });
}

void S3Uploads::remove(std::string_view id) const {
  forget(id);
  const std::string dir = UploadKeys::dir(id);
  auto uploads = bridge_.call<s3::UploadsPage>([&](s3::Client& c, s3::Done<s3::UploadsPage> done) {
    return c.list_multipart_uploads(dir, "", "", std::move(done));
  });
  if (uploads) {
    for (const auto& u : uploads->uploads) {
      auto a = bridge_.call<void>([&](s3::Client& c, s3::Done<void> done) {
        return c.abort_multipart_upload(u.key, u.upload_id, std::move(done));
      });
      if (!a && a.error().status != 404) spdlog::warn("{}", failure("AbortMultipartUpload", u.key, a.error()));
    }
  }
  s3::ListRequest req;
  req.prefix = dir;
  auto objects = bridge_.call<s3::ListPage>([&](s3::Client& c, s3::Done<s3::ListPage> done) {
    return c.list_objects(req, std::move(done));
  });
  if (!objects) return spdlog::warn("{}", failure("ListObjectsV2", dir, objects.error()));
  for (const auto& o : objects->objects) {
    (void)bridge_.call<void>([&](s3::Client& c, s3::Done<void> done) { return c.delete_object(o.key, std::move(done)); });
  }
}

std::vector<StagedItem> S3Uploads::list() const {
  std::map<std::string, int64_t> seen;  // id -> last write
  auto note = [&](std::string_view key, std::string_view time) {
    if (auto id = UploadKeys::id_of(key)) seen[*id] = std::max(seen[*id], S3BlobStore::parse_time(time));
  };
  std::string key_marker, id_marker;
  for (int page = 0; page < 10'000; ++page) {
    auto r = bridge_.call<s3::UploadsPage>([&](s3::Client& c, s3::Done<s3::UploadsPage> done) {
      return c.list_multipart_uploads(std::string(UploadKeys::kPrefix), key_marker, id_marker, std::move(done));
    });
    if (!r) break;
    for (const auto& u : r->uploads) note(u.key, u.initiated);
    if (!r->truncated) break;
    key_marker = r->next_key_marker;
    id_marker = r->next_upload_id_marker;
  }
  std::string token;
  for (int page = 0; page < 100'000; ++page) {
    s3::ListRequest req;
    req.prefix = std::string(UploadKeys::kPrefix);
    req.continuation_token = token;
    auto r = bridge_.call<s3::ListPage>([&](s3::Client& c, s3::Done<s3::ListPage> done) {
      return c.list_objects(req, std::move(done));
    });
    if (!r) break;
    for (const auto& o : r->objects) note(o.key, o.last_modified);
    if (!r->truncated || r->next_token.empty()) break;
    token = r->next_token;
  }
  std::vector<StagedItem> out;
  for (auto& [id, modified] : seen) out.push_back(StagedItem{.name = id, .modified = modified});
  return out;
}

}  // namespace wharf::cache
