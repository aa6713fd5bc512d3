#include <doctest/doctest.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

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

namespace {

// A self-signed P-256 certificate for 127.0.0.1 and its key, written as PEM files under /tmp.
struct TestCert {
  std::string cert = "/tmp/wharf-test-cert-" + std::to_string(getpid()) + ".pem";
  std::string key = "/tmp/wharf-test-key-" + std::to_string(getpid()) + ".pem";
  TestCert() {
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    REQUIRE(pkey);
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    REQUIRE(X509_sign(x, pkey, EVP_sha256()) > 0);
    FILE* f = fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
  }
  ~TestCert() {
    ::unlink(cert.c_str());
    ::unlink(key.c_str());
  }
};

// Reads one HTTP/1.1 response with a Content-Length body through `read` (returns bytes or <= 0); the
// body, or "<error>" if the stream ended or failed first.
template <class Read>
std::string read_response(Read read) {
  std::string data;
  char buf[65536];
  size_t head_end = std::string::npos;
  size_t need = 0;
  for (;;) {
    if (head_end == std::string::npos) {
      head_end = data.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        auto cl = data.find("Content-Length: ");
        if (cl == std::string::npos || cl > head_end) return "<error>";
        need = head_end + 4 + std::stoul(data.substr(cl + 16, data.find("\r\n", cl) - cl - 16));
      }
    }
    if (head_end != std::string::npos && data.size() >= need) return data.substr(head_end + 4, need - head_end - 4);
    int n = read(buf, int(sizeof buf));
    if (n <= 0) return "<error>";
    data.append(buf, size_t(n));
  }
}

// A file of `size` patterned bytes, removed with the object.
struct BodyFile {
  std::string path = "/tmp/wharf-test-body-" + std::to_string(getpid());
  std::string data;
  explicit BodyFile(size_t size) {
    data.resize(size);
    for (size_t i = 0; i < size; ++i) data[i] = char((i * 7 + i / 65536) & 0xff);
    FILE* f = fopen(path.c_str(), "w");
    fwrite(data.data(), 1, data.size(), f);
    fclose(f);
  }
  ~BodyFile() { ::unlink(path.c_str()); }
};

// A server answering every request with bytes [offset, offset+len) of `file`, the range taken from the
// path "/offset/len".
std::expected<std::unique_ptr<Server>, std::string> file_server(event_base* base, const BodyFile& file,
                                                                ServerOptions opts) {
  opts.addr = "127.0.0.1:0";
  return Server::start(
      base, opts,
      [&file](const ExchangePtr& ex) {
        const std::string& p = ex->req().path;
        const auto slash = p.find('/', 1);
        Response r(200);
        r.file = FileBody{::open(file.path.c_str(), O_RDONLY | O_CLOEXEC), std::stoull(p.substr(1, slash - 1)),
                          std::stoull(p.substr(slash + 1))};
        ex->respond(std::move(r));
      },
      nullptr);
}

}  // namespace

TEST_CASE("file bodies on a kept-alive connection") {
  BodyFile file(5 * 1024 * 1024 + 777);
  event_base* base = event_base_new();
  REQUIRE(base);
  // Three answers in a row: a body past several sendfile pieces / pool refills, a small one, and a
  // large range that starts mid-file; each must arrive whole and the connection must go on.
  const std::vector<std::pair<uint64_t, uint64_t>> ranges = {
      {0, file.data.size()}, {3, 100}, {1234567, 3 * 1024 * 1024}};
  std::vector<std::string> got;
  std::atomic<bool> done{false};

  SUBCASE("plain TCP: sendfile") {
    auto srv = file_server(base, file, ServerOptions{});
    REQUIRE(srv);
    int fd = connect_to((*srv)->port());
    REQUIRE(fd >= 0);
    std::thread client([&] {
      for (auto [off, len] : ranges) {
        std::string req = "GET /" + std::to_string(off) + "/" + std::to_string(len) + " HTTP/1.1\r\nHost: x\r\n\r\n";
        if (::write(fd, req.data(), req.size()) != ssize_t(req.size())) break;
        got.push_back(read_response([&](char* b, int n) { return int(::read(fd, b, size_t(n))); }));
      }
      done = true;
    });
    for (int i = 0; i < 20000 && !done; ++i) event_base_loop(base, EVLOOP_NONBLOCK), usleep(done ? 0 : 100);
    client.join();
    ::close(fd);
  }
  SUBCASE("TLS without kernel TLS: the buffer pool") {
    TestCert cert;
    ServerOptions opts;
    opts.tls_certificate = cert.cert;
    opts.tls_key = cert.key;
    auto srv = file_server(base, file, opts);
    REQUIRE(srv);
    int fd = connect_to((*srv)->port());
    REQUIRE(fd >= 0);
    std::thread client([&] {
      SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) == 1) {
        for (auto [off, len] : ranges) {
          std::string req = "GET /" + std::to_string(off) + "/" + std::to_string(len) + " HTTP/1.1\r\nHost: x\r\n\r\n";
          if (SSL_write(ssl, req.data(), int(req.size())) != int(req.size())) break;
          got.push_back(read_response([&](char* b, int n) { return SSL_read(ssl, b, n); }));
        }
      }
      SSL_free(ssl);
      SSL_CTX_free(ctx);
      done = true;
    });
    for (int i = 0; i < 20000 && !done; ++i) event_base_loop(base, EVLOOP_NONBLOCK), usleep(done ? 0 : 100);
    client.join();
    ::close(fd);
  }
  REQUIRE(got.size() == ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].size() == ranges[i].second);
    CHECK(got[i] == file.data.substr(ranges[i].first, ranges[i].second));
  }
  event_base_free(base);
}

