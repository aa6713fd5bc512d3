#pragma once
// The one table of OCI distribution error codes: wire name, default message, HTTP status.
#include <string>
#include <string_view>

namespace wharf::oci {

enum class ErrorCode {
  BlobUnknown,
  BlobUploadInvalid,
  BlobUploadUnknown,
  DigestInvalid,
  ManifestBlobUnknown,
  ManifestInvalid,
  ManifestUnknown,
  NameInvalid,
  NameUnknown,
  SizeInvalid,
  Unauthorized,
  Denied,
  Unsupported,
  TooManyRequests,
  RangeInvalid,   // 416, for unsatisfiable Range / out-of-order chunk (wire: "RANGE_INVALID")
  Unavailable,    // 503, storage or upstream failure (wire: "UNAVAILABLE")
};

struct ErrorInfo {
  std::string_view wire;     // e.g. "BLOB_UNKNOWN"
  std::string_view message;  // default human message
  int status;                // HTTP status
};

// Looks up the table row for a code; never fails.
const ErrorInfo& error_info(ErrorCode code);

// An error on its way to the client: the code plus an optional message override and JSON detail.
struct Error {
  ErrorCode code;
  std::string message;  // empty: use the table's default
  std::string detail_json;  // empty: no "detail"; otherwise a JSON value (already serialized)
};

// Serializes {"errors":[{"code":..,"message":..,"detail":..}]}; never fails.
std::string error_body(const Error& e);

}  // namespace wharf::oci
