#include <doctest/doctest.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "src/http/file_body.hpp"

using namespace wharf::http;

namespace {

// A temporary file with `size` bytes of a known pattern; removed with the object.
struct TempFile {
  std::string path;
  std::string data;
  explicit TempFile(size_t size) {
    char tmpl[] = "/tmp/wharf-file-body-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    path = tmpl;
    data.resize(size);
    for (size_t i = 0; i < size; ++i) data[i] = char((i * 131 + i / 4096) & 0xff);
    REQUIRE(::write(fd, data.data(), data.size()) == ssize_t(data.size()));
    ::close(fd);
  }
  ~TempFile() { ::unlink(path.c_str()); }
  int open() const { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); }
};

// Removes and returns everything in `buf`.
std::string take(evbuffer* buf) {
  std::string out(evbuffer_get_length(buf), '\0');
  evbuffer_remove(buf, out.data(), out.size());
  return out;
}

}  // namespace

TEST_CASE("choose_body_path") {
  CHECK(choose_body_path(false, false) == BodyPath::Sendfile);
  CHECK(choose_body_path(false, true) == BodyPath::Sendfile);  // plain TCP never needs kernel TLS
  CHECK(choose_body_path(true, true) == BodyPath::KernelTls);
  CHECK(choose_body_path(true, false) == BodyPath::Pool);  // the fallback where the kernel has no TLS
  CHECK(body_path_name(BodyPath::Pool) == "buffer-pool");
}

TEST_CASE("ulp_list_has_tls") {
  CHECK_FALSE(ulp_list_has_tls(""));
  CHECK_FALSE(ulp_list_has_tls("mptcp\n"));  // this kind of machine: no kTLS
  CHECK(ulp_list_has_tls("espintcp mptcp tls\n"));
  CHECK(ulp_list_has_tls("tls"));
  CHECK_FALSE(ulp_list_has_tls("tlsx xtls"));
}

TEST_CASE("kernel_tls_available") {
  // Agrees with the kernel's own list when that names tls; either way it answers without failing.
  if (kernel_offers_tls_ulp()) CHECK(kernel_tls_available());
  else (void)kernel_tls_available();
}

TEST_CASE("FileQueue::fill") {
  BufferPool pool(16 * 1024, 4);
  TempFile file(200 * 1024 + 123);
  evbuffer* out = evbuffer_new();
  SUBCASE("sends the regions in order, a bounded amount at a time, through reused blocks") {
    {
      FileQueue q(&pool);
      q.push(file.open(), 1000, 150 * 1024);
      q.push(file.open(), 7, 10);
      CHECK(q.pending() == 150 * 1024 + 10);
      std::string got;
      for (int i = 0; i < 100 && !q.empty(); ++i) {
        REQUIRE(q.fill(out, 40 * 1024));
        CHECK(evbuffer_get_length(out) <= 40 * 1024 + pool.block_size());  // bounded read-ahead
        CHECK(pool.in_use() * pool.block_size() >= evbuffer_get_length(out));
        got += take(out);  // written: the blocks go back to the pool
        CHECK(pool.in_use() == 0);
      }
      CHECK(q.empty());
      CHECK(q.pending() == 0);
      CHECK(got == file.data.substr(1000, 150 * 1024) + file.data.substr(7, 10));
    }
    CHECK(pool.allocated() <= 4);  // ten fills, a handful of blocks
  }
  SUBCASE("a file shorter than its region is an error, not a short body") {
    FileQueue q(&pool);
    q.push(file.open(), file.data.size() - 100, 1000);
    auto r = q.fill(out, 1 << 20);
    REQUIRE_FALSE(r);
    CHECK(r.error().find("ended before") != std::string::npos);
    take(out);
  }
  SUBCASE("an empty region is dropped at once") {
    FileQueue q(&pool);
    q.push(file.open(), 0, 0);
    CHECK(q.empty());
  }
  evbuffer_free(out);
  CHECK(pool.in_use() == 0);
}

TEST_CASE("add_sendfile_body") {
  TempFile file(kSendfileChunk * 2 + 4321);
  evbuffer* out = evbuffer_new();
  evbuffer_set_flags(out, EVBUFFER_FLAG_DRAINS_TO_FD);  // as a socket bufferevent's output: sendfile
  REQUIRE(add_sendfile_body(out, file.open(), 11, file.data.size() - 11));
  CHECK(evbuffer_get_length(out) == file.data.size() - 11);
  // Written through a socket the bytes are the file's, in kSendfileChunk pieces at most per write.
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  // Non-blocking like a server's socket: each write takes what fits, the loop below drains it.
  REQUIRE(::fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
  std::string got;
  char buf[65536];
  for (int i = 0; i < 10000 && evbuffer_get_length(out) > 0; ++i) {
    int n = evbuffer_write(out, sv[0]);
    REQUIRE(n > 0);
    CHECK(size_t(n) <= kSendfileChunk);
    for (int left = n; left > 0;) {
      ssize_t r = ::read(sv[1], buf, sizeof buf);
      REQUIRE(r > 0);
      got.append(buf, size_t(r));
      left -= int(r);
    }
  }
  CHECK(got == file.data.substr(11));
  ::close(sv[0]);
  ::close(sv[1]);
  evbuffer_free(out);
}
