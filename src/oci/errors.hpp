#pragma once
// The one table of OCI distribution error codes: wire name, default message, HTTP status.
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// The "detail" object of an error: string members and string-list members, kept as plain values and
// serialized (and escaped) only by error_body, so a detail is always a JSON object whatever it holds.
class Detail {
 public:
  Detail() = default;
  // One string member per pair, e.g. Detail{{"digest", d}}.
  Detail(std::initializer_list<std::pair<std::string, std::string>> members) : strings_(members) {}
  // Adds a member whose value is a list of strings, e.g. {"digests": [...]}; returns *this.
  Detail& list(std::string key, std::vector<std::string> values) {
    lists_.emplace_back(std::move(key), std::move(values));
    return *this;
  }
  // True if there is nothing to send (the body then has no "detail").
  bool empty() const { return strings_.empty() && lists_.empty(); }
  // The string members, in insertion order.
  const std::vector<std::pair<std::string, std::string>>& strings() const { return strings_; }
  // The string-list members, in insertion order.
  const std::vector<std::pair<std::string, std::vector<std::string>>>& lists() const { return lists_; }

 private:
  std::vector<std::pair<std::string, std::string>> strings_;
  std::vector<std::pair<std::string, std::vector<std::string>>> lists_;
};

// An error on its way to the client: the code plus an optional message override and detail.
struct Error {
  ErrorCode code;
  std::string message;  // empty: use the table's default
  Detail detail;        // empty: no "detail"
};

// Serializes {"errors":[{"code":..,"message":..,"detail":..}]}; never fails.
std::string error_body(const Error& e);

}  // namespace wharf::oci
