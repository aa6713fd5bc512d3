// The S3 client against a real S3 (tests/e2e/test_s3.py runs these against a Ceph RGW it started):
// multipart upload with parts over 5 MiB (from memory and from a file range), ranged GET, ListObjectsV2
// pagination, copies, abort, a typed NoSuchKey, If-None-Match, and a presigned URL that test_s3.py then
// fetches with curl. Enabled by WHARF_TEST_S3_ENDPOINT (+ _ACCESS_KEY, _SECRET_KEY, _BUCKET); with
// WHARF_TEST_S3_REQUIRED=1 a missing variable is a failure, so the e2e run cannot pass by skipping.
#include <doctest/doctest.h>
#include <event2/event.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "src/s3/client.hpp"

using namespace wharf;
using namespace wharf::s3;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// A client on its own loop, with a blocking helper for each call (a test drives one call at a time).
class Live {
 public:
  explicit Live(ClientConfig cfg) : base_(event_base_new()) {
    auto h = proxy::HttpClient::create(base_);
    REQUIRE(h.has_value());
    http_ = std::move(*h);
    auto c = Client::create(base_, *http_, std::move(cfg));
    REQUIRE(c.has_value());
    s3_ = std::move(*c);
  }
  ~Live() {
    s3_.reset();
    http_.reset();
    event_base_free(base_);
  }
  Client& s3() { return *s3_; }

