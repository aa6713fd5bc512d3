// ustar/pax writing and reading; see tar.hpp.
#include "src/commands/tar.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "src/util/number.hpp"

namespace wharf::commands {

namespace {

constexpr size_t kBlock = 512;
constexpr uint64_t kMaxOctalSize = 077777777777ULL;  // 11 octal digits
// Largest entry size read: a file offset, so size + padding and any sum of a few sizes cannot wrap.
constexpr uint64_t kMaxEntrySize = uint64_t(std::numeric_limits<int64_t>::max()) - kBlock;
constexpr uint64_t kMaxMetadataSize = 1u << 20;  // pax / GNU long-name bodies

std::string sys_error(std::string_view what) { return std::string(what) + ": " + std::strerror(errno); }

void put_octal(char* field, size_t width, uint64_t value) {
  // width includes the terminating NUL
  for (size_t i = width - 1; i-- > 0;) {
    field[i] = char('0' + (value & 7));
    value >>= 3;
  }
  field[width - 1] = '\0';
}

// A numeric header field: octal digits (leading spaces, then NUL/space padding only) or GNU base-256
// (high bit set; negative values refused). nullopt if malformed or above `max`.
std::optional<uint64_t> get_octal(const char* field, size_t width, uint64_t max) {
  const auto* u = reinterpret_cast<const unsigned char*>(field);
  if (u[0] & 0x80) {  // GNU base-256, big-endian two's complement; bit 6 set means negative
    if (u[0] & 0x40) return std::nullopt;
    uint64_t v = u[0] & 0x3f;
    for (size_t i = 1; i < width; ++i) {
      if (v > (max >> 8)) return std::nullopt;
      v = (v << 8) | u[i];
    }
    if (v > max) return std::nullopt;
    return v;
  }
  size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  const size_t start = i;
  while (i < width && field[i] >= '0' && field[i] <= '7') ++i;
  const std::string_view digits(field + start, i - start);
  for (; i < width; ++i)
    if (field[i] != ' ' && field[i] != '\0') return std::nullopt;
  if (digits.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : digits) {
    if (v > (max >> 3)) return std::nullopt;
    v = (v << 3) | uint64_t(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

unsigned checksum(const char* block) {
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(block[i]);
  return sum;
}

// One pax record "<len> key=value\n" (len counts itself).
std::string pax_record(std::string_view key, std::string_view value) {
  size_t body = 1 + key.size() + 1 + value.size() + 1;
  size_t len = body + std::to_string(body).size();
  if (std::to_string(len).size() + body != len) ++len;
  return std::to_string(len) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

// Applies the "path" and "size" records of a pax extended header body ("<len> key=value\n" each, len
// counting the whole record); fails on any malformed record rather than guessing.
std::expected<void, std::string> apply_pax(std::string_view body, std::optional<std::string>& path,
                                           std::optional<uint64_t>& size) {
  const std::unexpected<std::string> corrupt("corrupt pax header");
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t sp = body.find(' ', pos);
    if (sp == std::string_view::npos) return corrupt;
    const auto len = util::parse_u64(body.substr(pos, sp - pos), body.size() - pos);
    // The record holds at least "<len> k=\n" and ends with a newline inside the body.
    if (!len || *len < sp - pos + 4 || body[pos + *len - 1] != '\n') return corrupt;
    const std::string_view rec = body.substr(sp + 1, pos + *len - sp - 2);
    pos += *len;
    const size_t eq = rec.find('=');
    if (eq == 0 || eq == std::string_view::npos) return corrupt;
    const std::string_view key = rec.substr(0, eq), val = rec.substr(eq + 1);
    if (key == "path") {
      if (val.empty() || val.find('\0') != std::string_view::npos) return corrupt;
      path = std::string(val);
    } else if (key == "size") {
      const auto v = util::parse_u64(val, kMaxEntrySize);
      if (!v) return corrupt;
      size = *v;
    }
  }
  return {};
}

size_t pad_of(uint64_t size) { return size_t((kBlock - size % kBlock) % kBlock); }

}  // namespace

std::expected<void, std::string> TarWriter::put(const void* data, size_t n) {
  auto p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(sys_error("write"));
    }
    p += w;
    n -= size_t(w);
  }
  return {};
}

std::expected<void, std::string> TarWriter::header(std::string_view name, uint64_t size, char type) {
  char b[kBlock] = {};
  std::memcpy(b, name.data(), std::min<size_t>(name.size(), 100));
  put_octal(b + 100, 8, type == '5' ? 0755 : 0644);
  put_octal(b + 108, 8, 0);
  put_octal(b + 116, 8, 0);
  put_octal(b + 124, 12, std::min(size, kMaxOctalSize));
  put_octal(b + 136, 12, 0);
  b[156] = type;
  std::memcpy(b + 257, "ustar", 6);
  std::memcpy(b + 263, "00", 2);
  char sum[8];
  put_octal(sum, 7, checksum(b));
  std::memcpy(b + 148, sum, 7);
  b[155] = ' ';
  return put(b, kBlock);
}

std::expected<void, std::string> TarWriter::begin(std::string_view name, uint64_t size) {
  if (open_) return std::unexpected("tar: entry started before the previous one ended");
  std::string pax;
  if (name.size() > 100) pax += pax_record("path", name);
  if (size > kMaxOctalSize) pax += pax_record("size", std::to_string(size));
  if (!pax.empty()) {
    if (auto h = header("PaxHeaders/" + std::string(name.substr(0, 80)), pax.size(), 'x'); !h) return h;
    if (auto w = put(pax.data(), pax.size()); !w) return w;
    static const char zeros[kBlock] = {};
    if (auto w = put(zeros, pad_of(pax.size())); !w) return w;
  }
  if (auto h = header(name, size, '0'); !h) return h;
  size_ = size;
  written_ = 0;
  open_ = true;
  return {};
}

std::expected<void, std::string> TarWriter::write(const void* data, size_t n) {
  if (!open_ || written_ + n > size_) return std::unexpected("tar: more bytes than the entry's size");
  written_ += n;
  return put(data, n);
}

std::expected<void, std::string> TarWriter::end() {
  if (!open_ || written_ != size_) return std::unexpected("tar: entry ended before its announced size");
  open_ = false;
  static const char zeros[kBlock] = {};
  return put(zeros, pad_of(size_));
}

std::expected<void, std::string> TarWriter::add(std::string_view name, std::string_view data) {
  if (auto b = begin(name, data.size()); !b) return b;
  if (auto w = write(data.data(), data.size()); !w) return w;
  return end();
}

std::expected<void, std::string> TarWriter::finish() {
  if (open_) return std::unexpected("tar: archive finished inside an entry");
  static const char zeros[2 * kBlock] = {};
  return put(zeros, sizeof zeros);
}

std::expected<bool, std::string> TarReader::read_exact(void* buf, size_t n) {
  auto p = static_cast<char*>(buf);
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd_, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(sys_error("read"));
    }
    if (r == 0) {
      if (got == 0) return false;
      return std::unexpected("archive truncated" + (current_.empty() ? std::string() : " in " + current_));
    }
    got += size_t(r);
  }
  return true;
}

