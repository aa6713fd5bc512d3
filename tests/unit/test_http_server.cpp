#include <doctest/doctest.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "src/http/server.hpp"

using namespace wharf::http;

namespace {

// A connected client socket to 127.0.0.1:port (blocking), or -1.
int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Runs the loop without blocking until `done()` holds, at most ~5 s.
template <class F>
bool run_until(event_base* base, F done) {
  for (int i = 0; i < 500 && !done(); ++i) {
    event_base_loop(base, EVLOOP_NONBLOCK);
    if (!done()) usleep(10000);
  }
  return done();
}

}  // namespace

TEST_CASE("Server's destructor closes its open connections") {
  event_base* base = event_base_new();
  REQUIRE(base);
  ExchangePtr held;
  bool closed = false;
  ServerOptions opts;
  opts.addr = "127.0.0.1:0";
  auto srv = Server::start(
      base, opts,
      [&](const ExchangePtr& ex) {
        held = ex;  // a handler still working on its answer
        ex->on_close([&] { closed = true; });
      },
      nullptr);
  REQUIRE(srv);
  int busy = connect_to((*srv)->port());
  int idle = connect_to((*srv)->port());
  REQUIRE(busy >= 0);
  REQUIRE(idle >= 0);
  const char req[] = "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::write(busy, req, sizeof req - 1) == ssize_t(sizeof req - 1));
  REQUIRE(run_until(base, [&] { return held && (*srv)->open_connections() == 2; }));
  CHECK(held->alive());

  srv->reset();  // with one connection mid-request and one idle

  CHECK(closed);             // the exchange heard that its client is gone
  CHECK_FALSE(held->alive());
  held->respond(Response(200));  // and answering it later is harmless
  event_base_loop(base, EVLOOP_NONBLOCK);  // libevent closes freed sockets in its next loop turn
  char buf[16];
  CHECK(::read(busy, buf, sizeof buf) == 0);  // both sockets were closed
  CHECK(::read(idle, buf, sizeof buf) == 0);
  ::close(busy);
  ::close(idle);
  held.reset();
  event_base_free(base);
}
