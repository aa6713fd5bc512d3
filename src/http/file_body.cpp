#include "src/http/file_body.hpp"

#include <event2/buffer.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace wharf::http {

namespace {

void give_back(const void* data, size_t, void* pool) {
  static_cast<BufferPool*>(pool)->release(static_cast<char*>(const_cast<void*>(data)));
}

}  // namespace

BodyPath choose_body_path(bool tls, bool ktls_send) {
  if (!tls) return BodyPath::Sendfile;
  return ktls_send ? BodyPath::KernelTls : BodyPath::Pool;
}

std::string_view body_path_name(BodyPath p) {
  switch (p) {
    case BodyPath::Sendfile: return "sendfile";
    case BodyPath::KernelTls: return "ktls-sendfile";
    case BodyPath::Pool: return "buffer-pool";
  }
  return "?";
}

bool ulp_list_has_tls(std::string_view ulps) {
  std::istringstream in{std::string(ulps)};
  std::string word;
  while (in >> word)
    if (word == "tls") return true;
  return false;
}

bool kernel_offers_tls_ulp() {
  std::ifstream f("/proc/sys/net/ipv4/tcp_available_ulp");
  if (!f) return false;
  std::stringstream text;
  text << f.rdbuf();
  return ulp_list_has_tls(text.str());
}

bool kernel_tls_available() {
  if (kernel_offers_tls_ulp()) return true;
  // Not registered yet: asking for it on a fresh socket makes the kernel load the module if it has
  // one; it then refuses only because the socket is not connected.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int rc = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", 3);
  const int err = errno;
  ::close(fd);
  return rc == 0 || err == ENOTCONN;
}

bool add_sendfile_body(evbuffer* out, int fd, uint64_t offset, uint64_t len) {
  evbuffer_file_segment* seg = evbuffer_file_segment_new(fd, ev_off_t(offset), ev_off_t(len), EVBUF_FS_CLOSE_ON_FREE);
  if (!seg) {
    ::close(fd);
    return false;
  }
  bool ok = true;
  // Each piece is one chain: libevent's sendfile writes one chain per write event.
  for (uint64_t done = 0; done < len && ok; done += kSendfileChunk)
    ok = evbuffer_add_file_segment(out, seg, ev_off_t(done), ev_off_t(std::min(kSendfileChunk, len - done))) == 0;
  evbuffer_file_segment_free(seg);  // the chains hold their own references; the last one closes fd
  return ok;
}

FileQueue::~FileQueue() { clear(); }

void FileQueue::push(int fd, uint64_t offset, uint64_t len) {
  if (len == 0) {
    ::close(fd);
    return;
  }
  // Large regions: ask for aggressive read-ahead, so that the reads below find the pages in the cache
  // (below 1 MiB a few reads do it: not worth a system call per response).
  if (len >= (1ull << 20)) posix_fadvise(fd, off_t(offset), off_t(len), POSIX_FADV_SEQUENTIAL);
  regions_.push_back(Region{fd, offset, len});
  pending_ += len;
}

void FileQueue::pop_front() {
  ::close(regions_.front().fd);
  regions_.pop_front();
}

void FileQueue::clear() {
  while (!regions_.empty()) pop_front();
  pending_ = 0;
}

std::expected<void, std::string> FileQueue::fill(evbuffer* out, size_t target) {
  const size_t block = pool_->block_size();
  while (!regions_.empty() && evbuffer_get_length(out) < target) {
    Region& r = regions_.front();
    const size_t want = size_t(std::min<uint64_t>(r.len, block));
    char* buf = pool_->acquire();
    ssize_t n;
    do {
      n = ::pread(r.fd, buf, want, off_t(r.offset));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      pool_->release(buf);
      return std::unexpected(n == 0 ? std::string("file ended before the promised length")
                                    : std::string("cannot read the file: ") + std::strerror(errno));
    }
    if (evbuffer_add_reference(out, buf, size_t(n), &give_back, pool_) != 0) {
      pool_->release(buf);
      return std::unexpected("cannot queue file bytes for sending");
    }
    r.offset += uint64_t(n);
    r.len -= uint64_t(n);
    pending_ -= uint64_t(n);
    if (r.len == 0) pop_front();
  }
  return {};
}

std::expected<bool, std::string> FileQueue::send_ktls(ssl_st* ssl) {
  while (!regions_.empty()) {
    Region& r = regions_.front();
    const size_t want = size_t(std::min<uint64_t>(r.len, kSendfileChunk));
    ERR_clear_error();
    ossl_ssize_t n = SSL_sendfile(ssl, r.fd, off_t(r.offset), want, 0);
    if (n <= 0) {
      const int err = SSL_get_error(ssl, int(n));
      if (err == SSL_ERROR_WANT_WRITE) return false;
      char buf[256] = "";
      ERR_error_string_n(ERR_peek_last_error(), buf, sizeof buf);
      return std::unexpected(std::string("SSL_sendfile failed: ") + buf);
    }
    r.offset += uint64_t(n);
    r.len -= uint64_t(n);
    pending_ -= uint64_t(n);
    if (r.len == 0) pop_front();
    if (size_t(n) < want) return false;  // the socket is full: wait until it can take more
  }
  return true;
}

}  // namespace wharf::http