std::expected<void, std::string> TarReader::skip_rest() {
  char buf[64 * 1024];
  uint64_t left = remaining_ + padding_;
  while (left > 0) {
    size_t n = size_t(std::min<uint64_t>(left, sizeof buf));
    auto r = read_exact(buf, n);
    if (!r) return std::unexpected(r.error());
    if (!*r) return std::unexpected("archive truncated in " + current_);
    left -= n;
  }
  remaining_ = padding_ = 0;
  return {};
}

std::expected<std::optional<TarEntry>, std::string> TarReader::next() {
  if (auto s = skip_rest(); !s) return std::unexpected(s.error());
  std::optional<std::string> long_name;
  std::optional<uint64_t> long_size;
  for (;;) {
    char b[kBlock];
    current_.clear();
    auto r = read_exact(b, kBlock);
    if (!r) return std::unexpected(r.error());
    if (!*r) return std::unexpected("archive truncated: no end-of-archive marker");
    bool zero = true;
    for (char c : b) zero = zero && c == 0;
    if (zero) return std::nullopt;
    auto stored = get_octal(b + 148, 8, 255 * kBlock);
    if (!stored || *stored != checksum(b)) return std::unexpected("corrupt tar header (bad checksum)");
    auto size = get_octal(b + 124, 12, kMaxEntrySize);
    if (!size) return std::unexpected("corrupt tar header (bad size)");
    const char type = b[156] == '\0' ? '0' : b[156];
    const bool metadata = type == 'x' || type == 'g' || type == 'L' || type == 'K';
    std::string name(b, strnlen(b, 100));
    if (std::memcmp(b + 257, "ustar", 5) == 0 && b[345] != '\0') name = std::string(b + 345, strnlen(b + 345, 155)) + "/" + name;
    TarEntry e;
    e.type = type;
    // pax/GNU overrides apply to the next real entry only, never to another metadata header.
    e.name = metadata ? name : long_name.value_or(name);
    e.size = metadata ? *size : long_size.value_or(*size);
    current_ = e.name;
    remaining_ = e.size;
    padding_ = pad_of(e.size);
    if (!metadata) return e;
    // Metadata entry: read its body (bounded) and apply it to the next header.
    if (e.size > kMaxMetadataSize) return std::unexpected("tar metadata entry too large");
    std::string body(size_t(e.size), '\0');
    if (auto rr = read_exact(body.data(), body.size()); !rr || !*rr)
      return std::unexpected(rr ? "archive truncated in " + e.name : rr.error());
    remaining_ = 0;
    if (auto s = skip_rest(); !s) return std::unexpected(s.error());
    if (e.type == 'L') {
      std::string ln(body.c_str());
      if (ln.empty()) return std::unexpected("corrupt GNU long name");
      long_name = std::move(ln);
      continue;
    }
    if (e.type != 'x') continue;  // global pax headers and GNU long link names are ignored
    auto applied = apply_pax(body, long_name, long_size);
    if (!applied) return std::unexpected(applied.error());
  }
}

std::expected<size_t, std::string> TarReader::read(void* buf, size_t n) {
  size_t want = size_t(std::min<uint64_t>(n, remaining_));
  if (want == 0) return 0;
  auto r = read_exact(buf, want);
  if (!r) return std::unexpected(r.error());
  if (!*r) return std::unexpected("archive truncated in " + current_);
  remaining_ -= want;
  return want;
}

}  // namespace wharf::commands
