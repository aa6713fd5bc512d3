#pragma once
// Internal to src/s3: one S3 request as an operation describes it, and its non-streamed answer.
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "src/s3/client.hpp"

namespace wharf::s3 {

// A finished answer: status, head and (bounded) body.
struct Client::Response {
  int status = 0;
  proxy::HttpHead head;
  std::string body;
};

// What execute() sends: the signer adds host, x-amz-date, x-amz-content-sha256 and Authorization.
struct Client::Call {
  std::string op;  // S3's name of the operation ("PutObject"), for the observer
  std::string method = "GET";
  std::optional<std::string> key;                            // relative to root; nullopt: the bucket itself
  std::vector<std::pair<std::string, std::string>> query;    // decoded
  std::vector<std::pair<std::string, std::string>> headers;  // signed and sent
  std::optional<proxy::RequestBody> body;
  bool idempotent = true;                  // may be retried
  std::string not_found_code = "NoSuchKey";  // the code of a bodiless 404
  bool error_in_200 = false;               // a 200 may still carry <Error> (copies, CompleteMultipartUpload)
  // Streaming (GetObject): with on_head set, a 2xx answer goes to on_head/on_data instead of the body.
  std::function<void(const proxy::HttpHead&)> on_head;
  std::function<bool(const char*, size_t)> on_data;
  std::function<bool()> hold;  // optional: true pauses the streamed answer until Client::resume
  std::function<void(std::expected<Response, S3Error>)> done;
};

}  // namespace wharf::s3
