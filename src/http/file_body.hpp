#pragma once
// How a connection sends file bodies (blobs, ranges, streamed mirror pieces), by transport:
// plain TCP hands the file to libevent as sendfile segments of kSendfileChunk bytes; TLS with the
// kernel's TLS offload (kTLS) sends with SSL_sendfile; other TLS reads the file into blocks of a
// BufferPool, a few at a time, instead of mapping the whole file.
#include <cstdint>
#include <deque>
#include <expected>
#include <string>
#include <string_view>

#include "src/http/buffer_pool.hpp"

struct evbuffer;
struct ssl_st;

namespace wharf::http {

// The way file bodies leave a connection.
enum class BodyPath { Sendfile, KernelTls, Pool };

// The path for a connection: plain TCP: Sendfile; TLS whose write side the kernel encrypts: KernelTls;
// other TLS: Pool.
BodyPath choose_body_path(bool tls, bool ktls_send);
// A short name for logs ("sendfile", "ktls-sendfile", "buffer-pool").
std::string_view body_path_name(BodyPath p);
// Whether the kernel offers the "tls" upper-layer protocol, given the text of
// /proc/sys/net/ipv4/tcp_available_ulp (a space-separated list).
bool ulp_list_has_tls(std::string_view available_ulps);
// Reads /proc/sys/net/ipv4/tcp_available_ulp; false if it cannot be read.
bool kernel_offers_tls_ulp();
// Whether kernel TLS can be used: the "tls" ULP is registered, or the kernel loads it on request.
bool kernel_tls_available();

// Largest piece of a sendfile body written in one go (the event loop serves other connections between
// pieces). nginx uses 2 MiB; on the bench machine 2 MiB pieces showed no gain over one sendfile per
// 16 MiB blob (tests/bench/RESULTS.md), so pieces only bound very large bodies.
constexpr uint64_t kSendfileChunk = 16ull << 20;

// Queues [offset, offset+len) of `fd` on `out` for sendfile, in kSendfileChunk pieces; takes ownership
// of `fd` (closed once sent, or now on failure); false if libevent could not take it.
bool add_sendfile_body(evbuffer* out, int fd, uint64_t offset, uint64_t len);

// The file regions a connection still has to send on the KernelTls and Pool paths, in order.
class FileQueue {
 public:
  // `pool` supplies the blocks for fill(); it must outlive the blocks handed to an evbuffer.
  explicit FileQueue(BufferPool* pool) : pool_(pool) {}
  FileQueue(const FileQueue&) = delete;
  FileQueue& operator=(const FileQueue&) = delete;
  // Closes the descriptors of regions not sent.
  ~FileQueue();

  // Appends a region; takes ownership of `fd` (closed when the region is done or the queue dropped).
  void push(int fd, uint64_t offset, uint64_t len);
  // Bytes not handed on yet.
  uint64_t pending() const { return pending_; }
  bool empty() const { return regions_.empty(); }
  // Closes and forgets every region.
  void clear();

  // Pool path: reads pool blocks into `out` (by reference; each goes back to the pool once written)
  // until `out` holds at least `target` bytes or nothing is pending; fails, naming the problem, on a
  // read error or a file shorter than its region.
  std::expected<void, std::string> fill(evbuffer* out, size_t target);
  // KernelTls path: SSL_sendfile until everything is sent (true) or the socket is full (false); fails
  // on any other error. `out` of the connection must be empty (no TLS record may be half-written).
  std::expected<bool, std::string> send_ktls(ssl_st* ssl);

 private:
  struct Region {
    int fd;
    uint64_t offset;
    uint64_t len;
  };
  void pop_front();

  BufferPool* pool_;
  std::deque<Region> regions_;
  uint64_t pending_ = 0;
};

}  // namespace wharf::http
