// The bounded XML reader and S3 error bodies.
#include <doctest/doctest.h>

#include "src/s3/error.hpp"
#include "src/s3/xml.hpp"

using namespace wharf::s3;

TEST_CASE("s3 xml reads S3's answers") {
  SUBCASE("a listing with namespaces, entities and a declaration") {
    const auto doc = parse_xml(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
        "<Contents><Key>a&amp;b &lt;c&gt; &#233;&#x41;</Key><Size>12</Size></Contents>"
        "<Contents><Key>d</Key><Size>3</Size></Contents><!-- note --><IsTruncated>false</IsTruncated>"
        "<Empty/><s3:Prefixed>p</s3:Prefixed><C><![CDATA[x<y]]></C></ListBucketResult>");
    REQUIRE(doc.has_value());
    CHECK(doc->name == "ListBucketResult");
    REQUIRE(doc->all("Contents").size() == 2);
    CHECK(doc->all("Contents")[0]->child_text("Key") == "a&b <c> \xc3\xa9" "A");
    CHECK(doc->child_text("IsTruncated") == "false");
    CHECK(doc->child("Empty") != nullptr);
    CHECK(doc->child_text("Prefixed") == "p");
    CHECK(doc->child_text("C") == "x<y");
    CHECK(doc->child("Missing") == nullptr);
    CHECK(doc->child_text("Missing").empty());
  }
  SUBCASE("malformed or hostile input is refused with the offset") {
    for (const char* bad : {"", "text", "<a>", "<a></b>", "<a><b></a>", "<a>&bogus;</a>", "<a>&#0;</a>", "<a>&#xD800;</a>",
                            "<a x=1></a>", "<!DOCTYPE a [<!ENTITY x \"y\">]><a/>", "<a/><b/>", "<a><!DOCTYPE x></a>",
                            "<a>&#99999999999;</a>", "<a", "<a><!-- </a>", "<-:>b</-:>", "<a><p:/></a>"}) {
      const auto doc = parse_xml(bad);
      CHECK_MESSAGE(!doc.has_value(), bad);
      if (!doc) CHECK(doc.error().starts_with("malformed XML at byte "));
    }
  }
  SUBCASE("limits: depth, elements, size") {
    std::string deep;
    for (int i = 0; i < 40; ++i) deep += "<a>";
    for (int i = 0; i < 40; ++i) deep += "</a>";
    CHECK(!parse_xml(deep).has_value());
    XmlLimits limits;
    limits.max_depth = 50;
    CHECK(parse_xml(deep, limits).has_value());
    std::string many = "<r>";
    for (int i = 0; i < 100; ++i) many += "<e/>";
    many += "</r>";
    limits.max_elements = 50;
    CHECK(!parse_xml(many, limits).has_value());
    limits.max_bytes = 10;
    CHECK(parse_xml("<r>0123456789</r>", limits).error().find("larger than") != std::string::npos);
  }
}

TEST_CASE("s3 error bodies become typed errors") {
  const S3Error e = error_from_response(
      404, "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
           "<RequestId>tx1</RequestId></Error>");
  CHECK(e.status == 404);
  CHECK(e.code == "NoSuchKey");
  CHECK(e.message == "The specified key does not exist.");
  CHECK(e.request_id == "tx1");
  CHECK(!e.retryable());
  CHECK(e.str() == "NoSuchKey (404): The specified key does not exist.");
  CHECK(error_from_response(503, "<Error><Code>SlowDown</Code></Error>").retryable());
  CHECK(error_from_response(400, "<Error><Code>RequestTimeout</Code></Error>").retryable());
  CHECK(error_from_response(404, "", "NoSuchBucket").code == "NoSuchBucket");
  CHECK(error_from_response(403, "not xml").code == "AccessDenied");
  CHECK(transport_error("Couldn't connect to server").retryable());
  CHECK(transport_error("x").str() == "no response: x");
}
