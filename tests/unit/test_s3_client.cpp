// The S3 client against a scripted S3 on the same event loop (libevent's evhttp on 127.0.0.1): what it
// sends (path-style URL, signature headers, body), retries with backoff for idempotent calls only, typed
// errors, listings, and timeouts instead of hangs.
#include <doctest/doctest.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "src/s3/client.hpp"

using namespace wharf;
using namespace wharf::s3;

namespace {

struct Seen {
  std::string method;
  std::string uri;
  std::string authorization;
  std::string content_sha;
  std::string if_none_match;
  std::string body;
};

struct Reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool hang = false;  // never answer
};

// A scripted S3: answers requests in order from `replies` (the last one repeats), records what it saw.
class FakeS3 {
 public:
  FakeS3() : base_(event_base_new()), http_(evhttp_new(base_)) {
    evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_bound_socket* sock = evhttp_bind_socket_with_handle(http_, "127.0.0.1", 0);
    REQUIRE(sock != nullptr);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(evhttp_bound_socket_get_fd(sock), reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    evhttp_set_gencb(http_, on_request, this);
    auto h = proxy::HttpClient::create(base_);
    REQUIRE(h.has_value());
    client_ = std::move(*h);
  }
  ~FakeS3() {
    s3_.reset();
    client_.reset();
    evhttp_free(http_);
    event_base_free(base_);
  }

  ClientConfig config() const {
    ClientConfig c;
    c.endpoint = "http://127.0.0.1:" + std::to_string(port_);
    c.region = "us-east-1";
    c.bucket = "bkt";
    c.credentials = {"AKID", "SECRET", ""};
    c.root = "/root/dir/";
    c.retry = {4, std::chrono::milliseconds(5), std::chrono::milliseconds(20)};
    c.first_byte_timeout = std::chrono::milliseconds(400);
    return c;
  }

  Client& s3(ClientConfig c) {
    auto made = Client::create(base_, *client_, std::move(c));
    REQUIRE(made.has_value());
    s3_ = std::move(*made);
    return *s3_;
  }
  Client& s3() { return s3(config()); }
  proxy::HttpClient& http() { return *client_; }

  // Runs the loop until `done` holds (at most ~10 s).
  bool run_until(const std::function<bool()>& done, int limit_ms = 10000) {
    for (int i = 0; i < (limit_ms / 5) && !done(); ++i) {
      event_base_loop(base_, EVLOOP_NONBLOCK);
      if (!done()) usleep(5000);
    }
    return done();
  }

  std::deque<Reply> replies;
  std::vector<Seen> seen;
  int port() const { return port_; }

 private:
  static void on_request(evhttp_request* req, void* arg) {
    auto* self = static_cast<FakeS3*>(arg);
    Seen s;
    switch (evhttp_request_get_command(req)) {
      case EVHTTP_REQ_GET: s.method = "GET"; break;
      case EVHTTP_REQ_PUT: s.method = "PUT"; break;
      case EVHTTP_REQ_POST: s.method = "POST"; break;
      case EVHTTP_REQ_DELETE: s.method = "DELETE"; break;
      case EVHTTP_REQ_HEAD: s.method = "HEAD"; break;
      default: s.method = "?";
    }
    s.uri = evhttp_request_get_uri(req);
    evkeyvalq* in = evhttp_request_get_input_headers(req);
    auto header = [&](const char* n) {
      const char* v = evhttp_find_header(in, n);
      return std::string(v ? v : "");
    };
    s.authorization = header("Authorization");
    s.content_sha = header("x-amz-content-sha256");
    s.if_none_match = header("If-None-Match");
    evbuffer* body = evhttp_request_get_input_buffer(req);
    s.body.resize(evbuffer_get_length(body));
    evbuffer_copyout(body, s.body.data(), s.body.size());
    self->seen.push_back(s);
    Reply r = self->replies.empty() ? Reply{} : self->replies.front();
    if (self->replies.size() > 1) self->replies.pop_front();
    if (r.hang) return;
    for (const auto& [k, v] : r.headers) evhttp_add_header(evhttp_request_get_output_headers(req), k.c_str(), v.c_str());
    evbuffer* out = evbuffer_new();
    evbuffer_add(out, r.body.data(), r.body.size());
    evhttp_send_reply(req, r.status, "X", out);
    evbuffer_free(out);
  }

  event_base* base_;
  evhttp* http_;
  int port_ = 0;
  std::unique_ptr<proxy::HttpClient> client_;
  std::unique_ptr<Client> s3_;
};

constexpr const char* kSlowDown = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

}  // namespace

