// ustar/pax writing and reading; see tar.hpp.
#include "src/commands/tar.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace wharf::commands {

namespace {

constexpr size_t kBlock = 512;
constexpr uint64_t kMaxOctalSize = 077777777777ULL;  // 11 octal digits

std::string sys_error(std::string_view what) { return std::string(what) + ": " + std::strerror(errno); }

void put_octal(char* field, size_t width, uint64_t value) {
  // width includes the terminating NUL
  for (size_t i = width - 1; i-- > 0;) {
    field[i] = char('0' + (value & 7));
    value >>= 3;
  }
  field[width - 1] = '\0';
}

std::optional<uint64_t> get_octal(const char* field, size_t width) {
  if (static_cast<unsigned char>(field[0]) & 0x80) {  // GNU base-256
    uint64_t v = static_cast<unsigned char>(field[0]) & 0x7f;
    for (size_t i = 1; i < width; ++i) v = (v << 8) | static_cast<unsigned char>(field[i]);
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  bool any = false;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i, any = true) v = (v << 3) | uint64_t(field[i] - '0');
  if (!any) return std::nullopt;
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
    auto stored = get_octal(b + 148, 8);
    if (!stored || *stored != checksum(b)) return std::unexpected("corrupt tar header (bad checksum)");
    auto size = get_octal(b + 124, 12);
    if (!size) return std::unexpected("corrupt tar header (bad size)");
    TarEntry e;
    e.type = b[156] == '\0' ? '0' : b[156];
    std::string name(b, strnlen(b, 100));
    if (std::memcmp(b + 257, "ustar", 5) == 0 && b[345] != '\0') name = std::string(b + 345, strnlen(b + 345, 155)) + "/" + name;
    e.name = long_name.value_or(name);
    e.size = long_size.value_or(*size);
    current_ = e.name;
    remaining_ = e.size;
    padding_ = pad_of(e.size);
    if (e.type != 'x' && e.type != 'g' && e.type != 'L') return e;
    // Metadata entry: read its body (bounded) and apply it to the next header.
    if (e.size > (1u << 20)) return std::unexpected("tar metadata entry too large");
    std::string body(size_t(e.size), '\0');
    if (auto rr = read_exact(body.data(), body.size()); !rr || !*rr)
      return std::unexpected(rr ? "archive truncated in " + e.name : rr.error());
    remaining_ = 0;
    if (auto s = skip_rest(); !s) return std::unexpected(s.error());
    if (e.type == 'L') {
      long_name = std::string(body.c_str());
      continue;
    }
    if (e.type == 'g') continue;
    for (size_t pos = 0; pos < body.size();) {
      size_t sp = body.find(' ', pos);
      if (sp == std::string::npos) break;
      size_t len = std::strtoull(body.c_str() + pos, nullptr, 10);
      if (len == 0 || pos + len > body.size()) return std::unexpected("corrupt pax header");
      std::string rec = body.substr(sp + 1, pos + len - sp - 2);
      size_t eq = rec.find('=');
      if (eq != std::string::npos) {
        std::string key = rec.substr(0, eq), val = rec.substr(eq + 1);
        if (key == "path") long_name = val;
        else if (key == "size") long_size = std::strtoull(val.c_str(), nullptr, 10);
      }
      pos += len;
    }
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