  // Starts a call through `start(done)` and runs the loop until it reports (at most 120 s).
  template <typename T, typename Start>
  std::expected<T, S3Error> wait(Start start) {
    std::optional<std::expected<T, S3Error>> out;
    start([&](std::expected<T, S3Error> r) { out = std::move(r); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!out && std::chrono::steady_clock::now() < deadline) event_base_loop(base_, EVLOOP_ONCE);
    REQUIRE_MESSAGE(out.has_value(), "the S3 call did not finish within 120 s");
    return std::move(*out);
  }

  // GETs (a range of) an object into memory.
  std::expected<std::string, S3Error> get(const std::string& key, std::optional<ByteRange> range = std::nullopt) {
    auto body = std::make_shared<std::string>();
    auto r = wait<void>([&](Done<void> done) {
      GetHandlers h;
      h.on_data = [body](const char* p, size_t n) {
        body->append(p, n);
        return true;
      };
      h.on_done = std::move(done);
      s3_->get_object(key, range, std::move(h));
    });
    if (!r) return std::unexpected(r.error());
    return *body;
  }

 private:
  event_base* base_;
  std::unique_ptr<proxy::HttpClient> http_;
  std::unique_ptr<Client> s3_;
};

std::string pattern(size_t size, unsigned seed) {
  std::string out(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : out) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

std::optional<ClientConfig> live_config() {
  ClientConfig c;
  c.endpoint = env("WHARF_TEST_S3_ENDPOINT");
  c.credentials = {env("WHARF_TEST_S3_ACCESS_KEY"), env("WHARF_TEST_S3_SECRET_KEY"), ""};
  c.bucket = env("WHARF_TEST_S3_BUCKET");
  c.region = env("WHARF_TEST_S3_REGION").empty() ? "us-east-1" : env("WHARF_TEST_S3_REGION");
  c.root = "/live-root";
  if (c.endpoint.empty() || c.credentials.access_key.empty() || c.credentials.secret_key.empty() || c.bucket.empty()) {
    const bool required = env("WHARF_TEST_S3_REQUIRED") == "1";
    if (required) FAIL("WHARF_TEST_S3_REQUIRED=1 but WHARF_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY/_BUCKET are not all set");
    return std::nullopt;
  }
  return c;
}

}  // namespace

TEST_CASE("s3 live: bucket, objects, multipart, ranges, listing, copies, abort, presign") {
  const auto cfg = live_config();
  if (!cfg) return;  // not configured (the e2e run sets WHARF_TEST_S3_REQUIRED=1)
  Live live(*cfg);
  Client& s3 = live.s3();
  REQUIRE(live.wait<void>([&](auto done) { s3.create_bucket(std::move(done)); }).has_value());
  REQUIRE(live.wait<void>([&](auto done) { s3.head_bucket(std::move(done)); }).has_value());

  // A small object, then If-None-Match: * on the same key.
  const std::string small = "hello from wharf\n";
  PutOptions once;
  once.if_none_match = true;
  REQUIRE(live.wait<std::string>([&](auto done) { s3.put_object("small.txt", proxy::RequestBody::from_string(small), once, std::move(done)); }));
  auto again = live.wait<std::string>([&](auto done) { s3.put_object("small.txt", proxy::RequestBody::from_string("x"), once, std::move(done)); });
  REQUIRE(!again.has_value());
  CHECK(again.error().status == 412);
  CHECK(live.get("small.txt").value() == small);

  // NoSuchKey, typed.
  auto missing = live.get("no/such/key");
  REQUIRE(!missing.has_value());
  CHECK(missing.error().status == 404);
  CHECK(missing.error().code == "NoSuchKey");
  auto missing_head = live.wait<ObjectInfo>([&](auto done) { s3.head_object("no/such/key", std::move(done)); });
  REQUIRE(!missing_head.has_value());
  CHECK(missing_head.error().status == 404);

  // Multipart: part 1 (6 MiB) from memory, part 2 (6 MiB) from a file range, part 3 (1 MiB) from memory.
  const size_t part = 6u << 20;
  const std::string p1 = pattern(part, 1), p2 = pattern(part, 2), p3 = pattern(1u << 20, 3);
  char path[] = "/tmp/wharf-s3-live-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  unlink(path);
  const std::string file = std::string(4096, 'z') + p2;
  REQUIRE(write(fd, file.data(), file.size()) == static_cast<ssize_t>(file.size()));
  const auto started = std::chrono::steady_clock::now();
  auto upload = live.wait<std::string>([&](auto done) { s3.create_multipart_upload("big.bin", PutOptions{}, std::move(done)); });
  REQUIRE(upload.has_value());
  std::printf("s3 live: CreateMultipartUpload in %.2f s (the first in a bucket: RGW may create its non-ec pool)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  std::vector<Part> parts;
  const auto parts_started = std::chrono::steady_clock::now();
  for (int n = 1; n <= 3; ++n) {
    proxy::RequestBody body = n == 1   ? proxy::RequestBody::from_string(p1)
                              : n == 2 ? proxy::RequestBody::from_fd(fd, 4096, part)
                                       : proxy::RequestBody::from_string(p3);
    const auto part_started = std::chrono::steady_clock::now();
    auto etag = live.wait<std::string>([&](auto done) { s3.upload_part("big.bin", *upload, n, std::move(body), std::move(done)); });
    REQUIRE_MESSAGE(etag.has_value(), etag.error().str());
    std::printf("s3 live: part %d (%s) in %.2f s\n", n, n == 2 ? "file range" : "memory",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - part_started).count());
    parts.push_back({n, *etag});
  }
  auto completed = live.wait<std::string>([&](auto done) { s3.complete_multipart_upload("big.bin", *upload, parts, std::move(done)); });
  REQUIRE_MESSAGE(completed.has_value(), completed.error().str());
  std::printf("s3 live: parts 1-3 uploaded and completed in %.2f s since the upload was created\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - parts_started).count());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double mib = (2.0 * part + p3.size()) / (1 << 20);
  std::printf("s3 live: multipart upload of %.0f MiB in %.2f s (%.1f MiB/s)\n", mib, secs, mib / secs);
  ::close(fd);
  auto info = live.wait<ObjectInfo>([&](auto done) { s3.head_object("big.bin", std::move(done)); });
  REQUIRE(info.has_value());
  CHECK(info->size == 2 * part + p3.size());
  // A range across the first part boundary.
  auto range = live.get("big.bin", ByteRange{part - 10, part + 9});
  REQUIRE(range.has_value());
  CHECK(*range == p1.substr(part - 10) + p2.substr(0, 10));
  const auto get_started = std::chrono::steady_clock::now();
  auto whole = live.get("big.bin");
  const double get_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - get_started).count();
  std::printf("s3 live: GET of %.0f MiB in %.2f s (%.1f MiB/s)\n", mib, get_secs, mib / get_secs);
  REQUIRE(whole.has_value());
  CHECK(*whole == p1 + p2 + p3);

  // Server-side copies: CopyObject, and UploadPartCopy of two ranges.
  auto copied_small = live.wait<std::string>([&](auto done) { s3.copy_object("small.txt", "copy/small.txt", PutOptions{}, std::move(done)); });
  REQUIRE_MESSAGE(copied_small.has_value(), copied_small.error().str());
  CHECK(live.get("copy/small.txt").value() == small);
  auto up2 = live.wait<std::string>([&](auto done) { s3.create_multipart_upload("copy/big.bin", PutOptions{}, std::move(done)); });
  REQUIRE(up2.has_value());
  std::vector<Part> copied;
  const ByteRange halves[] = {{0, part - 1}, {part, 2 * part + p3.size() - 1}};
  for (int n = 1; n <= 2; ++n) {
    auto etag = live.wait<std::string>([&](auto done) {
      s3.upload_part_copy("copy/big.bin", *up2, n, "big.bin", halves[n - 1], std::move(done));
    });
    REQUIRE_MESSAGE(etag.has_value(), etag.error().str());
    copied.push_back({n, *etag});
  }
  REQUIRE(live.wait<std::string>([&](auto done) { s3.complete_multipart_upload("copy/big.bin", *up2, copied, std::move(done)); }));
  auto copy_info = live.wait<ObjectInfo>([&](auto done) { s3.head_object("copy/big.bin", std::move(done)); });
  REQUIRE(copy_info.has_value());
  CHECK(copy_info->size == info->size);

  // ListObjectsV2 in pages of 2.
  for (int i = 0; i < 5; ++i) {
    REQUIRE(live.wait<std::string>([&](auto done) {
      s3.put_object("list/k" + std::to_string(i), proxy::RequestBody::from_string(std::to_string(i)), PutOptions{}, std::move(done));
    }));
  }
  std::vector<std::string> keys;
  std::string token;
  int pages = 0;
  for (; pages < 10; ++pages) {
    ListRequest req;
    req.prefix = "list/";
    req.max_keys = 2;
    req.continuation_token = token;
    auto page = live.wait<ListPage>([&](auto done) { s3.list_objects(req, std::move(done)); });
    REQUIRE(page.has_value());
    CHECK(page->objects.size() <= 2);
    for (const auto& o : page->objects) keys.push_back(o.key);
    if (!page->truncated) break;
    token = page->next_token;
  }
  CHECK(pages == 2);  // three pages: 2 + 2 + 1
  CHECK(keys == std::vector<std::string>{"list/k0", "list/k1", "list/k2", "list/k3", "list/k4"});

  // Abort: the upload disappears from ListMultipartUploads.
  auto up3 = live.wait<std::string>([&](auto done) { s3.create_multipart_upload("aborted.bin", PutOptions{}, std::move(done)); });
  REQUIRE(up3.has_value());
  REQUIRE(live.wait<std::string>([&](auto done) { s3.upload_part("aborted.bin", *up3, 1, proxy::RequestBody::from_string(p3), std::move(done)); }));
  auto listed = live.wait<UploadsPage>([&](auto done) { s3.list_multipart_uploads("aborted", "", "", std::move(done)); });
  REQUIRE(listed.has_value());
  REQUIRE(listed->uploads.size() == 1);
  CHECK(listed->uploads[0].key == "aborted.bin");
  CHECK(listed->uploads[0].upload_id == *up3);
  REQUIRE(live.wait<void>([&](auto done) { s3.abort_multipart_upload("aborted.bin", *up3, std::move(done)); }));
  listed = live.wait<UploadsPage>([&](auto done) { s3.list_multipart_uploads("aborted", "", "", std::move(done)); });
  REQUIRE(listed.has_value());
  CHECK(listed->uploads.empty());
  auto gone = live.wait<std::string>([&](auto done) { s3.upload_part("aborted.bin", *up3, 2, proxy::RequestBody::from_string("x"), std::move(done)); });
  REQUIRE(!gone.has_value());
  CHECK(gone.error().code == "NoSuchUpload");

  // Delete, then the key is gone.
  REQUIRE(live.wait<void>([&](auto done) { s3.delete_object("copy/small.txt", std::move(done)); }));
  CHECK(live.get("copy/small.txt").error().code == "NoSuchKey");

  // A presigned URL for test_s3.py to fetch with curl (no credentials, no headers).
  if (const std::string out = env("WHARF_TEST_S3_PRESIGN_OUT"); !out.empty()) {
    std::ofstream(out) << s3.presign_get("small.txt", std::chrono::seconds(300)) << "\n";
    std::ofstream(out + ".expected") << small;
  }
}
