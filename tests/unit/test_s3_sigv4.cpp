// SigV4 against AWS's published vectors: the aws-sig-v4-test-suite (AKIDEXAMPLE, service "service") and the
// S3 API reference's examples (AKIAIOSFODNN7EXAMPLE, examplebucket, 2013-05-24), signatures compared exactly.
#include <doctest/doctest.h>

#include "src/s3/sigv4.hpp"

using namespace wharf::s3;

namespace {

const Credentials kSuite{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const Credentials kS3Docs{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
constexpr std::string_view kSuiteDate = "20150830T123600Z";
constexpr std::string_view kS3Date = "20130524T000000Z";

std::string suite_auth(const std::string& sig, const std::string& signed_headers = "host;x-amz-date") {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=" +
         signed_headers + ", Signature=" + sig;
}

}  // namespace

TEST_CASE("sigv4 aws test suite vectors") {
  const Scope scope{"us-east-1", "service"};
  SUBCASE("get-vanilla") {
    const SignInput in{"GET", "/", {}, {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
                       kEmptySha256};
    std::string signed_headers;
    CHECK(canonical_request(in, signed_headers) ==
          "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(authorization(kSuite, scope, kSuiteDate, in) ==
          suite_auth("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
  }
  SUBCASE("get-vanilla-query-order-key-case") {
    const SignInput in{"GET",
                       "/",
                       {{"Param2", "value2"}, {"Param1", "value1"}},
                       {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
                       kEmptySha256};
    CHECK(authorization(kSuite, scope, kSuiteDate, in) ==
          suite_auth("b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
  }
  SUBCASE("post-x-www-form-urlencoded") {
    const std::string body_hash = sha256_hex("Param1=value1");
    const SignInput in{"POST",
                       "/",
                       {},
                       {{"Content-Type", "application/x-www-form-urlencoded"},
                        {"Host", "example.amazonaws.com"},
                        {"X-Amz-Date", "20150830T123600Z"}},
                       body_hash};
    std::string signed_headers;
    const std::string canonical = canonical_request(in, signed_headers);
    CHECK(string_to_sign(kSuiteDate, scope, canonical) ==
          "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
          "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281");
    CHECK(authorization(kSuite, scope, kSuiteDate, in) ==
          suite_auth("ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a", "content-type;host;x-amz-date"));
  }
  SUBCASE("header values are trimmed and folded; a changed value changes the signature") {
    SignInput in{"GET", "/", {}, {{"Host", "  example.amazonaws.com "}, {"X-Amz-Date", "20150830T123600Z"}}, kEmptySha256};
    CHECK(signature(kSuite, scope, kSuiteDate, in) == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    in.headers[0].second = "example.amazonaws.org";
    CHECK(signature(kSuite, scope, kSuiteDate, in) != "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  }
}

TEST_CASE("sigv4 s3 header-based examples") {
  const Scope scope{"us-east-1", "s3"};
  const std::string host = "examplebucket.s3.amazonaws.com";
  SUBCASE("GET object with Range") {
    const SignInput in{"GET",
                       "/test.txt",
                       {},
                       {{"Host", host},
                        {"Range", "bytes=0-9"},
                        {"x-amz-content-sha256", std::string(kEmptySha256)},
                        {"x-amz-date", std::string(kS3Date)}},
                       kEmptySha256};
    CHECK(authorization(kS3Docs, scope, kS3Date, in) ==
          "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
          "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
          "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  }
  SUBCASE("PUT object: the key is encoded once ($ → %24)") {
    const std::string payload = sha256_hex("Welcome to Amazon S3.");
    CHECK(payload == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    const SignInput in{"PUT",
                       "/test$file.text",
                       {},
                       {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                        {"Host", host},
                        {"x-amz-content-sha256", payload},
                        {"x-amz-date", std::string(kS3Date)},
                        {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                       payload};
    std::string signed_headers;
    CHECK(canonical_request(in, signed_headers).starts_with("PUT\n/test%24file.text\n\n"));
    CHECK(signature(kS3Docs, scope, kS3Date, in) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  }
  SUBCASE("GET bucket lifecycle: a valueless parameter signs as lifecycle=") {
    const SignInput in{"GET",
                       "/",
                       {{"lifecycle", ""}},
                       {{"Host", host}, {"x-amz-content-sha256", std::string(kEmptySha256)}, {"x-amz-date", std::string(kS3Date)}},
                       kEmptySha256};
    CHECK(signature(kS3Docs, scope, kS3Date, in) == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  }
  SUBCASE("GET bucket (list objects), query sorted") {
    const SignInput in{"GET",
                       "/",
                       {{"prefix", "J"}, {"max-keys", "2"}},
                       {{"Host", host}, {"x-amz-content-sha256", std::string(kEmptySha256)}, {"x-amz-date", std::string(kS3Date)}},
                       kEmptySha256};
    CHECK(signature(kS3Docs, scope, kS3Date, in) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  }
}

TEST_CASE("sigv4 presigned url matches the S3 query-parameter example") {
  const Scope scope{"us-east-1", "s3"};
  const SignInput in{"GET", "/test.txt", {}, {{"Host", "examplebucket.s3.amazonaws.com"}}, ""};
  const std::string q = presign_query(kS3Docs, scope, kS3Date, std::chrono::seconds(86400), in);
  CHECK(q ==
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  SUBCASE("expiry is clamped to S3's 7 days") {
    const std::string week = presign_query(kS3Docs, scope, kS3Date, std::chrono::seconds(30 * 86400), in);
    CHECK(week.find("X-Amz-Expires=604800&") != std::string::npos);
  }
}

TEST_CASE("sigv4 encoding and dates") {
  CHECK(uri_encode("a b/c~d_e.f-g+h=", false) == "a%20b/c~d_e.f-g%2Bh%3D");
  CHECK(uri_encode("a/b", true) == "a%2Fb");
  CHECK(uri_encode("\xc3\xa9", true) == "%C3%A9");
  CHECK(canonical_query({{"uploads", ""}, {"b", "2"}, {"a", "x y"}}) == "a=x%20y&b=2&uploads=");
  CHECK(amz_date(std::chrono::system_clock::time_point(std::chrono::seconds(1369353600))) == "20130524T000000Z");
  CHECK(hex(signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", Scope{"us-east-1", "iam"})) ==
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}