TEST_CASE("a paused request body is fed again only after resume_body, and arrives whole") {
  BodyFile file(3 * 1024 * 1024 + 555);  // its patterned bytes are the request body
  event_base* base = event_base_new();
  REQUIRE(base);
  struct State {
    ExchangePtr ex;
    std::string got;
    size_t next_pause = 0;
    int pauses = 0;
    bool paused = false;
    bool fed_while_paused = false;
  } st;
  // Pauses the body at its first piece and then every MiB; the loop below resumes it a while later.
  struct Sink final : BodySink {
    explicit Sink(State* s) : st(s) {}
    bool on_data(const char* p, size_t n) override {
      if (st->paused) st->fed_while_paused = true;
      st->got.append(p, n);
      if (st->got.size() >= st->next_pause) {
        st->next_pause = st->got.size() + 1024 * 1024;
        st->paused = true;
        ++st->pauses;
        st->ex->pause_body();
      }
      return true;
    }
    void on_end() override {
      Response r(201);
      r.body = std::to_string(st->got.size());
      st->ex->respond(std::move(r));
    }
    State* st;
  };
  ServerOptions opts;
  opts.addr = "127.0.0.1:0";
  std::unique_ptr<TestCert> cert;
  bool tls = false;
  SUBCASE("plain TCP: the bulk body reader") {}
  SUBCASE("TLS: the bufferevent") {
    tls = true;
    cert = std::make_unique<TestCert>();
    opts.tls_certificate = cert->cert;
    opts.tls_key = cert->key;
  }
  auto srv = Server::start(
      base, opts,
      [&st](const ExchangePtr& ex) {
        st.ex = ex;
        ex->read_body(std::make_unique<Sink>(&st));
      },
      nullptr);
  REQUIRE(srv);
  int fd = connect_to((*srv)->port());
  REQUIRE(fd >= 0);
  std::string answer;
  std::atomic<bool> done{false};
  const std::string head = "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(file.data.size()) + "\r\n\r\n";
  std::thread client([&] {
    const std::string req = head + file.data;
    if (!tls) {
      if (::write(fd, req.data(), req.size()) == ssize_t(req.size()))
        answer = read_response([&](char* b, int n) { return int(::read(fd, b, size_t(n))); });
    } else {
      SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) == 1 && SSL_write(ssl, req.data(), int(req.size())) == int(req.size()))
        answer = read_response([&](char* b, int n) { return SSL_read(ssl, b, n); });
      SSL_free(ssl);
      SSL_CTX_free(ctx);
    }
    done = true;
  });
  int idle_turns = 0;
  for (int i = 0; i < 50000 && !done; ++i) {
    event_base_loop(base, EVLOOP_NONBLOCK);
    if (st.paused && ++idle_turns > 30) {  // ~3 ms and many loop turns with no piece fed: resume
      idle_turns = 0;
      st.paused = false;
      st.ex->resume_body();
    }
    usleep(100);
  }
  if (!done) ::shutdown(fd, SHUT_RDWR);  // a stalled body: unblock the client and fail below
  client.join();
  ::close(fd);
  INFO("bytes fed: " << st.got.size() << ", pauses: " << st.pauses << ", paused now: " << st.paused);
  CHECK(done);
  CHECK_FALSE(st.fed_while_paused);
  CHECK(st.pauses >= 3);
  CHECK(st.got == file.data);
  CHECK(answer == std::to_string(file.data.size()));
  st.ex.reset();
  srv->reset();
  event_base_free(base);
}
