// The index's key helpers and record encodings: Writer/Reader and encode/decode per record.
#include "cache/index_records.hpp"

#include <utility>
#include <vector>

namespace wharf::cache::index_detail {
namespace {

constexpr uint8_t kVersion = 1;

class Writer {
 public:
  Writer& u8(uint8_t v) {
    out_.push_back(char(v));
    return *this;
  }
  Writer& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(char((v >> (8 * i)) & 0xff));
    return *this;
  }
  Writer& i64(int64_t v) { return u64(uint64_t(v)); }
  Writer& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(char((v >> (8 * i)) & 0xff));
    return *this;
  }
  Writer& str(std::string_view s) {
    u32(uint32_t(s.size()));
    out_.append(s);
    return *this;
  }
  Writer& strs(const std::vector<std::string>& v) {
    u32(uint32_t(v.size()));
    for (const auto& s : v) str(s);
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads what Writer wrote; any overrun clears ok() and yields zero values. Never reads past the value.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  // Bytes not read yet.
  size_t left() const { return in_.size() - pos_; }
  uint64_t uint(int bytes) {
    if (!need(size_t(bytes))) return 0;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(uint8_t(in_[pos_ + size_t(i)])) << (8 * i);
    pos_ += size_t(bytes);
    return v;
  }
  uint8_t u8() { return uint8_t(uint(1)); }
  uint32_t u32() { return uint32_t(uint(4)); }
  uint64_t u64() { return uint(8); }
  int64_t i64() { return int64_t(uint(8)); }
  std::string str() {
    size_t n = u32();
    if (!need(n)) return {};
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::vector<std::string> strs() {
    size_t n = u32();
    if (!need(n * 4)) return {};  // every string takes at least its length prefix
    std::vector<std::string> v;
    v.reserve(n);
    for (size_t i = 0; i < n && ok_; ++i) v.push_back(str());
    return v;
  }
  bool version() { return u8() == kVersion && ok_; }
  // An origin byte; anything but a known origin clears ok().
  Origin origin() {
    uint8_t v = u8();
    if (v > uint8_t(Origin::Proxied)) ok_ = false;
    return v == uint8_t(Origin::Proxied) ? Origin::Proxied : Origin::Pushed;
  }
  // True if everything read so far was there and nothing is left over (a strict decode).
  bool done() const { return ok_ && pos_ == in_.size(); }

 private:
  bool need(size_t n) {
    if (ok_ && in_.size() - pos_ >= n) return true;
    ok_ = false;
    return false;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

std::string key(std::string_view a, std::string_view b) {
  std::string k;
  k.reserve(a.size() + 1 + b.size());
  k.append(a).push_back('\0');
  k.append(b);
  return k;
}

std::string key(std::string_view a, std::string_view b, std::string_view c) { return key(key(a, b), c); }

bool split_key(std::string_view k, std::string_view& a, std::string_view& b) {
  size_t nul = k.find('\0');
  if (nul == std::string_view::npos) return false;
  a = k.substr(0, nul);
  b = k.substr(nul + 1);
  return true;
}

std::string encode_i64(int64_t v) { return Writer().i64(v).take(); }

std::optional<int64_t> decode_i64(std::string_view v) {
  Reader r(v);
  int64_t t = r.i64();
  return r.done() ? std::optional(t) : std::nullopt;
}

// A filesystem blob's record ends after `created` (the layout before backends existed, so older
// readers keep reading it); any other backend adds one byte naming it.
std::string encode(const BlobRecord& b) {
  Writer w;
  w.u8(kVersion).u64(b.size).u32(b.refcount).u8(uint8_t(b.origin)).i64(b.created);
  if (b.backend != Backend::Filesystem) w.u8(uint8_t(b.backend));
  return w.take();
}

std::optional<BlobRecord> decode_blob(std::string_view v) {
  Reader r(v);
  if (!r.version()) return std::nullopt;
  BlobRecord b;
  b.size = r.u64();
  b.refcount = r.u32();
  b.origin = r.origin();
  b.created = r.i64();
  if (r.ok() && r.left() == 1) {
    const uint8_t backend = r.u8();  // only written for a non-filesystem backend
    if (backend != uint8_t(Backend::S3)) return std::nullopt;
    b.backend = Backend::S3;
  }
  return r.done() ? std::optional(b) : std::nullopt;
}

std::string encode(const ManifestRecord& m) {
  return Writer()
      .u8(kVersion)
      .str(m.media_type)
      .u64(m.size)
      .strs(m.blobs)
      .strs(m.children)
      .str(m.subject)
      .str(m.artifact_type)
      .str(m.annotations_json)
      .u8(uint8_t(m.origin))
      .i64(m.created)
      .take();
}

std::optional<ManifestRecord> decode_manifest(std::string_view v) {
  Reader r(v);
  if (!r.version()) return std::nullopt;
  ManifestRecord m;
  m.media_type = r.str();
  m.size = r.u64();
  m.blobs = r.strs();
  m.children = r.strs();
  m.subject = r.str();
  m.artifact_type = r.str();
  m.annotations_json = r.str();
  m.origin = r.origin();
  m.created = r.i64();
  return r.done() ? std::optional(std::move(m)) : std::nullopt;
}

std::string encode_referrer(const ManifestRecord& m) {
  return Writer().u8(kVersion).str(m.media_type).u64(m.size).str(m.artifact_type).str(m.annotations_json).take();
}

std::optional<Referrer> decode_referrer(std::string_view digest, std::string_view v) {
  Reader r(v);
  if (!r.version()) return std::nullopt;
  Referrer ref;
  ref.digest = std::string(digest);
  ref.media_type = r.str();
  ref.size = r.u64();
  ref.artifact_type = r.str();
  ref.annotations_json = r.str();
  return r.done() ? std::optional(std::move(ref)) : std::nullopt;
}

std::string encode(const UploadRecord& u) { return Writer().u8(kVersion).str(u.repo).i64(u.started).take(); }

std::optional<UploadRecord> decode_upload(std::string_view v) {
  Reader r(v);
  if (!r.version()) return std::nullopt;
  UploadRecord u;
  u.repo = r.str();
  u.started = r.i64();
  return r.done() ? std::optional(std::move(u)) : std::nullopt;
}

}  // namespace wharf::cache::index_detail
