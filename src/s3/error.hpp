#pragma once
// S3's failures as one typed value: the HTTP status, S3's error code from the <Error> body, its message.
#include <string>
#include <string_view>

namespace wharf::s3 {

// A failed S3 call. status 0 means no HTTP response arrived (connect failure, timeout, reset).
struct S3Error {
  int status = 0;
  std::string code;        // "NoSuchKey", "SlowDown", "SignatureDoesNotMatch", ...; "Transport" when status is 0
  std::string message;     // S3's message, or the transport error
  std::string request_id;  // S3's RequestId, when it sent one
  int attempts = 1;        // how many times the call was tried

  // No response at all, a 5xx, 429, or a throttling/timeout code: trying again may succeed.
  bool retryable() const;
  // "NoSuchKey (404): The specified key does not exist." / "no response: Couldn't connect to server".
  std::string str() const;
};

// The error a response stands for: its <Error> body parsed when there is one, else a code derived from the
// status (HEAD answers have no body). `not_found_code` names a bodiless 404 ("NoSuchKey", "NoSuchBucket").
S3Error error_from_response(int status, std::string_view body, std::string_view not_found_code = "NotFound");
// A transport failure (no HTTP response) as an S3Error.
S3Error transport_error(std::string message);

}  // namespace wharf::s3