TEST_CASE("s3 client signs and addresses requests path-style under the root") {
  FakeS3 fake;
  fake.replies.push_back({200, "", {{"ETag", "\"abc\""}}, false});
  std::optional<std::expected<std::string, S3Error>> got;
  PutOptions opts;
  opts.if_none_match = true;
  fake.s3().put_object("a b/c.txt", proxy::RequestBody::from_string("hello"), opts, [&](auto r) { got = r; });
  REQUIRE(fake.run_until([&] { return got.has_value(); }));
  REQUIRE(got->has_value());
  CHECK(**got == "\"abc\"");
  REQUIRE(fake.seen.size() == 1);
  CHECK(fake.seen[0].method == "PUT");
  CHECK(fake.seen[0].uri == "/bkt/root/dir/a%20b/c.txt");
  CHECK(fake.seen[0].body == "hello");
  CHECK(fake.seen[0].content_sha == sha256_hex("hello"));
  CHECK(fake.seen[0].if_none_match == "*");
  CHECK(fake.seen[0].authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKID/"));
  CHECK(fake.seen[0].authorization.find("/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;if-none-match;"
                                        "x-amz-content-sha256;x-amz-date, Signature=") != std::string::npos);
  SUBCASE("virtual-host style puts the bucket in the host name") {
    ClientConfig c = fake.config();
    c.addressing = Addressing::VirtualHost;
    c.endpoint = "http://localhost:" + std::to_string(fake.port());
    auto made = Client::create(nullptr, fake.http(), c);
    REQUIRE(made.has_value());
    CHECK((*made)->presign_get("k", std::chrono::seconds(60)).starts_with("http://bkt.localhost:" + std::to_string(fake.port()) + "/root/dir/k?X-Amz-Algorithm="));
  }
}

TEST_CASE("s3 client retries idempotent calls with backoff, then gives a typed error") {
  FakeS3 fake;
  SUBCASE("SlowDown twice, then success") {
    fake.replies = {{503, kSlowDown, {}, false}, {503, kSlowDown, {}, false}, {200, "", {{"ETag", "\"e\""}}, false}};
    std::optional<std::expected<std::string, S3Error>> got;
    fake.s3().put_object("k", proxy::RequestBody::from_string("x"), PutOptions{}, [&](auto r) { got = r; });
    REQUIRE(fake.run_until([&] { return got.has_value(); }));
    CHECK(got->has_value());
    CHECK(fake.seen.size() == 3);
    for (const Seen& s : fake.seen) CHECK(s.body == "x");  // the body is sent again on each attempt
  }
  SUBCASE("5xx every time: the last error after `attempts` tries") {
    fake.replies = {{500, "<Error><Code>InternalError</Code><Message>boom</Message></Error>", {}, false}};
    std::optional<std::expected<void, S3Error>> got;
    fake.s3().delete_object("k", [&](auto r) { got = r; });
    REQUIRE(fake.run_until([&] { return got.has_value(); }));
    REQUIRE(!got->has_value());
    CHECK(got->error().status == 500);
    CHECK(got->error().code == "InternalError");
    CHECK(got->error().attempts == 4);
    CHECK(fake.seen.size() == 4);
  }
  SUBCASE("CreateMultipartUpload is tried once") {
    fake.replies = {{503, kSlowDown, {}, false}};
    std::optional<std::expected<std::string, S3Error>> got;
    fake.s3().create_multipart_upload("k", PutOptions{}, [&](auto r) { got = r; });
    REQUIRE(fake.run_until([&] { return got.has_value(); }));
    REQUIRE(!got->has_value());
    CHECK(got->error().code == "SlowDown");
    CHECK(fake.seen.size() == 1);
    CHECK(fake.seen[0].uri == "/bkt/root/dir/k?uploads=");
  }
  SUBCASE("404 NoSuchKey is not retried") {
    fake.replies = {{404, "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>", {}, false}};
    std::optional<std::expected<void, S3Error>> done;
    bool head = false;
    GetHandlers h;
    h.on_head = [&](const ObjectInfo&) { head = true; };
    h.on_done = [&](auto r) { done = r; };
    fake.s3().get_object("missing", std::nullopt, std::move(h));
    REQUIRE(fake.run_until([&] { return done.has_value(); }));
    REQUIRE(!done->has_value());
    CHECK(done->error().code == "NoSuchKey");
    CHECK(done->error().status == 404);
    CHECK(!head);
    CHECK(fake.seen.size() == 1);
  }
  SUBCASE("a server that never answers times out on every attempt, then fails") {
    fake.replies = {{200, "", {}, true}};
    ClientConfig c = fake.config();
    c.retry.attempts = 2;
    std::optional<std::expected<ObjectInfo, S3Error>> got;
    fake.s3(c).head_object("k", [&](auto r) { got = r; });
    REQUIRE(fake.run_until([&] { return got.has_value(); }));
    REQUIRE(!got->has_value());
    CHECK(got->error().status == 0);
    CHECK(got->error().message.find("timeout") != std::string::npos);
    CHECK(got->error().attempts == 2);
  }
  SUBCASE("CopyObject's 200 with an <Error> body is an error (and retried)") {
    fake.replies = {{200, "<Error><Code>InternalError</Code><Message>copy failed</Message></Error>", {}, false},
                    {200, "<CopyObjectResult><ETag>\"c\"</ETag></CopyObjectResult>", {}, false}};
    std::optional<std::expected<std::string, S3Error>> got;
    fake.s3().copy_object("src", "dst", PutOptions{}, [&](auto r) { got = r; });
    REQUIRE(fake.run_until([&] { return got.has_value(); }));
    REQUIRE(got->has_value());
    CHECK(**got == "\"c\"");
    CHECK(fake.seen.size() == 2);
  }
}

TEST_CASE("s3 client unreachable endpoint gives a transport error, never a hang") {
  FakeS3 fake;
  ClientConfig c = fake.config();
  int closed_port = 0;
  {
    FakeS3 other;  // a port that was listening a moment ago and is closed now
    closed_port = other.port();
  }
  c.endpoint = "http://127.0.0.1:" + std::to_string(closed_port);
  c.retry.attempts = 3;
  std::optional<std::expected<void, S3Error>> got;
  fake.s3(c).head_bucket([&](auto r) { got = r; });
  REQUIRE(fake.run_until([&] { return got.has_value(); }));
  REQUIRE(!got->has_value());
  CHECK(got->error().status == 0);
  CHECK(got->error().code == "Transport");
  CHECK(got->error().attempts == 3);
}

TEST_CASE("s3 client listings: pages, root stripped, prefixes") {
  FakeS3 fake;
  fake.replies = {{200,
                   "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                   "<Contents><Key>root/dir/blobs/a</Key><Size>5</Size><ETag>\"x\"</ETag></Contents>"
                   "<Contents><Key>root/dir/blobs/b</Key><Size>7</Size></Contents>"
                   "<CommonPrefixes><Prefix>root/dir/blobs/sub/</Prefix></CommonPrefixes>"
                   "<IsTruncated>true</IsTruncated><NextContinuationToken>tok/2</NextContinuationToken></ListBucketResult>",
                   {},
                   false}};
  std::optional<std::expected<ListPage, S3Error>> got;
  ListRequest req;
  req.prefix = "blobs/";
  req.max_keys = 2;
  req.continuation_token = "tok/1";
  fake.s3().list_objects(req, [&](auto r) { got = r; });
  REQUIRE(fake.run_until([&] { return got.has_value(); }));
  REQUIRE(got->has_value());
  const ListPage& page = **got;
  REQUIRE(page.objects.size() == 2);
  CHECK(page.objects[0].key == "blobs/a");
  CHECK(page.objects[0].size == 5);
  CHECK(page.objects[1].key == "blobs/b");
  CHECK(page.common_prefixes == std::vector<std::string>{"blobs/sub/"});
  CHECK(page.truncated);
  CHECK(page.next_token == "tok/2");
  CHECK(fake.seen[0].uri == "/bkt?continuation-token=tok%2F1&list-type=2&max-keys=2&prefix=root%2Fdir%2Fblobs%2F");
  SUBCASE("a listing that is not XML is a typed error") {
    fake.replies = {{200, "garbage", {}, false}};
    std::optional<std::expected<ListPage, S3Error>> bad;
    fake.s3().list_objects(ListRequest{}, [&](auto r) { bad = r; });
    REQUIRE(fake.run_until([&] { return bad.has_value(); }));
    REQUIRE(!bad->has_value());
    CHECK(bad->error().code == "MalformedResponse");
  }
}

TEST_CASE("s3 client config is checked") {
  FakeS3 fake;
  ClientConfig c = fake.config();
  c.endpoint = "http://host/path";
  CHECK(Client::create(nullptr, fake.http(), c).error().starts_with("regionendpoint:"));
  c = fake.config();
  c.bucket = "";
  CHECK(Client::create(nullptr, fake.http(), c).error().starts_with("bucket:"));
}

TEST_CASE("s3 client streams a body from a reader that pauses and resumes (tried once)") {
  FakeS3 fake;
  fake.replies = {{200, "", {{"ETag", "\"r\""}}, false}};
  Client& s3 = fake.s3();
  int calls = 0;
  bool paused = false;
  const std::string text = "hello, paused world";
  size_t offset = 0;
  auto reader = [&](char* buf, size_t cap) -> size_t {
    ++calls;
    if (offset == 5 && !paused) {  // the producer has nothing yet: pause until resume()
      paused = true;
      return proxy::kBodyPause;
    }
    const size_t n = std::min<size_t>({cap, offset < 5 ? 5 - offset : text.size() - offset});
    std::memcpy(buf, text.data() + offset, n);
    offset += n;
    return n;
  };
  std::optional<std::expected<std::string, S3Error>> got;
  const uint64_t id = s3.put_object("r", proxy::RequestBody::from_reader(text.size(), reader), PutOptions{}, [&](auto r) { got = r; });
  REQUIRE(fake.run_until([&] { return paused; }));
  CHECK(!got.has_value());
  s3.resume(id);
  REQUIRE(fake.run_until([&] { return got.has_value(); }));
  REQUIRE(got->has_value());
  REQUIRE(fake.seen.size() == 1);
  CHECK(fake.seen[0].body == text);
  CHECK(fake.seen[0].content_sha == "UNSIGNED-PAYLOAD");
  SUBCASE("a reader-bodied call is not retried") {
    fake.replies = {{503, kSlowDown, {}, false}};
    offset = 0;
    paused = true;
    std::optional<std::expected<std::string, S3Error>> failed;
    s3.put_object("r2", proxy::RequestBody::from_reader(text.size(), reader), PutOptions{}, [&](auto r) { failed = r; });
    REQUIRE(fake.run_until([&] { return failed.has_value(); }));
    REQUIRE(!failed->has_value());
    CHECK(failed->error().attempts == 1);
    CHECK(fake.seen.size() == 2);
  }
}

TEST_CASE("s3 client cancel from inside a callback stops the call quietly") {
  FakeS3 fake;
  fake.replies = {{200, std::string(64 * 1024, 'a'), {}, false}};
  Client& s3 = fake.s3();
  uint64_t id = 0;
  bool head = false;
  bool done = false;
  GetHandlers h;
  h.on_head = [&](const ObjectInfo& info) {
    head = true;
    CHECK(info.size == 64 * 1024);
    s3.cancel(id);
  };
  h.on_data = [&](const char*, size_t) { return true; };
  h.on_done = [&](auto) { done = true; };
  id = s3.get_object("k", std::nullopt, std::move(h));
  REQUIRE(fake.run_until([&] { return head; }));
  fake.run_until([] { return false; }, 200);  // let the loop settle; nothing may call back
  CHECK_FALSE(done);
}

TEST_CASE("s3 client a request body that stops moving times out instead of hanging") {
  FakeS3 fake;
  ClientConfig c = fake.config();
  c.stall_timeout = std::chrono::milliseconds(300);
  Client& s3 = fake.s3(c);
  bool sent_some = false;
  auto reader = [&](char* buf, size_t) -> size_t {
    if (sent_some) return proxy::kBodyPause;  // and nobody ever resumes
    sent_some = true;
    buf[0] = 'x';
    return 1;
  };
  std::optional<std::expected<std::string, S3Error>> got;
  s3.put_object("stuck", proxy::RequestBody::from_reader(100, reader), PutOptions{}, [&](auto r) { got = r; });
  REQUIRE(fake.run_until([&] { return got.has_value(); }));
  REQUIRE(!got->has_value());
  CHECK(got->error().status == 0);
  CHECK(got->error().message.find("request body stalled") != std::string::npos);
}

TEST_CASE("s3 client GetObject held back by hold() pauses, then resumes with every byte in order") {
  FakeS3 fake;
  std::string body(1 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = char('a' + (i * 7 + i / 4096) % 26);
  fake.replies = {{200, body, {}, false}};
  ClientConfig c = fake.config();
  c.stall_timeout = std::chrono::milliseconds(300);  // a held GET must not count as stalled
  Client& s3 = fake.s3(c);
  uint64_t id = 0;
  std::string got;
  int holds = 0;
  bool want = false;  // the consumer asks for one piece at a time
  std::optional<std::expected<void, S3Error>> done;
  GetHandlers h;
  h.on_head = [](const ObjectInfo&) {};
  h.hold = [&] {
    if (want) return false;
    ++holds;
    return true;
  };
  h.on_data = [&](const char* p, size_t n) {
    CHECK(want);
    want = false;
    got.append(p, n);
    return true;
  };
  h.on_done = [&](auto r) { done = r; };
  id = s3.get_object("k", std::nullopt, std::move(h));
  for (int i = 0; i < 1000 && !done; ++i) {
    fake.run_until([&] { return holds > 0 || done.has_value(); }, 2000);
    if (done) break;
    if (i == 0) fake.run_until([] { return false; }, 500);  // held longer than the stall timeout
    want = true;
    holds = 0;
    s3.resume(id);  // the held piece may arrive right here
  }
  REQUIRE(done.has_value());
  CHECK(done->has_value());
  CHECK(got.size() == body.size());
  CHECK(got == body);
}
