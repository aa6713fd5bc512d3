#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "src/oci/errors.hpp"

using namespace wharf::oci;

TEST_CASE("error_info") {
  SUBCASE("client errors carry registry:2 wire names and statuses") {
    CHECK(error_info(ErrorCode::BlobUnknown).wire == "BLOB_UNKNOWN");
    CHECK(error_info(ErrorCode::BlobUnknown).status == 404);
    CHECK(error_info(ErrorCode::BlobUnknown).message == "blob unknown to registry");
    CHECK(error_info(ErrorCode::BlobUploadInvalid).status == 400);
    CHECK(error_info(ErrorCode::BlobUploadUnknown).status == 404);
    CHECK(error_info(ErrorCode::DigestInvalid).wire == "DIGEST_INVALID");
    CHECK(error_info(ErrorCode::ManifestBlobUnknown).status == 400);
    CHECK(error_info(ErrorCode::ManifestInvalid).status == 400);
    CHECK(error_info(ErrorCode::ManifestUnknown).status == 404);
    CHECK(error_info(ErrorCode::ManifestUnknown).message == "manifest unknown");
    CHECK(error_info(ErrorCode::NameInvalid).status == 400);
    CHECK(error_info(ErrorCode::NameUnknown).status == 404);
    CHECK(error_info(ErrorCode::NameUnknown).message == "repository name not known to registry");
    CHECK(error_info(ErrorCode::SizeInvalid).status == 400);
  }
  SUBCASE("access errors") {
    CHECK(error_info(ErrorCode::Unauthorized).wire == "UNAUTHORIZED");
    CHECK(error_info(ErrorCode::Unauthorized).status == 401);
    CHECK(error_info(ErrorCode::Unauthorized).message == "authentication required");
    CHECK(error_info(ErrorCode::Denied).status == 403);
    CHECK(error_info(ErrorCode::Denied).message == "requested access to the resource is denied");
    CHECK(error_info(ErrorCode::Unsupported).status == 405);
    CHECK(error_info(ErrorCode::Unsupported).message == "The operation is unsupported.");
    CHECK(error_info(ErrorCode::TooManyRequests).wire == "TOOMANYREQUESTS");
    CHECK(error_info(ErrorCode::TooManyRequests).status == 429);
  }
  SUBCASE("wharf extensions") {
    CHECK(error_info(ErrorCode::RangeInvalid).wire == "RANGE_INVALID");
    CHECK(error_info(ErrorCode::RangeInvalid).status == 416);
    CHECK(error_info(ErrorCode::RangeInvalid).message == "requested range not satisfiable");
    CHECK(error_info(ErrorCode::Unavailable).wire == "UNAVAILABLE");
    CHECK(error_info(ErrorCode::Unavailable).status == 503);
  }
  SUBCASE("every row is filled in") {
    for (int i = 0; i <= static_cast<int>(ErrorCode::Unavailable); ++i) {
      const ErrorInfo& info = error_info(static_cast<ErrorCode>(i));
      CHECK_FALSE(info.wire.empty());
      CHECK_FALSE(info.message.empty());
      CHECK(info.status >= 400);
    }
  }
}

// An Error built in its own function. GCC 12 -O2 with ASan reports a stack-buffer-overflow for an
// Error{...} brace temporary passed straight to error_body inside doctest's large test frame (it does
// not reproduce outside it; the e2e tests under ASan report nothing in the server's own calls).
Error make_error(ErrorCode code, std::string message, Detail detail) {
  Error e{};
  e.code = code;
  e.message = std::move(message);
  e.detail = std::move(detail);
  return e;
}

TEST_CASE("error_body") {
  using nlohmann::json;
  SUBCASE("default message, no detail") {
    const json j = json::parse(error_body(make_error(ErrorCode::ManifestUnknown, "", {})));
    REQUIRE(j["errors"].is_array());
    REQUIRE(j["errors"].size() == 1);
    CHECK(j["errors"][0]["code"] == "MANIFEST_UNKNOWN");
    CHECK(j["errors"][0]["message"] == "manifest unknown");
    CHECK_FALSE(j["errors"][0].contains("detail"));
  }
  SUBCASE("message override is escaped") {
    const std::string msg = "bad \"quote\" and \\ backslash\nnewline";
    const json j = json::parse(error_body(make_error(ErrorCode::NameInvalid, msg, {})));
    CHECK(j["errors"][0]["code"] == "NAME_INVALID");
    CHECK(j["errors"][0]["message"] == msg);
  }
  SUBCASE("detail is an object of escaped values") {
    const json j = json::parse(error_body(make_error(ErrorCode::DigestInvalid, "", {{"digest", "sha256:x"}})));
    REQUIRE(j["errors"][0]["detail"].is_object());
    CHECK(j["errors"][0]["detail"]["digest"] == "sha256:x");
  }
  SUBCASE("a value with quotes, backslashes or control bytes stays inside the object") {
    const std::string tag = std::string("a\"b\\c") + char(1) + "}\n";
    const json j = json::parse(error_body(make_error(ErrorCode::ManifestUnknown, "", {{"tag", tag}})));
    REQUIRE(j["errors"][0]["detail"].is_object());
    CHECK(j["errors"][0]["detail"]["tag"] == tag);
    CHECK(j["errors"][0]["detail"].size() == 1);
  }
  SUBCASE("list members") {
    Detail d;
    d.list("digests", {"sha256:a", "sha256:\"b"});
    const json j = json::parse(error_body(make_error(ErrorCode::ManifestBlobUnknown, "", d)));
    CHECK(j["errors"][0]["detail"]["digests"] == json::array({"sha256:a", "sha256:\"b"}));
  }
  SUBCASE("invalid UTF-8 in a detail value does not throw") {
    std::string body;
    CHECK_NOTHROW(body = error_body(make_error(ErrorCode::ManifestUnknown, "", {{"tag", "x\xff"}})));
    CHECK(json::accept(body));
  }
  SUBCASE("invalid UTF-8 in the message does not throw") {
    std::string body;
    CHECK_NOTHROW(body = error_body(make_error(ErrorCode::Denied, std::string("bad \xff byte"), {})));
    CHECK(json::accept(body));
  }
}
