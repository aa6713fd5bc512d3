// The S3 blob store's pure parts (keys under registry:2's layout, S3 timestamps) and the bridge that lets
// blocking callers use the loop's S3 client: a worker's call completes on the loop; a call on the loop
// thread is refused instead of deadlocking; close() releases waiters.
#include <doctest/doctest.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <atomic>
#include <thread>

#include "cache/s3/s3_bridge.hpp"
#include "cache/s3/s3_store.hpp"
#include "proxy/http_client.hpp"

using namespace wharf;
using namespace wharf::cache;

TEST_CASE("S3BlobStore::blob_key follows registry:2's layout and digest_of_key inverts it") {
  auto d = oci::parse_digest("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  REQUIRE(d);
  const std::string key = S3BlobStore::blob_key(*d);
  CHECK(key == "docker/registry/v2/blobs/sha256/2c/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824/data");
  auto back = S3BlobStore::digest_of_key(key);
  REQUIRE(back);
  CHECK(*back == *d);
  SUBCASE("other keys are not blobs") {
    CHECK_FALSE(S3BlobStore::digest_of_key("docker/registry/v2/blobs/sha256/2c/2cf24dba/data"));
    CHECK_FALSE(S3BlobStore::digest_of_key(key.substr(0, key.size() - 5)));  // no /data
    CHECK_FALSE(S3BlobStore::digest_of_key(key + "x"));
    std::string wrong_fan = key;
    wrong_fan.replace(wrong_fan.find("/2c/"), 4, "/ff/");
    CHECK_FALSE(S3BlobStore::digest_of_key(wrong_fan));
    CHECK_FALSE(S3BlobStore::digest_of_key("docker/registry/v2/repositories/x/_layers/sha256/2c/link"));
    CHECK_FALSE(S3BlobStore::digest_of_key(""));
  }
}

TEST_CASE("S3BlobStore::parse_time reads S3's LastModified") {
  CHECK(S3BlobStore::parse_time("1970-01-01T00:00:10.000Z") == 10);
  CHECK(S3BlobStore::parse_time("2026-12-01T11:00:00.000Z") == 1796122800);
  CHECK(S3BlobStore::parse_time("2026-12-01T11:00:00Z") == 1796122800);
  CHECK(S3BlobStore::parse_time("yesterday") == 0);
  CHECK(S3BlobStore::parse_time("2026-12-01 11:00:00") == 0);
  CHECK(S3BlobStore::parse_time("") == 0);
}

TEST_CASE("S3Bridge runs a worker's call on the loop and refuses one on the loop thread") {
  evthread_use_pthreads();
  event_base* base = event_base_new();
  REQUIRE(base);
  {
    auto http = proxy::HttpClient::create(base);
    REQUIRE(http.has_value());
    // Built from strings moved in: assigning literals trips GCC 12's -Wrestrict false positive at -O3.
    s3::ClientConfig cfg;
    cfg.endpoint = std::string("http://127.0.0.1:1");  // nothing listens: a quick transport failure
    cfg.region = std::string("us-east-1");
    cfg.bucket = std::string("b");
    cfg.credentials.access_key = std::string("AKIDEXAMPLE");
    cfg.credentials.secret_key = std::string("secret");
    cfg.retry.attempts = 1;
    auto client = s3::Client::create(base, **http, cfg);
    REQUIRE(client.has_value());
    S3Bridge bridge(base, **client, S3Bridge::Mode::Shared);
    auto head = [](s3::Client& c, s3::Done<void> done) { return c.head_bucket(std::move(done)); };

    auto on_loop = bridge.call<void>(head);  // this thread constructed the bridge: it is the loop thread
    REQUIRE_FALSE(on_loop.has_value());
    CHECK(on_loop.error().message.find("event loop") != std::string::npos);

    std::atomic<bool> finished{false};
    std::optional<std::expected<void, s3::S3Error>> from_worker;
    std::thread worker([&] {
      from_worker = bridge.call<void>(head);
      finished = true;
    });
    for (int i = 0; i < 2000 && !finished; ++i) {
      timeval tick{0, 10'000};
      event_base_loopexit(base, &tick);
      event_base_dispatch(base);
    }
    worker.join();
    REQUIRE(from_worker.has_value());
    REQUIRE_FALSE(from_worker->has_value());
    CHECK(from_worker->error().status == 0);  // the transport failure came back through the bridge

    SUBCASE("close() releases a waiter whose loop no longer runs") {
      std::thread late([&] { from_worker = bridge.call<void>(head); });
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      bridge.close();
      late.join();
      event_base_loop(base, EVLOOP_NONBLOCK);  // runs the posted call (the client cancels it below)
      REQUIRE_FALSE(from_worker->has_value());
      CHECK(from_worker->error().message.find("stopping") != std::string::npos);
    }
  }
  event_base_free(base);
}
