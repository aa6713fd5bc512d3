#include <doctest/doctest.h>

#include <string>
#include <utility>

#include "src/oci/digest.hpp"

using namespace wharf::oci;

namespace {
const std::string kEmpty256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string kAbc256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string kAbc512 =
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
}  // namespace

TEST_CASE("Digest::str") {
  SUBCASE("sha256") { CHECK(Digest{DigestAlgo::Sha256, kAbc256}.str() == "sha256:" + kAbc256); }
  SUBCASE("sha512") { CHECK(Digest{DigestAlgo::Sha512, kAbc512}.str() == "sha512:" + kAbc512); }
}

TEST_CASE("parse_digest") {
  SUBCASE("valid sha256 round-trips") {
    const auto d = parse_digest("sha256:" + kAbc256);
    REQUIRE(d);
    CHECK(d->algo == DigestAlgo::Sha256);
    CHECK(d->hex == kAbc256);
    CHECK(d->str() == "sha256:" + kAbc256);
  }
  SUBCASE("valid sha512") {
    const auto d = parse_digest("sha512:" + kAbc512);
    REQUIRE(d);
    CHECK(d->algo == DigestAlgo::Sha512);
    CHECK(d->hex == kAbc512);
  }
  SUBCASE("uppercase hex is rejected") {
    std::string upper = kAbc256;
    upper[0] = 'B';
    CHECK_FALSE(parse_digest("sha256:" + upper));
  }
  SUBCASE("wrong length is rejected") {
    CHECK_FALSE(parse_digest("sha256:" + kAbc256.substr(1)));
    CHECK_FALSE(parse_digest("sha256:" + kAbc256 + "0"));
    CHECK_FALSE(parse_digest("sha512:" + kAbc256));
    CHECK_FALSE(parse_digest("sha256:" + kAbc512));
  }
  SUBCASE("empty and truncated forms are rejected") {
    CHECK_FALSE(parse_digest(""));
    CHECK_FALSE(parse_digest("sha256:"));
    CHECK_FALSE(parse_digest("sha256"));
    CHECK_FALSE(parse_digest(":" + kAbc256));
    CHECK_FALSE(parse_digest(kAbc256));
  }
  SUBCASE("unknown algorithm is rejected") {
    CHECK_FALSE(parse_digest("md5:d41d8cd98f00b204e9800998ecf8427e"));
    CHECK_FALSE(parse_digest("SHA256:" + kAbc256));
  }
  SUBCASE("non-hex characters are rejected") {
    std::string bad = kAbc256;
    bad[10] = 'g';
    CHECK_FALSE(parse_digest("sha256:" + bad));
    CHECK_FALSE(parse_digest("sha256: " + kAbc256.substr(1)));
  }
}

TEST_CASE("Hasher") {
  SUBCASE("incremental updates equal a one-shot digest") {
    Hasher h;
    h.update("a");
    h.update(std::string_view("b"));
    h.update("c", 1);
    CHECK(h.finish().str() == "sha256:" + kAbc256);
  }
  SUBCASE("no input gives the empty digest") {
    Hasher h;
    CHECK(h.finish().hex == kEmpty256);
  }
  SUBCASE("sha512") {
    Hasher h(DigestAlgo::Sha512);
    CHECK(h.algo() == DigestAlgo::Sha512);
    h.update("ab");
    h.update("c");
    const Digest d = h.finish();
    CHECK(d.algo == DigestAlgo::Sha512);
    CHECK(d.hex == kAbc512);
  }
  SUBCASE("a moved-to hasher keeps the running state") {
    Hasher a;
    a.update("ab");
    Hasher b(std::move(a));
    b.update("c");
    CHECK(b.finish().hex == kAbc256);
  }
  SUBCASE("move assignment replaces the state") {
    Hasher a(DigestAlgo::Sha512);
    a.update("abc");
    Hasher b;
    b.update("zzz");
    b = std::move(a);
    CHECK(b.algo() == DigestAlgo::Sha512);
    CHECK(b.finish().hex == kAbc512);
  }
}

TEST_CASE("digest_of") {
  SUBCASE("sha256 of empty") { CHECK(digest_of("").hex == kEmpty256); }
  SUBCASE("sha256 of abc") { CHECK(digest_of("abc") == Digest{DigestAlgo::Sha256, kAbc256}); }
  SUBCASE("sha512 of abc") { CHECK(digest_of("abc", DigestAlgo::Sha512).hex == kAbc512); }
  SUBCASE("result parses back") {
    const Digest d = digest_of("hello");
    CHECK(parse_digest(d.str()) == d);
  }
}
