// The pure parts of S3 upload sessions: key layout, staged keys, copy-part planning, state sizes.
#include <doctest/doctest.h>

#include "cache/s3/s3_writer.hpp"

using namespace wharf::cache;

TEST_CASE("UploadKeys: a session's objects live under its directory, and listed keys name it") {
  const std::string id = "0123abcd-0000-0000-0000-000000000001";
  CHECK(UploadKeys::data(id) == "docker/registry/v2/_uploads/" + id + "/data");
  CHECK(UploadKeys::tail(id, 3) == "docker/registry/v2/_uploads/" + id + "/tail-3");
  CHECK(UploadKeys::id_of(UploadKeys::data(id)) == id);
  CHECK(UploadKeys::id_of(UploadKeys::tail(id, 0)) == id);
  CHECK_FALSE(UploadKeys::id_of("docker/registry/v2/blobs/sha256/ab/abcd/data"));
  CHECK_FALSE(UploadKeys::id_of("docker/registry/v2/_uploads/"));
  CHECK_FALSE(UploadKeys::id_of("docker/registry/v2/_uploads/no-slash"));
}

TEST_CASE("s3_upload_key: upload keys round-trip and local staged paths are not upload keys") {
  CHECK(s3_upload_id(s3_upload_key("abc")) == "abc");
  CHECK_FALSE(s3_upload_id(StagedKey("/var/lib/wharf/tmp/fetch-1")));
  CHECK_FALSE(s3_upload_id(StagedKey("s3-upload:")));
}

TEST_CASE("plan_copy_parts: contiguous ranges of the part size, at most 10,000 of them") {
  SUBCASE("empty") { CHECK(plan_copy_parts(0, 5 << 20).empty()); }
  SUBCASE("one short part") {
    auto r = plan_copy_parts(100, 5 << 20);
    REQUIRE(r.size() == 1);
    CHECK(r[0].first == 0);
    CHECK(r[0].last == 99);
  }
  SUBCASE("exact multiple and a remainder") {
    const uint64_t part = 32ull << 20;
    auto exact = plan_copy_parts(3 * part, part);
    REQUIRE(exact.size() == 3);
    CHECK(exact[2].first == 2 * part);
    CHECK(exact[2].last == 3 * part - 1);
    auto more = plan_copy_parts(3 * part + 1, part);
    REQUIRE(more.size() == 4);
    CHECK(more[3].first == 3 * part);
    CHECK(more[3].last == 3 * part);
  }
  SUBCASE("6 GiB in 32 MiB parts covers every byte once") {
    const uint64_t size = 6ull << 30;
    auto r = plan_copy_parts(size, 32ull << 20);
    CHECK(r.size() == 192);
    uint64_t next = 0;
    for (const auto& range : r) {
      CHECK(range.first == next);
      next = range.last + 1;
    }
    CHECK(next == size);
  }
  SUBCASE("a huge object grows the part so that 10,000 suffice") {
    const uint64_t size = 5ull << 40;  // 5 TiB, S3's object limit
    auto r = plan_copy_parts(size, 5ull << 20);
    CHECK(r.size() <= 10'000);
    CHECK(r.back().last == size - 1);
  }
}

TEST_CASE("UploadState: its size counts parts and tail, or the completed object") {
  UploadState st;
  CHECK(st.size() == 0);
  st.parts.push_back(wharf::s3::PartEntry{.number = 1, .etag = "\"a\"", .size = 5 << 20});
  st.parts.push_back(wharf::s3::PartEntry{.number = 2, .etag = "\"b\"", .size = 5 << 20});
  st.tail = "abc";
  CHECK(st.parts_size() == 10u << 20);
  CHECK(st.size() == (10u << 20) + 3);
  st.completed = 7;
  CHECK(st.size() == 7);
}
