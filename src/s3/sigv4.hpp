#pragma once
// AWS Signature Version 4 (the rules of AWS's "Create a signed AWS API request" and the S3 API reference's
// "Authenticating Requests"): canonical request, string to sign, signing key, the Authorization header and
// presigned URLs. Hashes and HMACs come from OpenSSL's EVP API; this file only arranges the text.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wharf::s3 {

// The access key pair (and an optional STS session token) requests are signed with.
struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // sent as x-amz-security-token when not empty
};

// A request as the signer sees it. Path and query are given decoded; the signer encodes them as S3 does.
struct SignInput {
  std::string_view method;                                  // "GET", "PUT", ...
  std::string_view path;                                    // decoded absolute path, e.g. "/bucket/a b.txt"
  std::vector<std::pair<std::string, std::string>> query;   // decoded name/value pairs (value may be empty)
  std::vector<std::pair<std::string, std::string>> headers; // every header to sign, host included (any case)
  std::string_view payload_hash;                            // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

// Where a signature is valid: the date (YYYYMMDD comes from the timestamp), region and service.
struct Scope {
  std::string region;
  std::string service = "s3";
};

// The hex SHA-256 of an empty body.
inline constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);
// Raw 32-byte HMAC-SHA256 of `data` under `key`.
std::string hmac_sha256(std::string_view key, std::string_view data);
// Lower-case hex of raw bytes.
std::string hex(std::string_view raw);
// "YYYYMMDDTHHMMSSZ" (UTC) for a point in time.
std::string amz_date(std::chrono::system_clock::time_point t);
// RFC 3986 percent-encoding of everything but A-Z a-z 0-9 - . _ ~ (and '/' unless encode_slash).
std::string uri_encode(std::string_view s, bool encode_slash);
// The canonical query string: names and values encoded, sorted by name then value, "a=1&b=".
std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query);

// The canonical request; `signed_headers` receives "host;x-amz-date;..." (lower-case, sorted).
std::string canonical_request(const SignInput& in, std::string& signed_headers);
// "AWS4-HMAC-SHA256\n<amz_date>\n<date>/<region>/<service>/aws4_request\n<hex sha256 of canonical request>".
std::string string_to_sign(std::string_view amz_date, const Scope& scope, std::string_view canonical);
// The derived key: HMAC chain over the date, region, service and "aws4_request" from "AWS4" + secret.
std::string signing_key(std::string_view secret_key, std::string_view date, const Scope& scope);
// The hex signature of a request at `amz_date` (headers must already hold x-amz-date and host).
std::string signature(const Credentials& creds, const Scope& scope, std::string_view amz_date, const SignInput& in);
// The whole Authorization header value ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...").
std::string authorization(const Credentials& creds, const Scope& scope, std::string_view amz_date, const SignInput& in);

// A presigned request's query string (the input's own query plus the X-Amz-* parameters, signature last),
// valid for `expires` (1 s .. 7 days, clamped). Only `host` is signed; the payload is UNSIGNED-PAYLOAD.
std::string presign_query(const Credentials& creds, const Scope& scope, std::string_view amz_date,
                          std::chrono::seconds expires, const SignInput& in);

}  // namespace wharf::s3
