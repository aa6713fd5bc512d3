// S3 error bodies: <Error><Code>..</Code><Message>..</Message><RequestId>..</RequestId></Error>.
#include "src/s3/error.hpp"

#include "src/s3/xml.hpp"

namespace wharf::s3 {

bool S3Error::retryable() const {
  if (status == 0 || status >= 500 || status == 429) return true;
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable" ||
         code == "RequestTimeTooSkewed";
}

std::string S3Error::str() const {
  if (status == 0) return std::string("no response: ").append(message);
  std::string out = code.empty() ? std::string("HTTP") : code;
  out.append(" (").append(std::to_string(status)).append(")");
  if (!message.empty()) out.append(": ").append(message);
  return out;
}

S3Error error_from_response(int status, std::string_view body, std::string_view not_found_code) {
  S3Error e;
  e.status = status;
  if (!body.empty()) {
    XmlLimits limits;
    limits.max_bytes = 64 * 1024;
    if (auto doc = parse_xml(body, limits); doc && doc->name == "Error") {
      e.code = doc->child_text("Code");
      e.message = doc->child_text("Message");
      e.request_id = doc->child_text("RequestId");
    }
  }
  if (e.code.empty()) {
    switch (status) {
      case 301: e.code = "PermanentRedirect"; break;
      case 400: e.code = "BadRequest"; break;
      case 403: e.code = "AccessDenied"; break;
      case 404: e.code = std::string(not_found_code); break;
      case 409: e.code = "Conflict"; break;
      case 412: e.code = "PreconditionFailed"; break;
      case 416: e.code = "InvalidRange"; break;
      case 429: e.code = "SlowDown"; break;
      case 500: e.code = "InternalError"; break;
      case 503: e.code = "ServiceUnavailable"; break;
      default: e.code = "HTTP" + std::to_string(status); break;
    }
  }
  return e;
}

S3Error transport_error(std::string message) {
  S3Error e;
  e.code = "Transport";
  e.message = std::move(message);
  return e;
}

}  // namespace wharf::s3
